"""nexs_serverless: tracing for serverless functions, nearly free at cold start.

    from nexs_serverless import traced_handler, tracer

    @traced_handler
    def handler(event, context):
        with tracer.span("load-order", attributes={"order.id": "42"}):
            ...

Importing this package starts no thread, opens no connection, leaves
`os.environ` alone and imports no heavy module: exporters, cloud SDKs, the CLI
and the testing kit load only when used.
"""

from __future__ import annotations

from .config import ConfigError
from .context import current_span, wrap
from .handler import traced_handler
from .model import Link, SpanContext, SpanKind, StatusCode
from .runtime import VERSION as __version__  # noqa: N811
from .runtime import configure
from .runtime import stats_snapshot as stats
from .span import Span
from .tracing import Tracer, tracer

__all__ = [
    "ConfigError",
    "Link",
    "Span",
    "SpanContext",
    "SpanKind",
    "StatusCode",
    "Tracer",
    "__version__",
    "configure",
    "current_span",
    "flush",
    "stats",
    "traced_handler",
    "tracer",
    "wrap",
]


def __getattr__(name: str) -> object:
    # `flush` is rarely called by hand: load its module on first use.
    if name == "flush":
        from .flushing import flush

        return flush
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
