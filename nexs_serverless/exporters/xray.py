"""`XRayExporter`: spans to AWS X-Ray, over UDP to the daemon or through ``PutTraceSegments``.

Inside Lambda (or wherever ``AWS_XRAY_DAEMON_ADDRESS`` names a daemon) the
exporter sends UDP datagrams and waits for nothing, so a flush costs the
invocation a few ``sendto`` calls. Two payloads are possible:

- ``segments`` (default): X-Ray segment documents (`xray_segments`), the
  spans of one trace nested in one document per datagram where they fit
  (`xray_pack`), subsegments of the function segment Lambda records;
- ``otlp``: OTLP protobuf, framed the way the AWS Distro for OpenTelemetry
  frames it (`xray_udp.otlp_datagram`), batches split to fit the datagrams.

Elsewhere it calls ``PutTraceSegments`` through boto3 (`xray_api`).
Every payload stays under 64 KiB: oversized spans are cut and say so
(`xray_fit`), and a span that cannot be cut enough is dropped and counted.

Environment (read from the settings snapshot by `from_settings`):

- ``AWS_XRAY_DAEMON_ADDRESS`` (``127.0.0.1:2000``): ``host:port`` or ``tcp:h:p udp:h:p``.
- ``NEXS_XRAY_MODE`` (``segments``): ``segments`` or ``otlp`` (UDP only).
- ``NEXS_XRAY_TRANSPORT`` (``auto``): ``udp``, ``api``, or ``auto`` = UDP inside
  Lambda or when ``AWS_XRAY_DAEMON_ADDRESS`` is set, the API otherwise.
- ``NEXS_XRAY_ANNOTATION_KEYS`` (none): attribute keys to index as annotations, ``*`` for all.
- ``NEXS_XRAY_TIMEOUT_MS`` (1000, at most an hour): the most one API call may take (capped by
  the flush budget).
- ``NEXS_XRAY_ENDPOINT`` (boto3's): another ``PutTraceSegments`` endpoint URL.
- ``AWS_REGION`` / ``AWS_DEFAULT_REGION``: the API's region.
"""

from __future__ import annotations

import threading

from ..config import ConfigError
from .base import ExportResult, Sent, send_once
from .xray_udp import DEFAULT_DAEMON_ADDRESS, HEADER, MAX_DATAGRAM_BYTES, parse_daemon_address

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..config import Settings
    from ..typing import ReadableSpan
    from .xray_api import PutTraceSegmentsClient
    from .xray_lambda import LambdaSegment
    from .xray_udp import DaemonSender

__all__ = ["MODES", "TRANSPORTS", "XRayExporter", "from_settings"]

MODES = ("segments", "otlp")
TRANSPORTS = ("auto", "udp", "api")


class XRayExporter:
    """Exports spans to AWS X-Ray.

    Args:
        mode: ``"segments"`` or ``"otlp"`` (UDP only).
        transport: ``"udp"``, ``"api"`` or ``"auto"`` (UDP when `in_lambda` or
            `daemon_address` is given, the API otherwise).
        daemon_address: the daemon's UDP address (default ``127.0.0.1:2000``).
        annotation_keys: attribute keys recorded as indexed annotations (``"*"``: all).
        in_lambda: the process is a Lambda function: roots in the trace of an
            invocation's ``_X_AMZN_TRACE_ID`` hang under the function segment it names,
            also when they are sent in a later invocation's flush (the last
            `xray_lambda.REMEMBERED` invocations' segments are remembered).
        region: the API's region (default: boto3's resolution).
        endpoint_url: another API endpoint (a local emulator, a VPC endpoint).
        timeout_ms: the most one API call may take, capped by the flush budget.
        max_datagram_bytes: the datagram size limit (at most 64,000).
        client: a ready boto3 X-Ray client for the API transport.

    Raises:
        ConfigError: for an unknown mode or transport, a malformed address,
            OTLP over the API, or a limit out of range.
        ImportError: for the API transport without boto3 installed.
    """

    def __init__(
        self,
        *,
        mode: str = "segments",
        transport: str = "auto",
        daemon_address: str | None = None,
        annotation_keys: Sequence[str] = (),
        in_lambda: bool = False,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout_ms: int = 1000,
        max_datagram_bytes: int = MAX_DATAGRAM_BYTES,
        client: object | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"XRayExporter(mode={mode!r}): expected one of {', '.join(MODES)}")
        if transport not in TRANSPORTS:
            raise ConfigError(
                f"XRayExporter(transport={transport!r}): expected one of {', '.join(TRANSPORTS)}"
            )
        try:
            host, port = parse_daemon_address(daemon_address or DEFAULT_DAEMON_ADDRESS)
        except ValueError as exc:
            raise ConfigError(f"XRayExporter(daemon_address={daemon_address!r}): {exc}") from None
        if transport == "auto":
            transport = "udp" if in_lambda or daemon_address else "api"
        if transport == "api":
            _require_boto3()
        if mode == "otlp" and transport != "udp":
            raise ConfigError(
                "XRayExporter: mode 'otlp' needs the UDP transport (use the OTLP/HTTP exporter)"
            )
        if not isinstance(timeout_ms, int) or timeout_ms < 1:
            raise ConfigError(f"XRayExporter(timeout_ms={timeout_ms!r}): expected an integer >= 1")
        if not 1024 <= max_datagram_bytes <= MAX_DATAGRAM_BYTES:
            raise ConfigError(
                f"XRayExporter(max_datagram_bytes={max_datagram_bytes!r}): 1024 to {MAX_DATAGRAM_BYTES}"
            )
        self.mode = mode
        self.transport = transport
        self.annotation_keys = tuple(annotation_keys)
        self.in_lambda = in_lambda
        self.timeout_ms = timeout_ms
        self.max_datagram_bytes = max_datagram_bytes
        self._host, self._port = host, port
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._sender: DaemonSender | None = None
        self._api: PutTraceSegmentsClient | None = None
        self._lock = threading.Lock()  # `prepare` may run in a background thread during init
        self._trace_header = ""  # the last ``_X_AMZN_TRACE_ID`` read
        self._lambda_segments: dict[int, LambdaSegment] = {}  # recent invocations', by trace id

    # -- the exporter contract ------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult:
        """Send `spans`; failures are classified, counted and logged once, never raised."""
        return send_once("X-Ray", self.send, spans, self.timeout_ms / 1000)

    def send(self, spans: Sequence[ReadableSpan], timeout_s: float) -> int | Sent:
        """Send `spans` once, within `timeout_s` (UDP never waits); returns how many X-Ray rejected.

        Returns:
            The spans X-Ray rejected; a `Sent` when spans that could not be
            converted or made to fit were also dropped here (counted
            ``spans_dropped_serialization`` / ``spans_dropped_oversize``).

        Raises:
            ExportError: classified; for UDP only NETWORK (the socket refused a datagram).
                After spans were dropped here, its `undelivered` names the others, so
                that a retry does not drop (and count) them again; after some datagrams
                went out (either mode), it names only the spans of the others.
        """
        if not spans:
            return 0
        members: Sequence[Sequence[ReadableSpan]]  # the spans in each UDP payload
        if self.mode == "otlp":
            from .xray_otlp import encode_datagrams

            payloads, members, dropped = encode_datagrams(spans, self.max_datagram_bytes)
        else:
            payloads, members, dropped = self._documents(spans)
            if self.transport == "udp":
                payloads = [HEADER + payload for payload in payloads]
        if not dropped:
            return self._transmit(spans, payloads, timeout_s, members)
        from .errors import send_parts

        left_out = {id(span) for span in dropped}
        kept = [span for span in spans if id(span) not in left_out]
        return send_parts(
            [(kept, payloads)],
            lambda part, request: self._transmit(part, request, timeout_s, members),
            dropped=len(dropped),
        )

    def _transmit(
        self,
        spans: Sequence[ReadableSpan],
        payloads: list[bytes],
        timeout_s: float,
        members: Sequence[Sequence[ReadableSpan]] | None = None,
    ) -> int:
        """Datagrams (framed) to the daemon, or documents to the API: how many X-Ray rejected.

        For the API, ``payloads[i]`` is ``spans[i]``'s document (one per span), so
        that a call failing after others got through names the spans still to send;
        over UDP, ``members[i]`` are the spans in datagram ``i``, for the same reason.
        """
        if not payloads:
            return 0
        if self.transport == "udp":
            self._udp().send(payloads, members)  # counts ``xray_datagrams_sent``, also when it fails part way
            return 0
        documents = [payload.decode("utf-8") for payload in payloads]
        return self._api_client().send(spans, documents, timeout_s)

    def prepare(self) -> None:
        """Do the one-time setup ahead of the first flush: the socket, or the boto3 client."""
        if self.transport == "udp":
            self._udp().open()
        else:
            self._api_client().client()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is held back: always True."""
        return True

    def shutdown(self) -> None:
        """Close the socket and the API client."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()
        api, self._api = self._api, None
        if api is not None:
            api.close()

    # -- internals ---------------------------------------------------------------

    def _documents(
        self, spans: Sequence[ReadableSpan]
    ) -> tuple[list[bytes], list[list[ReadableSpan]], list[ReadableSpan]]:
        """Segment documents (nested per trace over UDP, one per span for the API), their spans, the rest.

        The API keeps one document per span so that ``UnprocessedTraceSegments``
        (one entry per refused document) counts refused spans.
        """
        from ..config import read_env
        from .xray_pack import pack_parts
        from .xray_segments import SegmentOptions

        segments = self._lambda_segments
        if self.in_lambda:
            header = read_env("_X_AMZN_TRACE_ID")
            if header != self._trace_header:  # a new invocation: parse once, not per flush
                from .xray_lambda import parse_trace_header, remember

                segment = parse_trace_header(header)
                if segment is not None:
                    # Kept after the invocation: its spans may wait for a later flush
                    # (carried over), when the variable names another invocation.
                    segments = self._lambda_segments = remember(segments, segment)
                self._trace_header = header
        options = SegmentOptions(self.annotation_keys, in_lambda=self.in_lambda, lambda_segments=segments)
        limit = self.max_datagram_bytes - len(HEADER)
        return pack_parts(spans, options, limit, nest=self.transport == "udp")

    def _udp(self) -> DaemonSender:
        sender = self._sender
        if sender is None:
            from .xray_udp import DaemonSender

            with self._lock:
                sender = self._sender
                if sender is None:
                    sender = self._sender = DaemonSender(self._host, self._port)
        return sender

    def _api_client(self) -> PutTraceSegmentsClient:
        api = self._api
        if api is None:
            from .xray_api import PutTraceSegmentsClient

            with self._lock:
                api = self._api
                if api is None:
                    api = self._api = PutTraceSegmentsClient(
                        region=self._region,
                        endpoint_url=self._endpoint_url,
                        connect_timeout_s=min(1.0, self.timeout_ms / 1000),
                        client=self._client,
                    )
        return api


def _require_boto3() -> None:
    """The API transport needs boto3: say so at configuration time, with the fix."""
    from importlib.util import find_spec

    if find_spec("boto3") is None:
        raise ImportError("boto3 is missing for X-Ray's API transport: pip install 'nexs-serverless[xray]'")


def from_settings(settings: Settings) -> XRayExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=xray`` stands for, configured from the environment."""
    from ..config import Problem, Reader, report

    reader = Reader(settings.environ)
    mode = reader.choice("NEXS_XRAY_MODE", default="segments", choices=MODES)
    transport = reader.choice("NEXS_XRAY_TRANSPORT", default="auto", choices=TRANSPORTS)
    # An hour at most, as NEXS_FLUSH_TIMEOUT_MS: the flush budget caps a call anyway.
    timeout_ms = reader.integer("NEXS_XRAY_TIMEOUT_MS", default=1000, minimum=1, maximum=3_600_000)
    address: str | None = settings.env("AWS_XRAY_DAEMON_ADDRESS").strip() or None
    if address is not None:
        try:
            parse_daemon_address(address)
        except ValueError:
            reader.problems.append(
                Problem("AWS_XRAY_DAEMON_ADDRESS", address, "host:port", DEFAULT_DAEMON_ADDRESS)
            )
            address = DEFAULT_DAEMON_ADDRESS
    in_lambda = bool(settings.env("AWS_LAMBDA_FUNCTION_NAME"))
    resolved = transport if transport != "auto" else ("udp" if in_lambda or address else "api")
    if mode == "otlp" and resolved != "udp":
        reader.problems.append(
            Problem("NEXS_XRAY_MODE", "otlp", "segments with the API transport", "segments")
        )
        mode = "segments"
    keys = tuple(key.strip() for key in settings.env("NEXS_XRAY_ANNOTATION_KEYS").split(",") if key.strip())
    report(reader.problems)
    return XRayExporter(
        mode=mode,
        transport=resolved,
        daemon_address=address,
        annotation_keys=keys,
        in_lambda=in_lambda,
        region=settings.env("AWS_REGION") or settings.env("AWS_DEFAULT_REGION") or None,
        # Blank is unset: boto3 refused "  " as an endpoint, and every span went as a serialization error.
        endpoint_url=settings.env("NEXS_XRAY_ENDPOINT").strip() or None,
        timeout_ms=timeout_ms,
    )
