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

import os as _os

# In the Lambda layer, the modules below come from one file (see `_preload`), loaded at once in
# the order they import each other; elsewhere there is none. `tests/test_layer_bundle.py` checks
# that this list is what the imports below load.
if _os.path.exists(__path__[0] + "/_modules.bin"):
    from ._preload import install as _install_preload

    _install_preload(
        __path__[0],
        now=[
            f"{__name__}.{name}"
            for name in (
                "_stats",
                "attributes",
                "config",
                "model",
                "span",
                "pool",
                "runtime",
                "handler",
                "tracing",
            )
        ],
    )

from .config import ConfigError
from .handler import traced_handler
from .model import Link, SpanContext, SpanKind, StatusCode
from .runtime import VERSION as __version__  # noqa: N811
from .runtime import configure
from .runtime import stats_snapshot as stats
from .span import Span
from .tracing import Tracer, tracer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from . import baggage as baggage
    from .context import current_span as current_span
    from .context import wrap as wrap
    from .flushing import flush as flush
    from .instrumentation import instrument as instrument
    from .instrumentation import uninstrument as uninstrument
    from .propagation import extract as extract
    from .propagation import inject as inject

__all__ = [
    "ConfigError",
    "Link",
    "Span",
    "SpanContext",
    "SpanKind",
    "StatusCode",
    "Tracer",
    "__version__",
    "baggage",
    "configure",
    "current_span",
    "extract",
    "flush",
    "inject",
    "instrument",
    "stats",
    "traced_handler",
    "tracer",
    "uninstrument",
    "wrap",
]


# Public names whose modules load on first use (none is needed to decorate a handler; `context`
# loads with the first span, see `span._bind_context`).
_LAZY = {
    "baggage": ("nexs_serverless.baggage", None),
    "current_span": ("nexs_serverless.context", "current_span"),
    "extract": ("nexs_serverless.propagation", "extract"),
    "flush": ("nexs_serverless.flushing", "flush"),
    "inject": ("nexs_serverless.propagation", "inject"),
    "instrument": ("nexs_serverless.instrumentation", "instrument"),
    "uninstrument": ("nexs_serverless.instrumentation", "uninstrument"),
    "wrap": ("nexs_serverless.context", "wrap"),
}


def __getattr__(name: str) -> object:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
