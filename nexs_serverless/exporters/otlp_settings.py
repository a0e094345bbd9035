"""``OTEL_EXPORTER_OTLP_*``: the settings OTLP/HTTP and OTLP/gRPC share, parsed once.

Follows the OpenTelemetry specification ("OTLP Exporter Configuration"): each
variable has a signal-specific ``TRACES_`` form that wins over the general
one; the general HTTP endpoint gets ``/v1/traces`` appended, the signal one
is used as is; gRPC endpoints are used as is. Bad values log one line and
fall back (`config.report`). ``NEXS_OTLP_MAX_REQUEST_BYTES`` has no
OpenTelemetry equivalent: the largest request to send before splitting.
"""

from __future__ import annotations

from .. import config
from ._http import split_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Options", "read"]

_PREFIX = "OTEL_EXPORTER_OTLP_"
HTTP_DEFAULT = "http://localhost:4318/v1/traces"
GRPC_DEFAULT = "http://localhost:4317"
# The largest request body (before gzip) a collector takes; a bigger batch goes as several requests.
# Unset: gRPC's default receive limit (4 MiB) for gRPC, none for HTTP (a 413 shows the limit).
MAX_REQUEST_BYTES = "NEXS_OTLP_MAX_REQUEST_BYTES"


class Options:
    """Parsed OTLP exporter settings."""

    __slots__ = (
        "certificate",
        "client_certificate",
        "client_key",
        "compression",
        "endpoint",
        "headers",
        "insecure",
        "max_request_bytes",
        "protocol",
        "timeout_s",
    )

    def __init__(self, **values: object) -> None:
        for name in self.__slots__:
            setattr(self, name, values[name])

    protocol: str
    endpoint: str
    headers: dict[str, str]
    timeout_s: float
    compression: str
    certificate: str | None
    client_certificate: str | None
    client_key: str | None
    insecure: bool
    max_request_bytes: int | None


def _names(setting: str) -> tuple[str, str]:
    return _PREFIX + "TRACES_" + setting, _PREFIX + setting


def _string(settings: Settings, setting: str) -> str | None:
    for name in _names(setting):
        value = settings.env(name).strip()
        if value:
            return value
    return None


def read(settings: Settings, *, protocol: str | None = None) -> Options:
    """The OTLP options in `settings.environ`, with `protocol`'s defaults and endpoint rules.

    `protocol`: ``"grpc"`` or ``"http/protobuf"`` for an exporter that speaks only that
    one (``otlp_proto_grpc``, ``otlp_proto_http``), whatever ``..._PROTOCOL`` says (set
    for every signal, it must not send an HTTP exporter to the gRPC endpoint); None
    (``otlp``): ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` decides, ``http/protobuf`` by default.
    """
    reader = config.Reader(settings.environ)
    if protocol is None:
        protocol = reader.choice(
            *_names("PROTOCOL"), default="http/protobuf", choices=("http/protobuf", "grpc")
        )
    use_grpc = protocol == "grpc"
    insecure = reader.boolean(*_names("INSECURE"), default=False)
    endpoint = _endpoint(settings, reader, use_grpc, insecure)
    options = Options(
        protocol="grpc" if use_grpc else "http/protobuf",
        endpoint=endpoint,
        headers=_headers(settings, reader),
        # Milliseconds, an hour at most as for NEXS_FLUSH_TIMEOUT_MS (the flush budget caps a request).
        timeout_s=reader.integer(*_names("TIMEOUT"), default=10_000, minimum=1, maximum=3_600_000) / 1000.0,
        compression=reader.choice(*_names("COMPRESSION"), default="none", choices=("none", "gzip")),
        certificate=_string(settings, "CERTIFICATE"),
        client_certificate=_string(settings, "CLIENT_CERTIFICATE"),
        client_key=_string(settings, "CLIENT_KEY"),
        insecure=insecure,
        max_request_bytes=reader.optional_integer(MAX_REQUEST_BYTES, minimum=1024),
    )
    config.report(reader.problems)
    return options


def _endpoint(settings: Settings, reader: config.Reader, grpc: bool, insecure: bool) -> str:
    """The signal's endpoint, else the general one (with ``/v1/traces`` for HTTP), else the default.

    A malformed value is reported and the next setting is tried, as if it were unset.
    """
    chosen = GRPC_DEFAULT if grpc else HTTP_DEFAULT
    malformed: list[tuple[str, str]] = []
    signal_name, general_name = _names("ENDPOINT")
    for name, is_signal in ((signal_name, True), (general_name, False)):
        raw = settings.env(name).strip()
        if not raw:
            continue
        url = raw
        if grpc and "://" not in url:
            url = ("http://" if insecure else "https://") + url
        elif not grpc and not is_signal:
            url = url.rstrip("/") + "/v1/traces"
        try:
            split_url(url)
        except ValueError:
            malformed.append((name, raw))
            continue
        chosen = url
        break
    for name, raw in malformed:
        reader.problems.append(config.Problem(name, raw, "an http:// or https:// URL", chosen))
    return chosen


# RFC 9110 token characters: what a header name may hold.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _headers(settings: Settings, reader: config.Reader) -> dict[str, str]:
    """The configured headers, without those that would break (or forge) the request's head.

    Values are percent-decoded, so ``%0D%0A`` would otherwise end the header and
    start another one of the setting's choosing. Each header left out is reported.
    """
    headers = reader.key_values(*_names("HEADERS"))
    bad = [
        name
        for name, value in headers.items()
        if not name
        or not _TOKEN.issuperset(name)
        or any((character < " " and character != "\t") or character == "\x7f" for character in value)
    ]
    if bad:
        variable = next(name for name in _names("HEADERS") if settings.env(name).strip())
        for name in bad:
            value = headers.pop(name)
            reader.problems.append(
                config.Problem(
                    variable,
                    f"{name}={value}",
                    "header names that are tokens and values without control characters",
                    "the other headers",
                )
            )
    return headers
