"""Review of the CLI and the testing kit: odd inputs to `invoke`, odd traces to the waterfall,
events as AWS delivers them, and a fixture that leaves nothing behind."""

from __future__ import annotations

import base64
import hashlib
import logging
import textwrap
import unicodedata
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result

import nexs_serverless
from nexs_serverless import StatusCode, traced_handler, tracer
from nexs_serverless.cli.app import cli
from nexs_serverless.cli.waterfall import render
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext, capture_spans, events
from nexs_serverless.testing._fixtures import source

pytest_plugins = ["pytester"]

MS = 1_000_000


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(folder: Path, name: str, code: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return path


def span(name: str, span_id: int, parent: int = 0, start_ms: float = 0, end_ms: float = 1, **fields: object):
    """A span as `render` reads it (any object with the fields will do)."""
    values: dict[str, object] = {
        "name": name,
        "trace_id": 1,
        "span_id": span_id,
        "parent_span_id": parent,
        "parent_is_remote": False,
        "start_ns": int(start_ms * MS),
        "end_ns": int(end_ms * MS),
        "attributes": {},
        "status_code": StatusCode.UNSET,
        "status_description": None,
        "force_ended": False,
        "kind": 0,
        "events": (),
        "links": (),
        "dropped_attributes": 0,
        "dropped_events": 0,
        "dropped_links": 0,
    }
    values.update(fields)
    return SimpleNamespace(**values)


def columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# -- invoke ---------------------------------------------------------------------------------------


def test_handler_calling_sys_exit_is_shown_as_a_failed_invocation(tmp_path: Path) -> None:
    """A handler that calls sys.exit gets its trace and the exit drawn, and the command exits 1
    (it used to end the CLI at once, silently, with the handler's status)."""
    handler = write(tmp_path, "quits.py", "import sys\ndef handler(event, context):\n    sys.exit(3)\n")
    result = invoke("invoke", str(handler))
    assert result.exit_code == 1
    assert "raised SystemExit" in result.output
    assert "ERROR SystemExit: 3" in result.output


def test_what_the_handler_prints_stays_next_to_its_invocation(tmp_path: Path) -> None:
    """Each invocation is drawn as soon as it ends, so the handler's own output precedes its header
    (it used to come before everything, the init line included)."""
    counter = "n = 0\ndef handler(event, context):\n    global n\n    n += 1\n    print(f'call {n}')\n"
    handler = write(tmp_path, "chatty.py", counter)
    lines = invoke("invoke", str(handler), "--times", "2").output.splitlines()
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(prefix))
        for prefix in ("init:", "call 1", "── invocation 1/2", "call 2", "── invocation 2/2", "summary:")
    ]
    assert order == sorted(order)


def test_an_event_of_another_platform_is_a_usage_error(tmp_path: Path) -> None:
    """`--platform azure` with an SQS event (or none) is a usage error naming the fix, not a traceback."""
    handler = write(tmp_path, "az.py", "def handler(req, context):\n    return 'ok'\n")
    for extra in (["--event", "sqs"], []):
        result = invoke("invoke", str(handler), "--platform", "azure", *extra)
        assert result.exit_code == 2
        assert "--platform azure: not an Azure HTTP request" in result.output
        assert "azure-* samples" in result.output


def test_exporter_none_is_not_offered(tmp_path: Path) -> None:
    """`-x` lists only back ends that can be built (`none` used to be listed and then fail)."""
    assert "none" not in invoke("invoke", "--help").output.split("-x, --exporter", 1)[1].split("]")[0]
    handler = write(tmp_path, "h.py", "def handler(event, context):\n    return 1\n")
    result = invoke("invoke", str(handler), "-x", "none")
    assert result.exit_code == 2
    assert "'none' is not one of" in result.output


def test_a_module_failing_at_import_names_the_line(tmp_path: Path) -> None:
    """An exception raised by the handler's module at import says which file and line raised it."""
    broken = write(tmp_path, "settings_fail.py", "CONFIG = {}\nTABLE = CONFIG['table']\n")
    result = invoke("invoke", str(broken))
    assert result.exit_code == 2
    assert f"importing it failed: KeyError: 'table' ({broken}, line 2)" in result.output


def test_google_http_without_execution_id_shows_no_empty_request(tmp_path: Path) -> None:
    """A Cloud Functions request without Function-Execution-Id leaves the request out of the header."""
    handler = write(tmp_path, "gfn.py", "def handler(request):\n    return 'ok'\n")
    event = tmp_path / "request.json"
    event.write_text('{"method": "GET", "path": "/", "headers": {}}')
    result = invoke("invoke", str(handler), "--platform", "gcp", "--event", str(event))
    assert result.exit_code == 0
    assert "── invocation 1/1 · cold start ·" in result.output
    assert "request  ·" not in result.output


def test_events_show_takes_names_not_paths() -> None:
    """`events show ../events/sqs` is an unknown name: sample names are not joined as paths."""
    result = invoke("events", "show", "../events/sqs")
    assert result.exit_code == 2
    assert "no sample event named '../events/sqs'" in result.output
    with pytest.raises(KeyError):
        source("../events/sqs")


# -- waterfall ------------------------------------------------------------------------------------


def test_waterfall_draws_spans_whose_parents_form_a_cycle() -> None:
    """Spans whose parents form a cycle, or that are their own parent, are each drawn once
    (the renderer used to fail with `max() arg is an empty sequence`)."""
    text = render([span("a", 1, parent=2), span("b", 2, parent=1), span("self", 3, parent=3)], width=80)
    labels = [line.split("|", 1)[0].rsplit(maxsplit=2)[0] for line in text.splitlines()[2:]]
    assert sorted(label.lstrip("├└─│ ") for label in labels) == ["a", "b", "self"]


def test_waterfall_draws_a_trace_thousands_deep() -> None:
    """A 3,000-level trace renders (no recursion limit), and deep names stay readable."""
    spans = [span(f"level{i}", i + 1, parent=i, start_ms=i / 1000, end_ms=10) for i in range(3000)]
    rows = render(spans, width=100).splitlines()[2:]
    assert len(rows) == 3000
    assert "level2999" in rows[-1]


def test_waterfall_escapes_control_characters() -> None:
    """A span named from a request cannot send escapes or line breaks to the terminal."""
    text = render([span("GET /a\x1b[2J\nb\u202e", 1)], width=80)
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert len(text.splitlines()) == 3
    assert "GET /a\\x1b[2J\\nb\\u202e" in text


def test_waterfall_aligns_wide_characters() -> None:
    """Bars start in the same terminal column when names hold CJK characters."""
    text = render(
        [span("注文を処理する", 1), span("café", 2, parent=1), span("x" * 60, 3, parent=1)], width=100
    )
    starts = {columns(line.split("|", 1)[0]) for line in text.splitlines()[2:]}
    assert len(starts) == 1


def test_waterfall_cuts_long_error_descriptions_to_the_width() -> None:
    """A 500-character error message is cut with an ellipsis to keep the row within the width."""
    failed = span("charge", 1, status_code=StatusCode.ERROR, status_description="declined " * 60)
    line = render([failed], width=100).splitlines()[2]
    assert columns(line) <= 100
    assert line.endswith("…")
    assert "ERROR declined" in line


def test_waterfall_marks_spans_whose_parent_was_not_captured() -> None:
    """A span whose local parent is missing says so; a root continuing a remote trace does not."""
    text = render(
        [span("root", 1, parent=77, parent_is_remote=True), span("stray", 2, parent=99)],
        width=100,
    )
    root, stray = text.splitlines()[2:]
    assert "parent not captured" not in root
    assert stray.endswith("parent not captured")


# -- the testing kit ------------------------------------------------------------------------------


def test_lambda_context_fake_clock_example_from_the_docs() -> None:
    """docs/testing.md's example leaves exactly 100 ms (the float arithmetic used to leave 99)."""
    now = [0.0]
    context = LambdaContext(timeout_ms=1000, clock=lambda: now[0])
    now[0] += 0.9
    assert context.get_remaining_time_in_millis() == 100


def test_lambda_context_counts_down_in_whole_milliseconds() -> None:
    """The remaining time falls by the milliseconds that pass, never rises, and stops at zero."""
    now = [4.35]
    context = LambdaContext(timeout_ms=3000, clock=lambda: now[0])
    seen = [context.get_remaining_time_in_millis()]
    for step in (0.001, 0.29, 0.3, 0.7, 0.999, 1.0):
        now[0] += step
        seen.append(context.get_remaining_time_in_millis())
    assert seen == [3000, 2999, 2709, 2409, 1709, 710, 0]


def test_capture_spans_removes_the_instrumentation_it_installed() -> None:
    """Log records stop carrying trace ids after the block: the first invocation's logging hook is gone."""
    original = logging.getLogRecordFactory()

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    with capture_spans():
        handler({}, LambdaContext())
        assert logging.getLogRecordFactory() is not original
    assert logging.getLogRecordFactory() is original


def test_capture_spans_gives_back_the_configuration_it_found() -> None:
    """Exporters configured in code before the block receive the spans again after it."""
    mine = InMemoryExporter()
    nexs_serverless.configure(exporters=[mine])
    with capture_spans() as recorder:
        with tracer.span("inside"):
            pass
        assert recorder.names() == ["inside"]
    with tracer.span("after"):
        pass
    nexs_serverless.flush()
    assert [s.name for s in mine.get_finished_spans()] == ["after"]


def test_fixture_leaves_nothing_for_the_next_test(pytester: pytest.Pytester) -> None:
    """In a user's suite, a test after one that used `nexs_spans` sees unpatched logging and the
    environment's configuration again (the fixture used to leave both behind)."""
    pytester.makepyfile(
        test_user="""
        import logging
        import nexs_serverless
        from nexs_serverless import traced_handler
        from nexs_serverless.runtime import runtime
        from nexs_serverless.testing import LambdaContext

        ORIGINAL = logging.getLogRecordFactory()
        # the suite's tracer as its environment configured it (in process, the package is loaded already)
        nexs_serverless.configure(exporters=None, environ={"OTEL_TRACES_EXPORTER": "none"})

        @traced_handler
        def handler(event, context):
            return "ok"

        def test_with_fixture(nexs_spans):
            handler({}, LambdaContext())
            nexs_spans.assert_span("test-function")

        def test_after_it():
            assert logging.getLogRecordFactory() is ORIGINAL
            assert runtime.settings.exporters == ("none",)
        """
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:pytest_cov"
    )
    result.assert_outcomes(passed=2)


# -- events as AWS delivers them ------------------------------------------------------------------


@pytest.mark.parametrize("factory", [events.api_gateway_v2, events.function_url])
def test_payload_2_leaves_out_what_the_request_lacks(factory: object) -> None:
    """Payload 2.0 sends no `null`s: no query string means no queryStringParameters key, no body
    means no body key (and no content-length header)."""
    event = factory(method="GET", query={}, body=None)  # type: ignore[operator]
    assert "queryStringParameters" not in event
    assert "body" not in event
    assert event["rawQueryString"] == ""
    assert "content-length" not in event["headers"]
    assert event["isBase64Encoded"] is False


def test_alb_query_values_arrive_url_encoded() -> None:
    """ALB does not decode the query string, so the values a handler sees are still encoded."""
    event = events.alb(query={"q": "a b&c=d", "ok": "1"})
    assert event["queryStringParameters"] == {"q": "a+b%26c%3Dd", "ok": "1"}


def test_s3_removed_object_has_no_size_or_etag() -> None:
    """An ObjectRemoved record carries no size or eTag, as S3 sends it; an explicit size is kept."""
    removed = events.s3(event_name="ObjectRemoved:Delete")["Records"][0]["s3"]["object"]
    assert "size" not in removed
    assert "eTag" not in removed
    assert events.s3(event_name="ObjectRemoved:Delete", size=7)["Records"][0]["s3"]["object"]["size"] == 7


def test_sqs_records_carry_the_checksums_sqs_computes() -> None:
    """md5OfBody matches the body (the sample's was another body's), md5OfMessageAttributes is
    the one moto computes as SQS does, and a message without attributes has none."""
    from moto.sqs.models import Message

    record = events.sqs()["Records"][0]
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    reference = Message("id", record["body"])
    reference.message_attributes = {
        name: {"DataType": value["dataType"], "StringValue": value["stringValue"]}
        for name, value in record["messageAttributes"].items()
    }
    assert record["md5OfMessageAttributes"] == reference.attribute_md5
    assert "md5OfMessageAttributes" not in events.sqs(trace_headers=False)["Records"][0]


def test_dynamodb_images_take_sets_and_decimals() -> None:
    """Sets become SS/NS/BS and Decimals N (they used to become strings of their repr)."""
    image = events.dynamodb(
        new_image={"tags": {"b", "a"}, "sizes": {2, 1}, "blobs": {b"x"}, "price": Decimal("9.99")}
    )["Records"][0]["dynamodb"]["NewImage"]
    assert image == {
        "tags": {"SS": ["a", "b"]},
        "sizes": {"NS": ["1", "2"]},
        "blobs": {"BS": ["eA=="]},
        "price": {"N": "9.99"},
    }
    with pytest.raises(TypeError, match="DynamoDB set"):
        events.dynamodb(new_image={"mixed": {"a", 1}})


def test_bytearray_payloads_are_binary() -> None:
    """A bytearray given as Kinesis or Pub/Sub data keeps its bytes (it used to be decoded as text)."""
    raw = bytearray(b"\xff\x00\xfe")
    kinesis = events.kinesis(records=[raw])["Records"][0]["kinesis"]["data"]
    pubsub = events.gcp_pubsub(data=raw)["data"]["message"]["data"]
    assert base64.b64decode(kinesis) == base64.b64decode(pubsub) == bytes(raw)


def test_sns_topic_reaches_the_unsubscribe_url() -> None:
    """A topic given to the SNS factory is in the UnsubscribeUrl too, with the subscription's ARN."""
    record = events.sns(topic="payments")["Records"][0]
    assert record["Sns"]["UnsubscribeUrl"].endswith("SubscriptionArn=" + record["EventSubscriptionArn"])
    assert ":payments:" in record["EventSubscriptionArn"]


def test_azure_request_path_is_url_encoded() -> None:
    """A path with a space becomes a valid URL (an encoded path is left as it is)."""
    assert events.azure_http(path="/api/x y")["url"].startswith(
        "https://my-func-app.azurewebsites.net/api/x%20y?"
    )
    assert "/api/x%20y?" in events.azure_http(path="/api/x%20y")["url"]


def test_trace_shape_with_many_same_named_siblings_fails_fast() -> None:
    """Twelve same-named siblings of which one differs fail at once, naming the difference (trying
    every assignment of shapes to spans took minutes from a dozen)."""
    from nexs_serverless.testing import assert_trace_shape

    spans = [span("root", 1)]
    for index in range(12):
        spans += [
            span("query", 100 + index, parent=1),
            span("a" if index else "b", 200 + index, parent=100 + index),
        ]
    with pytest.raises(AssertionError, match=r"under 'query': expected \['a'\], found \['b'\]"):
        assert_trace_shape(spans, ("root", [("query", ["a"])] * 12))
    assert_trace_shape(spans, ("root", [("query", ["a"])] * 11 + [("query", ["b"])]))


def test_spans_ended_in_a_capture_block_are_there_after_it() -> None:
    """A span that ended in the block but was not flushed yet is collected after the block too
    (the reset on exit dropped it, and `collect()` after the block came back empty)."""
    from nexs_serverless import tracer
    from nexs_serverless.testing import capture_spans

    with capture_spans() as spans:
        with tracer.span("x"):
            pass
    assert [span.name for span in spans.collect()] == ["x"]
