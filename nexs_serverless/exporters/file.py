"""`FileExporter`: spans as JSON lines in a local file, for local runs and CI.

One span per line, with OTLP/JSON field names (``traceId``, ``spanId``,
``startTimeUnixNano``, ``attributes: [{"key": ..., "value": {"stringValue": ...}}]``,
...) and the span's ``resource`` and ``scope`` on each line, so that every
line stands alone (``jq``, ``grep``, a log shipper). Ids are hex, 64-bit
integers are decimal strings, as OTLP/JSON writes them.

The file is bounded: when the next line would take it past ``max_bytes`` it is
rotated (``spans.jsonl`` -> ``spans.jsonl.1`` -> ... up to ``backups`` old
files), or, with ``backups=0``, further spans are dropped and counted
(``spans_dropped_file_full``). A line longer than ``max_bytes`` on its own is
dropped (``spans_dropped_oversize``). Each export's lines reach the OS in
one unbuffered write (not fsync'ed: this is a debugging aid, not a journal).

Every line is whole: when a write fails part way (a full disk), what it
wrote is cut off again before the error is reported, so the next line does
not start in the middle of a broken one. Lines already in a file when a later
write or a rotation fails stay there: the error names only the spans after
them (`ExportError.undelivered`), which are all a retry writes. The file's
size is read from the file before each export, and a file renamed or deleted
behind the exporter's back (``rm spans.jsonl`` between two runs of a local
server, another process rotating it) is followed: writing goes on at the
path, not into the old file.
Exports from several threads are serialised by a lock.

Environment (read from the settings snapshot by `from_settings`):

- ``NEXS_FILE_PATH`` (``nexs-spans.jsonl``; ``/tmp/nexs-spans.jsonl`` in Lambda,
  whose code directory is read-only).
- ``NEXS_FILE_MAX_BYTES`` (10 MiB): the largest the file may grow.
- ``NEXS_FILE_BACKUPS`` (3): rotated files kept, at most 100; 0 stops writing when full.
"""

from __future__ import annotations

import errno
import json
import math
import os
import threading

from .. import _guard as guard
from .. import _stats as stats
from ..config import ConfigError
from .base import ExportResult, Sent
from .errors import ErrorClass, ExportError, classify, send_parts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import BinaryIO

    from ..config import Settings
    from ..model import Event, InstrumentationScope, Link, Resource
    from ..typing import ReadableSpan

__all__ = ["DEFAULT_PATH", "FileExporter", "from_settings", "to_json"]

DEFAULT_PATH = "nexs-spans.jsonl"
LAMBDA_PATH = "/tmp/nexs-spans.jsonl"  # noqa: S108 - Lambda's only writable directory
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 3
# A rotation renames every backup in turn, inside the handler's flush: a typo of a million backups
# cost seconds per rotation (a debugging aid needs a few files, not hundreds).
MAX_BACKUPS = 100
# One encoder for every line: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_tail_cache: list[tuple[object, object, str]] = []  # one entry: (resource, scope, text)


class FileExporter:
    """Appends spans to a JSON lines file of bounded size.

    Args:
        path: the file to write (created with its directory if missing).
        max_bytes: the most the file may hold (at least 1024).
        backups: rotated files kept (``path.1`` newest), at most `MAX_BACKUPS`; 0 drops spans once full.
    """

    def __init__(
        self, path: str = DEFAULT_PATH, *, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS
    ) -> None:
        if not isinstance(path, str) or not path:
            raise ConfigError(f"FileExporter(path={path!r}): expected a file path")
        if not isinstance(max_bytes, int) or max_bytes < 1024:
            raise ConfigError(f"FileExporter(max_bytes={max_bytes!r}): expected an integer >= 1024")
        if not isinstance(backups, int) or not 0 <= backups <= MAX_BACKUPS:
            raise ConfigError(
                f"FileExporter(backups={backups!r}): expected an integer from 0 to {MAX_BACKUPS}"
            )
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: BinaryIO | None = None
        self._size = 0
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult:
        """Write `spans`; a failure is classified, counted and logged once, never raised."""
        try:
            self.send(spans, 0.0)
        except Exception as exc:
            error = classify(exc)
            stats.incr("export_errors_" + error.error_class)  # the name every exporter counts under
            guard.warn_once("file:" + error.error_class, "nexs_serverless: file export failed: %s", error)
            return ExportResult.FAILURE
        return ExportResult.SUCCESS

    def send(self, spans: Sequence[ReadableSpan], timeout_s: float) -> int | Sent:
        """Append one line per span (`timeout_s` is unused: local writes do not wait on a peer).

        Returns:
            0; a `Sent` when spans were dropped here: one that cannot be encoded
            (``spans_dropped_serialization``), one whose line alone is over
            ``max_bytes`` (``spans_dropped_oversize``), one past a full file
            (``spans_dropped_file_full``).

        Raises:
            ExportError: AUTH when the file may not be written, SERVER for other
                I/O errors (a full disk). After spans were left out as unencodable
                or oversized, or when a rotation or a later write failed after
                lines were written, its `undelivered` names the spans still to
                write, so that a retry neither counts the left-out ones again nor
                writes the written ones twice.
        """
        kept: list[ReadableSpan] = []
        lines: list[bytes] = []
        for span in spans:
            line = _line(span)
            if line is None:
                continue
            if len(line) > self.max_bytes:
                stats.incr("spans_dropped_oversize")
                continue
            kept.append(span)
            lines.append(line)
        if len(kept) == len(spans):
            return self._write_lines(kept, lines)
        return send_parts([(kept, lines)], self._write_lines, dropped=len(spans) - len(kept))

    def _write_lines(self, spans: Sequence[ReadableSpan], lines: list[bytes]) -> int | Sent:
        """Write `lines` (`spans`' own, in order): a failure after some reached a file names the rest.

        Lines written before a rotation are in a file for good: a retry of the
        whole batch would write them a second time (`ExportError.undelivered`).
        """
        with self._lock:
            written = [0]
            try:
                full = self._write(lines, written)
            except OSError as exc:
                if not isinstance(exc, PermissionError):
                    self._close()
                error_class = (
                    ErrorClass.AUTH  # EROFS: Lambda's /var/task, writing will never work here
                    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS
                    else ErrorClass.SERVER
                )
                error = ExportError(error_class, f"{self.path}: {exc}")
                if written[0]:
                    error.undelivered = spans[written[0] :]
                raise error from exc
        return Sent.of(0, full)

    def _write(self, lines: list[bytes], written: list[int]) -> int:
        """Write `lines` (each at most `max_bytes`), rotating as needed; the lines dropped, the file full.

        `written[0]` counts the lines in a file for good (those before the last
        rotation), for the caller to name the rest when a write fails. Only
        ``backups == 0`` drops lines, and it never rotates: with rotation, line
        ``i`` is the batch's line ``i``.
        """
        out = self._open()
        pending: list[bytes] = []
        full = 0
        for line in lines:
            if self._size + len(line) > self.max_bytes:
                if self.backups == 0:
                    full += 1
                    continue
                _append(out, pending)
                written[0] += len(pending)
                pending.clear()
                out = self._rotate()
            pending.append(line)
            self._size += len(line)
        _append(out, pending)
        if full:  # counted once written: after a failed write, the retry decides again
            stats.incr("spans_dropped_file_full", full)
        return full

    def _open(self) -> BinaryIO:
        """The open file, reopened when `path` no longer names it; `_size` read from the file."""
        out = self._file
        if out is not None:
            try:
                named = os.stat(self.path)
            except FileNotFoundError:
                named = None
            held = os.fstat(out.fileno())
            if named is not None and (named.st_ino, named.st_dev) == (held.st_ino, held.st_dev):
                self._size = held.st_size  # another writer may have appended
                return out
            self._close()  # deleted or renamed behind our back: write at the path again
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        # Unbuffered: a failed write leaves nothing in a buffer to be written later, past the cut.
        out = self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open across invocations
        self._size = os.fstat(out.fileno()).st_size
        return out

    def _rotate(self) -> BinaryIO:
        self._close()
        for index in range(self.backups - 1, 0, -1):
            older = f"{self.path}.{index}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{index + 1}")
        if os.path.exists(self.path):
            os.replace(self.path, f"{self.path}.1")
        stats.incr("file_rotations")
        return self._open()

    def _close(self) -> None:
        out, self._file = self._file, None
        if out is not None:
            try:
                out.close()
            except OSError:  # unbuffered: nothing was pending; the descriptor is released anyway
                pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Lines are flushed after every export: always True."""
        return True

    def shutdown(self) -> None:
        """Close the file (a later export opens it again)."""
        with self._lock:
            self._close()


def _append(out: BinaryIO, lines: list[bytes]) -> None:
    """Write `lines` whole, or (on an error part way) cut what was written and raise."""
    if not lines:
        return
    data = memoryview(b"".join(lines))
    start = os.fstat(out.fileno()).st_size
    try:
        while data:
            written = out.write(data)  # a raw file may write less than asked (a disk filling up)
            if not written:
                raise OSError(errno.EIO, "the file took no bytes")
            data = data[written:]
    except OSError:
        try:
            os.ftruncate(out.fileno(), start)  # no half line for the next one to be glued to
        except OSError:
            pass
        raise


def _line(span: ReadableSpan) -> bytes | None:
    try:
        return to_json(span).encode("utf-8", "replace") + b"\n"
    except Exception as exc:  # one odd span must not cost the batch
        guard.report("file_line", exc)
        stats.incr("spans_dropped_serialization")
        return None


def to_json(span: ReadableSpan) -> str:
    """One span as a line of OTLP/JSON-like text (no newline)."""
    line: dict[str, object] = {
        "traceId": f"{span.trace_id:032x}",
        "spanId": f"{span.span_id:016x}",
    }
    if span.trace_state:
        line["traceState"] = ",".join(f"{key}={value}" for key, value in span.trace_state)
    if span.parent_span_id:
        line["parentSpanId"] = f"{span.parent_span_id:016x}"
    line["flags"] = (span.trace_flags & 0xFF) | 0x100 | (0x200 if span.parent_is_remote else 0)
    line["name"] = span.name
    line["kind"] = span.kind + 1  # OTLP's SpanKind: ours shifted by one (0 is UNSPECIFIED)
    line["startTimeUnixNano"] = str(span.start_ns)
    line["endTimeUnixNano"] = str(span.end_ns)
    line["attributes"] = _attributes(span.attributes)
    line.update(
        (key, count)
        for key, count in (
            ("droppedAttributesCount", span.dropped_attributes),
            ("droppedEventsCount", span.dropped_events),
            ("droppedLinksCount", span.dropped_links),
        )
        if count
    )
    if span.events:
        line["events"] = [_event(event) for event in span.events]
    if span.links:
        line["links"] = [_link(link) for link in span.links]
    status: dict[str, object] = {"code": span.status_code}
    if span.status_description:
        status["message"] = span.status_description
    line["status"] = status
    # The resource and scope are the same on every line: encode them once per object.
    return _encode(line)[:-1] + _tail(span.resource, span.instrumentation_scope)


def _tail(resource: Resource, scope: InstrumentationScope) -> str:
    """``,"resource":{...},"scope":{...}}``, cached for the last resource and scope seen."""
    cached = _tail_cache[0] if _tail_cache else None  # one read: another thread may replace the entry
    if cached is not None and cached[0] is resource and cached[1] is scope:
        return cached[2]
    text = (
        ',"resource":'
        + _encode({"attributes": _attributes(resource.attributes)})
        + ',"scope":'
        + _encode({"name": scope.name, "version": scope.version})
        + "}"
    )
    _tail_cache[:] = [(resource, scope, text)]
    return text


def _event(event: Event) -> dict[str, object]:
    out: dict[str, object] = {
        "timeUnixNano": str(event.timestamp_ns),
        "name": event.name,
        "attributes": _attributes(event.attributes),
    }
    if event.dropped_attributes:
        out["droppedAttributesCount"] = event.dropped_attributes
    return out


def _link(link: Link) -> dict[str, object]:
    context = link.context
    out: dict[str, object] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
        "attributes": _attributes(link.attributes),
    }
    if context.trace_state:
        out["traceState"] = ",".join(f"{key}={value}" for key, value in context.trace_state)
    if link.dropped_attributes:
        out["droppedAttributesCount"] = link.dropped_attributes
    return out


def _attributes(attributes: Mapping[str, object]) -> list[dict[str, object]]:
    return [{"key": key, "value": _value(value)} for key, value in attributes.items()]


def _value(value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        # OTLP/JSON writes non-finite doubles as strings; plain JSON has no NaN.
        if math.isfinite(value):
            return {"doubleValue": value}
        return {"doubleValue": "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")}  # noqa: PLR0124
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_value(item) for item in value]}}
    return {"stringValue": str(value)}


def from_settings(settings: Settings) -> FileExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=file`` stands for, configured from the environment."""
    from ..config import Reader, report

    reader = Reader(settings.environ)
    default_path = LAMBDA_PATH if settings.env("AWS_LAMBDA_FUNCTION_NAME") else DEFAULT_PATH
    path = settings.env("NEXS_FILE_PATH").strip() or default_path
    max_bytes = reader.integer("NEXS_FILE_MAX_BYTES", default=DEFAULT_MAX_BYTES, minimum=1024)
    backups = reader.integer("NEXS_FILE_BACKUPS", default=DEFAULT_BACKUPS, maximum=MAX_BACKUPS)
    report(reader.problems)
    return FileExporter(path, max_bytes=max_bytes, backups=backups)
