"""urllib3 (and so ``requests``): a CLIENT span per request, the context in its headers.

``HTTPConnectionPool.urlopen`` is wrapped once; every pool, including those
``requests`` and ``PoolManager`` make, goes through it. Retries, and redirects a
pool follows itself (``urlopen(..., redirect=True)``), re-enter ``urlopen`` from
inside: they stay within the one span and carry the same headers. Redirects
that ``PoolManager`` or ``requests`` follow are new calls: a span per hop. The
caller's headers object is copied before the context is added, and the copy
loses the trace headers the caller set, whatever their case or type (bytes
names included), so only ours go out. With ``preload_content=False`` (as
``requests`` always asks) the span ends with the response's headers, before the
body is read. Requests made by an instrumented AWS SDK call are left alone.
"""

from __future__ import annotations

from .. import _guard as guard
from ..context import _current
from ..propagation import inject
from ..tracing import tracer
from ._client import (
    CLIENT,
    Patch,
    clear_trace_headers,
    end,
    http_attributes,
    in_http_call,
    record_error,
    record_status,
    should_trace,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["install", "uninstall"]

_patch = Patch()
# RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."


def _is_absolute(url: str) -> bool:
    """Whether `url` starts with ``scheme://`` (a proxied request), not merely holds ``://`` later.

    A relative URL may carry ``://`` in its query (``/login?next=https://...``).
    """
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme[:1].isalpha() and scheme.isascii() and not scheme.strip(_SCHEME_CHARS)


def install() -> bool:
    """Wrap ``urllib3.connectionpool.HTTPConnectionPool.urlopen``; True when instrumented."""
    import urllib3.connectionpool

    pool: Any = urllib3.connectionpool.HTTPConnectionPool
    if Patch.applied(pool, "urlopen"):
        _patch.enabled = True
        return True
    original: Callable[..., Any] = Patch.original(pool, "urlopen")

    def urlopen(
        self: Any, method: str, url: str, body: Any = None, headers: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if not _patch.enabled or in_http_call.get() or not should_trace():
            return original(self, method, url, body, headers, *args, **kwargs)
        given = headers
        span = None
        try:
            full = url if _is_absolute(url) else _origin(self) + url
            name, attrs = http_attributes(method, full)
            span = tracer.span(name, kind=CLIENT, attributes=attrs)
            source = headers if headers is not None else self.headers
            copy = getattr(source, "copy", None)
            headers = copy() if callable(copy) else dict(source or {})
            clear_trace_headers(headers)
            inject(headers, span)
        except Exception as exc:
            guard.report("urllib3.start", exc)
            if span is not None:
                end(span)
            return original(self, method, url, body, given, *args, **kwargs)
        token = _current.set(span)
        http_token = in_http_call.set(True)
        try:
            response = original(self, method, url, body, headers, *args, **kwargs)
        except BaseException as exc:
            record_error(span, exc)
            raise
        else:
            record_status(span, getattr(response, "status", None))
        finally:
            in_http_call.reset(http_token)
            _current.reset(token)
            end(span)
        return response

    _patch.apply((pool, "urlopen", urlopen))
    return True


def uninstall() -> None:
    """Restore urllib3's method."""
    _patch.restore()


def _origin(pool: Any) -> str:
    """``scheme://host[:port]`` of `pool`; the port left out when it is the scheme's default or unset.

    urllib3 keeps an IPv6 address without its brackets, and a pool built as
    ``HTTPConnectionPool("host")`` has no port (it connects to the default one).
    """
    scheme = pool.scheme
    host = pool.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = pool.port
    if not port or port == {"http": 80, "https": 443}.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
