"""Reading a collector's answer: OTLP's ``partial_success``, a ``google.rpc.Status``, ``Retry-After``.

Also what a request that raised means (`request_error`): an answer cut short,
a TLS file that cannot be used, a lost connection.

Split out of the exporters because the usual answer, a 2xx with an empty
``ExportTraceServiceResponse``, needs none of it: only a reply with a body or a
failure loads this module (cold start). `iter_fields` also reads the other
small messages an exporter must look into (gRPC's ``RetryInfo``). Field
numbers follow ``collector/trace/v1/trace_service.proto`` and
``google/rpc/status.proto``.
"""

from __future__ import annotations

import struct

from .. import _guard as guard
from .. import _stats as stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from .errors import ExportError

__all__ = [
    "decode_partial_success",
    "iter_fields",
    "parse_retry_after",
    "rejected_spans",
    "request_error",
    "status_error",
    "status_message",
]

_unpack_u64 = struct.Struct("<Q").unpack_from


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a message.

    Varints and fixed-width values come as ints, length-delimited ones as
    bytes. Raises `ValueError` on malformed input.
    """
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise ValueError("truncated fixed64")
            value = _unpack_u64(data, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > end:
                raise ValueError("truncated length-delimited field")
            value = data[pos : pos + length]
            pos += length
        elif wire == 5:
            if pos + 4 > end:
                raise ValueError("truncated fixed32")
            value = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if field == 0:
            raise ValueError("field number 0")
        yield field, wire, value


def decode_partial_success(body: bytes) -> tuple[int, str]:
    """``(rejected_spans, error_message)`` from an ``ExportTraceServiceResponse``.

    An empty body (the usual success) gives ``(0, "")``. Raises `ValueError`
    when the body is not that message.
    """
    rejected = 0
    message = ""
    for field, wire, value in iter_fields(body):
        if field != 1 or wire != 2:
            continue
        assert isinstance(value, bytes)
        for inner_field, inner_wire, inner in iter_fields(value):
            if inner_field == 1 and inner_wire == 0:
                assert isinstance(inner, int)
                rejected = inner - (1 << 64) if inner >= 1 << 63 else inner
            elif inner_field == 2 and inner_wire == 2:
                assert isinstance(inner, bytes)
                message = inner.decode("utf-8", "replace")
    return rejected, message


def rejected_spans(body: bytes, endpoint: str) -> int:
    """The spans a 2xx answer's `body` says `endpoint` rejected, warned about once per message.

    A body that is not an ``ExportTraceServiceResponse`` counts as delivered
    (``export_response_undecodable``): the request got through.
    """
    try:
        rejected, message = decode_partial_success(body)
    except ValueError:
        stats.incr("export_response_undecodable")  # delivered; the reply is unreadable
        return 0
    if rejected or message:
        guard.warn_once(
            "otlp_partial_success:" + message[:80],
            "nexs_serverless: %s rejected %d span(s): %s",
            endpoint,
            rejected,
            message,
        )
    return max(0, rejected)


def status_error(status: int, headers: Mapping[str, str], body: bytes, endpoint: str) -> ExportError:
    """The classified failure of a non-2xx OTLP/HTTP answer, with its ``Retry-After`` and message."""
    from .errors import ExportError, classify_otlp_status

    return ExportError(
        classify_otlp_status(status),
        f"HTTP {status} from {endpoint}: {status_message(body)}",
        retry_after_s=parse_retry_after(headers.get("retry-after")),
        status=status,
    )


# `_http.Connection`'s TLS arguments as the user set them: variable (either form) and exporter argument.
_TLS_SETTINGS = {
    "ca_file": "OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE (certificate)",
    "client_cert": "OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE (client_certificate)",
    "client_key": "OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_KEY (client_key)",
}


def request_error(exc: Exception, endpoint: str) -> ExportError | None:
    """The classified failure of an OTLP/HTTP request that raised `exc`; None when it was delivered.

    A collector answers after it has taken the request: once a complete 2xx
    status line and headers arrived, the spans are in, whatever happens to
    the body (a reset, a close, a stall). Sending them again would deliver
    them twice, so it counts as delivered (``export_response_truncated``;
    nothing is known of ``partial_success``). A non-2xx answer cut short keeps
    its status's class. A TLS file that cannot be used is AUTH, as over gRPC
    (`otlp_grpc._read`): a setting to fix, which retrying cannot. Anything
    else is classified as usual (a connection lost before a complete status
    line: NETWORK, retried).
    """
    from ._http import CutResponseError
    from ._tls import TLSFileError
    from .errors import ErrorClass, ExportError, classify

    if isinstance(exc, CutResponseError):
        if 200 <= exc.status < 300:
            stats.incr("export_response_truncated")
            return None
        return status_error(exc.status, exc.headers, b"", endpoint)
    if isinstance(exc, TLSFileError):
        reason = exc.reason
        why = (reason.strerror if isinstance(reason, OSError) else None) or str(reason)
        named = " and ".join(f"{_TLS_SETTINGS[argument]} = {path!r}" for argument, path in exc.files)
        return ExportError(ErrorClass.AUTH, f"cannot use the TLS file: {named}: {why}")
    return classify(exc)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if neither.

    Never raises: a header is Latin-1 text, whose ``²`` `str.isdigit` calls a digit and
    `float` refuses; raising here classified a 503 as a SERIALIZATION failure and dropped its spans.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # RFC 9110 delta-seconds: ASCII digits only
        return float(value)
    try:
        import time
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - time.time())


def status_message(body: bytes) -> str:
    """The ``message`` of a ``google.rpc.Status`` body (OTLP's error reply), else a prefix."""
    try:
        for field, wire, value in iter_fields(body):
            if field == 2 and wire == 2 and isinstance(value, bytes):
                return value.decode("utf-8", "replace")[:200]
    except ValueError:
        pass
    return body[:200].decode("utf-8", "replace")
