"""Trace context in and out of carriers: `extract`, `inject`, and the formats behind them.

    from nexs_serverless import propagation

    headers = {}
    propagation.inject(headers)            # the current span's context, in every configured format
    parent = propagation.extract(request.headers)   # SpanContext | None

Carriers are dict-like header maps, read case-insensitively (see `_carrier`);
`inject` also writes into a list of (name, value) pairs, text or bytes (an ASGI message's headers).
The formats are chosen by ``OTEL_PROPAGATORS`` (default
``tracecontext,baggage,xray``; names in `config.PROPAGATOR_NAMES`):

========================  ==============================================  ===========================
name                      headers                                         module
========================  ==============================================  ===========================
``tracecontext``          ``traceparent``, ``tracestate``                 `tracecontext`
``baggage``               ``baggage``                                     `baggage`
``xray``                  ``X-Amzn-Trace-Id``                             `xray`
``xray-lambda``           ``X-Amzn-Trace-Id`` + ``_X_AMZN_TRACE_ID``      `xray`
``b3`` / ``b3multi``      ``b3`` / ``X-B3-TraceId``, ``X-B3-SpanId``, …   `b3`
``cloud_trace``/``gcp``   ``X-Cloud-Trace-Context``                       `cloud_trace`
``request_id``            ``Request-Id`` (when no ``traceparent``)        `request_id`
``none``                  nothing                                         (none)
========================  ==============================================  ===========================

As in OpenTelemetry's composite propagator, formats are read in the listed
order and a later one that finds a valid context replaces an earlier one
(so ``xray,tracecontext`` prefers W3C); every format is written on inject.
Malformed input never raises: it reads as "no context" and a new trace starts.
Modules load when first used, not at ``import nexs_serverless``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._api import CompositePropagator as CompositePropagator
    from ._api import composite as composite
    from ._api import extract as extract
    from ._api import extract_incoming as extract_incoming
    from ._api import fields as fields
    from ._api import inject as inject
    from ._api import load as load
    from .incoming import Incoming as Incoming

__all__ = [
    "CompositePropagator",
    "Incoming",
    "composite",
    "extract",
    "extract_incoming",
    "fields",
    "inject",
]


def __getattr__(name: str) -> object:
    # The API lives in `_api`, loaded on first use: a cold start imports this package only as the
    # parent of the submodules that read Lambda's X-Ray header.
    if name.startswith("__") or name == "_api":  # `from . import _api` asks before importing it
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _api

    try:
        value = getattr(_api, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
