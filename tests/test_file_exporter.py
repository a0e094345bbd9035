"""FileExporter: OTLP/JSON-like lines, bounded size, rotation, failures classified."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.exporter_spans import SPAN_ID, START_NS, TRACE_ID, link_to, make_span
from support.made_exporters import made_exporters

from nexs_serverless import _stats
from nexs_serverless.config import ConfigError, from_env
from nexs_serverless.exporters import ExportResult, create
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.file import LAMBDA_PATH, FileExporter
from nexs_serverless.model import Event, SpanKind, StatusCode

Make = Callable[..., FileExporter]


@pytest.fixture
def make_exporter() -> Iterator[Callable[..., FileExporter]]:
    """FileExporters that are shut down (file closed) after the test."""
    with made_exporters(FileExporter) as make:
        yield make


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_writes_one_otlp_json_line_per_span(tmp_path: Path, make_exporter: Make) -> None:
    """Each span becomes one JSON line with OTLP/JSON field names, hex ids and string nanos."""
    path = tmp_path / "spans.jsonl"
    span = make_span(
        parent_span_id=0x1111111111111111,
        kind=SpanKind.SERVER,
        attributes={"s": "v", "i": 7, "f": 1.5, "b": True, "l": ("a", "b")},
        events=(Event("cache.miss", START_NS + 5, {"key": "k1"}),),
        links=(link_to(0xABC, 0xDEF, reason="batch"),),
        status_code=StatusCode.ERROR,
        status_description="boom",
        trace_state=(("vendor", "x"),),
        dropped_attributes=2,
    )
    assert make_exporter(str(path)).export([span]) is ExportResult.SUCCESS
    [line] = _lines(path)
    assert line["traceId"] == f"{TRACE_ID:032x}"
    assert line["spanId"] == f"{SPAN_ID:016x}"
    assert line["parentSpanId"] == "1111111111111111"
    assert line["traceState"] == "vendor=x"
    assert line["kind"] == 2  # OTLP SPAN_KIND_SERVER
    assert line["startTimeUnixNano"] == str(START_NS)
    assert line["droppedAttributesCount"] == 2
    values = {a["key"]: a["value"] for a in line["attributes"]}  # type: ignore[union-attr,index]
    assert values == {
        "s": {"stringValue": "v"},
        "i": {"intValue": "7"},
        "f": {"doubleValue": 1.5},
        "b": {"boolValue": True},
        "l": {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}},
    }
    assert line["events"] == [
        {
            "timeUnixNano": str(START_NS + 5),
            "name": "cache.miss",
            "attributes": [{"key": "key", "value": {"stringValue": "k1"}}],
        }
    ]
    assert line["links"][0]["spanId"] == f"{0xDEF:016x}"  # type: ignore[index]
    assert line["status"] == {"code": 2, "message": "boom"}
    assert {"key": "service.name", "value": {"stringValue": "orders"}} in line["resource"]["attributes"]  # type: ignore[index]
    assert line["scope"] == {"name": "nexs_serverless", "version": "0.1.0"}


def test_non_finite_doubles_are_written_as_otlp_json_strings(tmp_path: Path, make_exporter: Make) -> None:
    """NaN and infinities become the strings OTLP/JSON uses, so every line stays valid JSON."""
    path = tmp_path / "spans.jsonl"
    span = make_span(attributes={"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")})
    make_exporter(str(path)).export([span])
    values = {a["key"]: a["value"] for a in _lines(path)[0]["attributes"]}  # type: ignore[union-attr,index]
    assert values == {
        "nan": {"doubleValue": "NaN"},
        "inf": {"doubleValue": "Infinity"},
        "ninf": {"doubleValue": "-Infinity"},
    }


def test_appends_across_exports_and_reopens(tmp_path: Path, make_exporter: Make) -> None:
    """Later exports append, including after shutdown, which closes the file."""
    path = tmp_path / "spans.jsonl"
    exporter = make_exporter(str(path))
    exporter.export([make_span(span_id=1)])
    exporter.shutdown()
    exporter.export([make_span(span_id=2)])
    assert [line["spanId"] for line in _lines(path)] == [f"{1:016x}", f"{2:016x}"]


def test_rotates_when_the_next_line_would_pass_max_bytes(tmp_path: Path, make_exporter: Make) -> None:
    """Past max_bytes the file moves to .1 (older to .2), and no file ever exceeds the bound."""
    path = tmp_path / "spans.jsonl"
    exporter = make_exporter(str(path), max_bytes=2048, backups=2)
    for index in range(40):
        exporter.export([make_span(span_id=index + 1, attributes={"pad": "x" * 200})])
    files = [path, Path(f"{path}.1"), Path(f"{path}.2")]
    assert all(file.exists() for file in files)
    assert not Path(f"{path}.3").exists()
    assert all(file.stat().st_size <= 2048 for file in files)
    assert _stats.snapshot()["file_rotations"] >= 2
    newest = _lines(path)[-1]
    assert newest["spanId"] == f"{40:016x}"


def test_without_backups_a_full_file_drops_and_counts(tmp_path: Path, make_exporter: Make) -> None:
    """With backups=0 the file stops growing at max_bytes and later spans are counted as dropped."""
    path = tmp_path / "spans.jsonl"
    exporter = make_exporter(str(path), max_bytes=1024, backups=0)
    exporter.export([make_span(span_id=i + 1, attributes={"pad": "x" * 100}) for i in range(20)])
    assert path.stat().st_size <= 1024
    written = len(_lines(path))
    assert written < 20
    assert _stats.snapshot()["spans_dropped_file_full"] == 20 - written


def test_a_line_larger_than_the_file_bound_is_dropped(tmp_path: Path, make_exporter: Make) -> None:
    """A single span longer than max_bytes is dropped and counted; the others are written."""
    path = tmp_path / "spans.jsonl"
    exporter = make_exporter(str(path), max_bytes=1024)
    exporter.export([make_span(span_id=1, attributes={"huge": "x" * 5000}), make_span(span_id=2)])
    assert [line["spanId"] for line in _lines(path)] == [f"{2:016x}"]
    assert _stats.snapshot()["spans_dropped_oversize"] == 1


# Runs in a fresh interpreter (argv[1]: the tests folder, for `support`). Root writes anywhere, so
# a root process first becomes "nobody" (uid and gid 65534: a change it cannot undo, hence a
# process of its own); any other user stays who it is. Then a FileExporter writes into a
# directory of its own made read-only, and the script reports what the exporter did.
_UNWRITABLE_PATH_SCRIPT = """
import json, os, shutil, sys, tempfile
sys.path.insert(0, sys.argv[1])
from support.exporter_spans import make_span
from nexs_serverless import _stats
from nexs_serverless.exporters.errors import ExportError
from nexs_serverless.exporters.file import FileExporter

if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
home = tempfile.mkdtemp()
locked = os.path.join(home, "locked")
os.mkdir(locked, 0o500)
exporter = FileExporter(os.path.join(locked, "spans.jsonl"))
try:
    try:
        exporter.send([make_span()], 1.0)
        sent = "no error"
    except ExportError as exc:
        sent = exc.error_class
    exported = exporter.export([make_span()]).name
finally:
    exporter.shutdown()
    os.chmod(locked, 0o700)
    shutil.rmtree(home)
print(json.dumps({"euid": os.geteuid(), "send": sent, "export": exported, "counters": _stats.snapshot()}))
"""


def test_an_unwritable_path_is_an_auth_failure_and_never_raises() -> None:
    """A file the process may not write fails the export as AUTH, counted, without raising.

    Run as an unprivileged user, also when the suite runs as root (for whom no path is unwritable).
    """
    done = subprocess.run(
        [sys.executable, "-c", _UNWRITABLE_PATH_SCRIPT, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["euid"] != 0
    assert report["send"] == ErrorClass.AUTH  # send() raises the classified error
    assert report["export"] == ExportResult.FAILURE.name  # export() returns it, never raises
    assert report["counters"]["export_errors_auth"] == 1  # counted once, by export(), as other exporters do


def test_a_directory_in_place_of_the_file_is_a_server_class_failure(
    tmp_path: Path, make_exporter: Make
) -> None:
    """Other I/O errors (here the path is a directory) are classified SERVER, which is retryable."""
    target = tmp_path / "spans.jsonl"
    target.mkdir()
    with pytest.raises(ExportError) as caught:
        make_exporter(str(target)).send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.SERVER
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": ""}, "path"),
        ({"max_bytes": 10}, "max_bytes"),
        ({"backups": -1}, "backups"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, object], message: str) -> None:
    """Bad constructor arguments fail at configuration time."""
    with pytest.raises(ConfigError, match=message):
        FileExporter(**kwargs)  # type: ignore[arg-type]


def test_from_settings_reads_path_size_and_backups(tmp_path: Path) -> None:
    """OTEL_TRACES_EXPORTER=file builds a FileExporter from NEXS_FILE_* variables."""
    settings = from_env(
        {
            "OTEL_TRACES_EXPORTER": "file",
            "NEXS_FILE_PATH": str(tmp_path / "out.jsonl"),
            "NEXS_FILE_MAX_BYTES": "4096",
            "NEXS_FILE_BACKUPS": "0",
        }
    )
    exporter = create("file", settings)
    assert isinstance(exporter, FileExporter)
    assert (exporter.path, exporter.max_bytes, exporter.backups) == (str(tmp_path / "out.jsonl"), 4096, 0)


def test_from_settings_defaults_to_tmp_inside_lambda() -> None:
    """Inside Lambda (read-only code directory) the default path is under /tmp."""
    exporter = create("file", from_env({"AWS_LAMBDA_FUNCTION_NAME": "orders"}))
    assert isinstance(exporter, FileExporter)
    assert exporter.path == LAMBDA_PATH


def test_bad_size_in_the_environment_falls_back_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A bad NEXS_FILE_MAX_BYTES logs one line naming it and uses the default."""
    exporter = create("file", from_env({"NEXS_FILE_MAX_BYTES": "tiny"}))
    assert isinstance(exporter, FileExporter)
    assert exporter.max_bytes == 10 * 1024 * 1024
    assert [r.getMessage() for r in caplog.records if "NEXS_FILE_MAX_BYTES" in r.getMessage()]


_READ_ONLY_SCRIPT = """
import sys
sys.path[:0] = [sys.argv[2], sys.argv[2] + "/support"]
from support.spans import make_spans
from nexs_serverless.exporters.errors import ExportError
from nexs_serverless.exporters.file import FileExporter
try:
    FileExporter(sys.argv[1]).send(make_spans(1), 1.0)
except ExportError as exc:
    print(exc.error_class)
"""


def test_a_read_only_file_system_is_an_auth_failure(tmp_path: Path) -> None:
    """EROFS (Lambda's /var/task for a relative NEXS_FILE_PATH) will never be written: AUTH, not
    retried (it was SERVER: backoff sleeps in every flush until the breaker opened)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    tests = str(Path(__file__).parent)
    child = f"{sys.executable} -c '{_READ_ONLY_SCRIPT}' {mount}/spans.jsonl {tests}"
    script = f"mount -t tmpfs -o ro none {mount} && {child}"
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0 and "unshare" in done.stderr + done.stdout:
        pytest.skip(f"no private mount namespace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ErrorClass.AUTH
