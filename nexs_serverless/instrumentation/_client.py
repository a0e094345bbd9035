"""What every outgoing-call instrumentation shares: when to trace, and CLIENT span bookkeeping.

A call is traced only inside a trace (a current span or a continued remote
context): a call made during init, outside any invocation, would otherwise
become a one-span trace shipped with the first invocation's batch. Never
while the tracer exports (`context.suppressed`), never when disabled, and an
HTTP request made *by* an AWS SDK call is not traced again (the SDK call has
its own span and writes its own headers).
"""

from __future__ import annotations

from _contextvars import ContextVar

from ..context import _current, suppressed
from ..model import SpanKind, StatusCode
from ..runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..span import Span

__all__ = ["http_attributes", "in_sdk_call", "record_error", "record_status", "should_trace"]

in_sdk_call: ContextVar[bool] = ContextVar("nexs_in_sdk_call", default=False)
in_http_call: ContextVar[bool] = ContextVar("nexs_in_http_call", default=False)


def should_trace() -> bool:
    """True when an outgoing call now should get a span and carry the context."""
    return (
        _current.get() is not None
        and not suppressed()
        and not in_sdk_call.get()
        and not runtime.settings.disabled
    )


def http_attributes(method: str, url: str) -> tuple[str, dict[str, object]]:
    """Span name and OpenTelemetry HTTP client attributes for a request (credentials removed)."""
    from urllib.parse import urlsplit, urlunsplit

    method = method.upper() or "_OTHER"
    attrs: dict[str, object] = {"http.request.method": method}
    try:
        parts = urlsplit(url)
        host = parts.hostname
        netloc = parts.netloc.rpartition("@")[2]
        attrs["url.full"] = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        if host:
            attrs["server.address"] = host
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        if port:
            attrs["server.port"] = port
    except ValueError:
        attrs["url.full"] = url
    return method, attrs


def record_status(span: Span, code: object) -> None:
    """``http.response.status_code``; 4xx and 5xx are errors for a client (``error.type`` = the code)."""
    if type(code) is not int:
        return
    span.set_attribute("http.response.status_code", code)
    if code >= 400:
        span.set_attribute("error.type", str(code))
        span.set_status(StatusCode.ERROR, f"HTTP {code}")


def record_error(span: Span, exc: BaseException) -> None:
    """The call raised: exception event, ``error.type``, status ERROR."""
    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}")


CLIENT = SpanKind.CLIENT


_MARK = "__nexs_traced__"


class Patch:
    """The methods one instrumentation replaced, and whether it is on.

    The wrappers check `enabled` first, so uninstalling also silences wrappers
    that other code captured before the originals were put back.
    """

    __slots__ = ("_originals", "enabled")

    def __init__(self) -> None:
        self.enabled = False
        self._originals: list[tuple[Any, str, Any]] = []

    @staticmethod
    def applied(owner: Any, name: str) -> bool:
        """Whether `owner.name` is already one of our wrappers."""
        return bool(getattr(getattr(owner, name), _MARK, False))

    def apply(self, *replacements: tuple[Any, str, Callable[..., Any]]) -> None:
        """Put each ``(owner, name, wrapper)`` in place, keeping the original for `restore`."""
        for owner, name, wrapper in replacements:
            original = getattr(owner, name)
            setattr(wrapper, _MARK, True)
            setattr(wrapper, "__wrapped__", original)  # noqa: B010 - a function attribute mypy cannot see
            self._originals.append((owner, name, original))
            setattr(owner, name, wrapper)
        self.enabled = True

    def restore(self) -> None:
        """Turn the wrappers off and put the originals back where ours are still in place."""
        self.enabled = False
        originals, self._originals = self._originals, []
        for owner, name, original in originals:
            if self.applied(owner, name):
                setattr(owner, name, original)
