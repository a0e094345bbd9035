"""What every outgoing-call instrumentation shares: when to trace, and CLIENT span bookkeeping.

A call is traced only inside a trace (a current span or a continued remote
context): a call made during init, outside any invocation, would otherwise
become a one-span trace shipped with the first invocation's batch. Never
while the tracer exports (`context.suppressed`), never when disabled, and an
HTTP request made *by* an AWS SDK call is not traced again (the SDK call has
its own span and writes its own headers).

The HTTP spans follow OpenTelemetry's HTTP client conventions: named by the
method (``HTTP`` for one not known), ``http.request.method`` (``_OTHER`` plus
``http.request.method_original`` for a method not known; the known ones are
RFC 9110's, PATCH and QUERY, or ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS``),
``url.full`` with credentials and signed-URL secrets replaced by ``REDACTED``,
``server.address``/``server.port``, ``http.response.status_code``; status ERROR
without a description for a 4xx/5xx answer (``error.type`` the code), ERROR
with the exception's type for a call that raised. The span ends when the
response's headers have arrived: a body read afterwards is not in it.
"""

from __future__ import annotations

from _contextvars import ContextVar

from .. import _guard as guard
from ..baggage import _entries as _baggage_entries
from ..context import _current, suppressed
from ..model import SpanKind, StatusCode
from ..propagation._api import composite
from ..runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..config import Settings
    from ..span import Span

__all__ = [
    "clear_trace_headers",
    "end",
    "http_attributes",
    "in_sdk_call",
    "record_error",
    "record_status",
    "should_trace",
]

in_sdk_call: ContextVar[bool] = ContextVar("nexs_in_sdk_call", default=False)
in_http_call: ContextVar[bool] = ContextVar("nexs_in_http_call", default=False)

KNOWN_METHODS_VARIABLE = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"
"""Comma list of the methods recorded as they are (case-sensitive; a full override of the default)."""
# OpenTelemetry HTTP conventions, `http.request.method`: RFC 9110's methods, PATCH (RFC 5789), QUERY.
DEFAULT_KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE")
)
# url.full: "Query string values for the following keys SHOULD be redacted" (AWS SigV2, Azure SAS,
# Google Cloud Storage), plus AWS SigV4's: a presigned URL made in Lambda carries the function's
# session token (X-Amz-Security-Token) and access key id (in X-Amz-Credential). Keys match exactly,
# so each spelling botocore writes the token in is listed: its SigV2 presigned URLs (S3's default
# still) write x-amz-security-token, S3 Express's SigV4 ones X-Amz-S3session-Token.
REDACTED = "REDACTED"
SECRET_QUERY_KEYS = frozenset(
    (
        "AWSAccessKeyId",
        "Signature",
        "sig",
        "X-Goog-Signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "x-amz-security-token",
        "X-Amz-S3session-Token",
    )
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# (settings, the known methods they give); one tuple, swapped atomically.
_known_cache: list[tuple[object, frozenset[str]]] = [(None, DEFAULT_KNOWN_METHODS)]


def should_trace() -> bool:
    """True when an outgoing call now should get a span and carry the context."""
    return (
        _current.get() is not None
        and not suppressed()
        and not in_sdk_call.get()
        and not runtime.settings.disabled
    )


def known_methods(settings: Settings | None = None) -> frozenset[str]:
    """The methods recorded as they are: ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS``, else the default."""
    if settings is None:
        settings = runtime.settings
    cached_settings, cached = _known_cache[0]
    if cached_settings is settings:
        return cached
    raw = settings.environ.get(KNOWN_METHODS_VARIABLE, "")
    listed = frozenset(item.strip() for item in raw.split(",") if item.strip())
    known = listed or DEFAULT_KNOWN_METHODS
    _known_cache[0] = (settings, known)
    return known


def http_attributes(method: object, url: str) -> tuple[str, dict[str, object]]:
    """Span name and OpenTelemetry HTTP client attributes for a request (secrets in the URL redacted)."""
    if type(method) is bytes:
        method = method.decode("latin-1")
    method = str(method)
    attrs: dict[str, object]
    if method in known_methods():
        name = method
        attrs = {"http.request.method": method}
    else:  # case-sensitive: "get" is not GET on the wire (RFC 9110 section 9.1)
        name = "HTTP"
        attrs = {"http.request.method": "_OTHER", "http.request.method_original": method}
    attrs["url.full"] = redact_url(url)
    try:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        host = parts.hostname
        if host:
            attrs["server.address"] = host
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        if port:
            attrs["server.port"] = port
    except ValueError:  # an unparsable port or host: the address is left out, never the call
        pass
    return name, attrs


def redact_url(url: str) -> str:
    """`url` for ``url.full``: ``REDACTED:REDACTED`` for its user info, ``REDACTED`` for signed-URL secrets.

    Everything else is kept as written (no re-encoding); a fragment is dropped,
    as it is never sent.
    """
    if "#" in url:
        url = url.partition("#")[0]
    if "@" not in url and "?" not in url:  # the common case: nothing to look at
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    end = len(rest)
    for char in "/?":
        index = rest.find(char)
        if index != -1:
            end = min(end, index)
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        authority = f"{REDACTED}:{REDACTED}@" + authority.rpartition("@")[2]
    path, qmark, query = tail.partition("?")
    if query and any(key in query for key in SECRET_QUERY_KEYS):
        pieces = query.split("&")
        for index, piece in enumerate(pieces):
            key, eq, _ = piece.partition("=")
            if eq and key in SECRET_QUERY_KEYS:
                pieces[index] = f"{key}={REDACTED}"
        query = "&".join(pieces)
    return f"{scheme}{sep}{authority}{path}{qmark}{query}"


def record_status(span: Span, code: object) -> None:
    """``http.response.status_code``; 4xx, 5xx and codes outside 100-599 are errors for a client.

    The status gets no description: the code says it (OpenTelemetry HTTP
    conventions, "Status"). Never raises.
    """
    try:
        if type(code) is not int:
            return
        span.set_attribute("http.response.status_code", code)
        if code >= 400 or code < 100:
            span.set_attribute("error.type", str(code))
            span.set_status(StatusCode.ERROR)
    except Exception as exc:
        guard.report("http.status", exc)


def record_error(span: Span, exc: BaseException) -> None:
    """The call raised: exception event, ``error.type``, status ERROR. Never raises.

    Runs inside the wrapper's ``except`` block before its bare ``raise``: anything
    raised here would replace the caller's exception.
    """
    try:
        span.record_exception(exc)
        span.set_attribute("error.type", type(exc).__qualname__)
        try:
            message = str(exc)
        except Exception:
            message = f"<unprintable {type(exc).__name__}>"
        span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {message}")
    except Exception as error:
        guard.report("http.error", error)


def end(span: Span) -> None:
    """End `span`; never raises (it runs in the wrappers' ``finally``)."""
    try:
        span.end()
    except Exception as exc:
        guard.report("http.end", exc)


def clear_trace_headers(headers: Any) -> None:
    """Remove from `headers` (our copy, or the request being sent) what `inject` is about to write.

    Any case, and names given as bytes too (a plain dict keeps ``b"traceparent"``
    apart from ``"traceparent"``: both would go out). The trace headers of every
    configured format go, so a ``tracestate`` (or B3 header) the caller copied from
    another request never travels with our ``traceparent``; ``baggage`` only when
    some is current (otherwise the caller's own stays, as `propagation.inject` keeps it).
    """
    names = composite()._trace_fields
    if _baggage_entries.get():
        names = names | {"baggage"}
    doomed = []
    for key in headers:
        name = key.decode("latin-1") if type(key) is bytes else key
        if type(name) is str and name.lower() in names:
            doomed.append(key)
    for key in doomed:
        headers.pop(key, None)  # a case-insensitive map may have lost it with an earlier variant


CLIENT = SpanKind.CLIENT


_MARK = "__nexs_traced__"
_STAND_IN_MARK = "__nexs_stand_in__"  # set by `instrumentation._make_stand_in`, to the stand-in


class Patch:
    """The methods one instrumentation replaced, and whether it is on.

    The wrappers check `enabled` first, so uninstalling also silences wrappers
    that other code captured before the originals were put back, or that stay
    because another library wrapped them in turn.
    """

    __slots__ = ("_originals", "enabled")

    def __init__(self) -> None:
        self.enabled = False
        self._originals: list[tuple[Any, str, Any, Any]] = []

    @staticmethod
    def applied(owner: Any, name: str) -> bool:
        """Whether `owner.name` is already one of our wrappers (or a proxy of one, as wrapt's are)."""
        return bool(getattr(getattr(owner, name), _MARK, False))

    @staticmethod
    def original(owner: Any, name: str) -> Any:
        """`owner.name`, or the method under it when it is one of our stand-ins (`instrumentation`).

        A stand-in stays in place while its instrumentation installs, so that a call
        made meanwhile waits for the wrapper instead of slipping past untraced; the
        wrapper wraps what the stand-in stands for, and `apply` replaces the stand-in.
        """
        method = getattr(owner, name)
        # The mark holds the stand-in itself: a wrapt proxy around one answers for its attributes,
        # and functools.wraps copies them; taking what is under such a wrapper would drop it.
        if getattr(method, _STAND_IN_MARK, None) is method:
            return getattr(method, "__wrapped__")  # noqa: B009 - set on the function, unseen by mypy
        return method

    def apply(self, *replacements: tuple[Any, str, Callable[..., Any]]) -> None:
        """Put each ``(owner, name, wrapper)`` in place, keeping the original for `restore`."""
        for owner, name, wrapper in replacements:
            original = Patch.original(owner, name)
            setattr(wrapper, _MARK, True)
            setattr(wrapper, "__wrapped__", original)  # noqa: B010 - a function attribute mypy cannot see
            self._originals.append((owner, name, original, wrapper))
            setattr(owner, name, wrapper)
        self.enabled = True

    def restore(self) -> None:
        """Turn the wrappers off and put the originals back where ours are still on top.

        Where another library wrapped ours since (OpenTelemetry's instrumentations
        use wrapt, whose proxy answers for our mark), its wrapper stays: removing it
        would uninstrument that library too. Ours below it is off.
        """
        self.enabled = False
        originals, self._originals = self._originals, []
        for owner, name, original, wrapper in originals:
            if vars(owner).get(name) is wrapper:
                setattr(owner, name, original)
