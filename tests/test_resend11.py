"""Exporters that write a batch in several steps resend only what did not arrive.

X-Ray's ``PutTraceSegments`` takes at most 50 documents per call, and the file
exporter writes a batch across rotations: a failure after an earlier call or
file got the first spans names the rest `ExportError.undelivered`, so the
resilience wrapper retries, keeps or drops only those. The X-Ray calls go to a
canned HTTP server on 127.0.0.1 that fails the second call; the file tests use
real files, with a directory standing where the rotation must put the full file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.canned_http import CannedServer, Reply
from support.export_checks import export_counters, wrap_resilient
from support.exporter_spans import make_span
from support.made_exporters import made_exporters

from nexs_serverless.exporters import ExportResult, XRayExporter
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.file import FileExporter, to_json
from nexs_serverless.finished import FinishedSpan

_OK = Reply(200, b"{}", {"Content-Type": "application/x-amz-json-1.1"})


def _error(status: int, code: str) -> Reply:
    body = json.dumps({"__type": code, "message": f"{code} from the test"}).encode()
    return Reply(status, body, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code})


def _spans(count: int, **fields: object) -> list[FinishedSpan]:
    return [make_span(span_id=index + 1, parent_span_id=0xFF, **fields) for index in range(count)]


def _ids(spans: object) -> list[int]:
    return [span.span_id for span in spans]  # type: ignore[attr-defined]


# -- X-Ray's PutTraceSegments ------------------------------------------------------------


@pytest.fixture
def xray() -> Iterator[tuple[CannedServer, XRayExporter]]:
    """A canned X-Ray endpoint on 127.0.0.1 and an API-transport exporter aimed at it."""
    with CannedServer() as server, made_exporters(XRayExporter) as make:
        yield server, make(transport="api", region="us-east-1", endpoint_url=server.url, timeout_ms=20_000)


@pytest.fixture(autouse=True)
def _aws(aws_test_credentials: None) -> None:
    """Test credentials for boto3 (the file tests ignore them)."""


def _documents_per_call(server: CannedServer) -> list[list[int]]:
    """The span ids of the documents each PutTraceSegments call carried."""
    return [
        [int(json.loads(doc)["id"], 16) for doc in json.loads(request.body)["TraceSegmentDocuments"]]
        for request in server.requests
    ]


def test_xray_a_call_failing_after_a_delivered_one_names_the_rest_undelivered(
    xray: tuple[CannedServer, XRayExporter],
) -> None:
    """The second call of 60 documents fails: the error names the 10 spans of that call, not all 60."""
    server, exporter = xray
    server.replies = [_OK, _error(503, "ServiceUnavailable")]
    spans = _spans(60)
    with pytest.raises(ExportError) as caught:
        exporter.send(spans, 20.0)
    assert caught.value.error_class == ErrorClass.SERVER
    assert caught.value.undelivered is not None
    assert _ids(caught.value.undelivered) == list(range(51, 61))
    assert [len(call) for call in _documents_per_call(server)] == [50, 10]


def test_xray_the_retry_sends_only_the_documents_that_did_not_arrive(
    xray: tuple[CannedServer, XRayExporter],
) -> None:
    """Behind the wrapper, a 503 on the second call is retried with that call's 10 documents only."""
    server, exporter = xray
    server.replies = [_OK, _error(503, "ServiceUnavailable"), _OK]
    assert wrap_resilient(exporter, max_retries=1).export(_spans(60)) is ExportResult.SUCCESS
    calls = _documents_per_call(server)
    assert [len(call) for call in calls] == [50, 10, 10]
    assert calls[2] == list(range(51, 61))
    assert export_counters() == {"export_errors_server": 1, "export_retries": 1, "export_spans_sent": 60}


def test_xray_a_refused_second_call_drops_only_its_own_spans(xray: tuple[CannedServer, XRayExporter]) -> None:
    """A 400 on the second call drops its 10 spans; the 50 that arrived are counted sent, not dropped."""
    server, exporter = xray
    server.replies = [_OK, _error(400, "InvalidRequestException")]
    assert wrap_resilient(exporter).export(_spans(60)) is ExportResult.FAILURE
    assert [len(call) for call in _documents_per_call(server)] == [50, 10]
    assert export_counters() == {
        "export_errors_bad_request": 1,
        "export_spans_sent": 50,
        "spans_dropped_bad_request": 10,
    }


def test_xray_every_document_of_several_calls_refused_is_a_bad_request(
    xray: tuple[CannedServer, XRayExporter],
) -> None:
    """X-Ray refusing all 60 documents, over two calls, still fails the batch as BAD_REQUEST."""
    server, exporter = xray

    def refused(count: int) -> Reply:
        unprocessed = [{"Id": f"{index:016x}", "ErrorCode": "InvalidSegment"} for index in range(count)]
        return Reply(200, json.dumps({"UnprocessedTraceSegments": unprocessed}).encode())

    server.replies = [refused(50), refused(10)]
    with pytest.raises(ExportError) as caught:
        exporter.send(_spans(60), 20.0)
    assert caught.value.error_class == ErrorClass.BAD_REQUEST
    assert caught.value.undelivered is None  # the whole batch is refused: dropped whole
    assert len(server.requests) == 2


# -- FileExporter across a rotation ---------------------------------------------------------


@pytest.fixture
def blocked(tmp_path: Path) -> tuple[Path, Path]:
    """A file path, and a non-empty directory at ``<path>.1``, where rotating must move the full file."""
    path = tmp_path / "spans.jsonl"
    blocker = Path(f"{path}.1")
    blocker.mkdir()
    (blocker / "keep").write_text("x")
    return path, blocker


def _span_ids_in(*files: Path) -> list[int]:
    """The span ids of every line of `files`, in order (every line must be whole JSON)."""
    return [
        int(json.loads(line)["spanId"], 16) for file in files for line in file.read_text("utf-8").splitlines()
    ]


def _padded(count: int) -> list[FinishedSpan]:
    """Spans whose lines take about 500 bytes: a few fill a 2 KiB file."""
    return _spans(count, attributes={"pad": "x" * 200})


def test_file_a_rotation_failing_after_lines_were_written_names_the_rest_undelivered(
    blocked: tuple[Path, Path],
) -> None:
    """The lines written before the failed rotation stay; the error names only the spans after them."""
    path, _ = blocked
    spans = _padded(12)
    with made_exporters(FileExporter) as make:
        exporter = make(str(path), max_bytes=2048, backups=1)
        with pytest.raises(ExportError) as caught:
            exporter.send(spans, 1.0)
    written = _span_ids_in(path)
    assert 0 < len(written) < 12
    assert written == list(range(1, len(written) + 1))
    assert caught.value.error_class == ErrorClass.SERVER
    assert caught.value.undelivered is not None
    assert _ids(caught.value.undelivered) == list(range(len(written) + 1, 13))


def test_file_the_retry_after_a_failed_rotation_writes_each_span_once(blocked: tuple[Path, Path]) -> None:
    """Carried over, then written once the rotation works: each span is in the files once, in order.

    Sized so that the first span, short, would still fit the full file: a retry
    of the whole batch would append it there again.
    """
    path, blocker = blocked
    spans = [make_span(span_id=1), *_padded(6)[1:]]
    short, long = (len(to_json(span)) + 1 for span in spans[:2])
    assert short < long
    with made_exporters(FileExporter) as make:
        exporter = make(str(path), max_bytes=2 * short + 3 * long, backups=1)
        resilient = wrap_resilient(exporter, max_retries=0)
        assert resilient.export(spans) is ExportResult.FAILURE
        assert _span_ids_in(path) == [1, 2, 3, 4]  # the fifth does not fit: the rotation failed
        (blocker / "keep").unlink()
        blocker.rmdir()
        assert resilient.export([]) is ExportResult.SUCCESS  # the carry-over goes out
    assert _span_ids_in(Path(f"{path}.1"), path) == [1, 2, 3, 4, 5, 6]
    assert export_counters() == {
        "export_errors_server": 1,
        "export_spans_carried_over": 2,
        "export_spans_resent": 2,
        "export_spans_sent": 6,
    }
