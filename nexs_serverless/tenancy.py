"""Tenants: one tenant id per invocation, on every span, and per-tenant exporters.

A multi-tenant function serves many customers; their traces should say whose
request they were (``tenant.id`` on every span), may be sampled differently
(``tenants`` in the tail-sampling rules) and may have to go to the tenant's
own back end without ever reaching another tenant's.

- Extraction: `annotate` runs in `invocation.begin` and reads the tenant id
  from the event with the sources of ``NEXS_TENANT_ID_FROM``, tried in order:
  ``header:<name>`` (HTTP header, any case), ``claim:<name>`` (API Gateway
  authorizer: Cognito/JWT claims or a Lambda authorizer's context) or
  ``path:<json path>`` (``path:$.detail.tenantId``, ``path:Records[0].messageAttributes.tenant.stringValue``;
  a JSON string met on the way, such as an HTTP ``body``, is parsed).
- Stamping: `TenantStamp` (a pipeline stage) copies the root's ``tenant.id`` to
  every span of its invocation, remembering recent traces for late spans.
- Routing: `TenantRouter` (an exporter wrapper, in `_tenant_routing`: it loads only
  when ``NEXS_TENANT_EXPORTERS`` asks for it, through this module's names) sends each span to its
  tenant's exporters if it has any, otherwise to the default ones. Isolation:
  a span goes to exactly one tenant's exporters or to the defaults, never to
  another tenant's; if a tenant's exporter cannot be built, its spans are
  dropped and counted rather than sent elsewhere.

Environment: ``NEXS_TENANT_ID_FROM`` (none), ``NEXS_TENANT_DEFAULT`` (none),
``NEXS_TENANT_EXPORTERS`` (JSON ``{"acme": "otlp"}`` or
``{"acme": {"exporter": "otlp", "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "..."}}}``, or a list of
these per tenant; an ``env`` that names an OTLP endpoint inherits none of the function's OTLP
endpoint, header, certificate or insecure variables, so the operator's credentials never go to a
tenant's back end, nor its spans in plain text),
``NEXS_TENANT_COPY_TO_DEFAULT`` (false: routed tenants' spans skip the defaults).
"""

from __future__ import annotations

import re

from . import _guard as guard
from . import _stats as stats
from .config import ConfigError
from .sampling.invocations import ORPHAN, BoundedMemory, is_root, owners

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ._tenant_routing import TenantRouter, route_exporters
    from .config import Settings
    from .span import Span

__all__ = ["TenantRouter", "TenantSource", "TenantStamp", "annotate", "extract", "route_exporters"]

KEY = "tenant.id"
MAX_LENGTH = 128
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\[(['\"])(.*?)\3\]")
_MAX_BODY = 1 << 20
# Most ancestors walked up to find a running root's tenant (a cycle cannot hold a stamp forever).
_MAX_DEPTH = 256
_EXPECTED_SOURCE = "header:<name>, claim:<name> or path:<json path> such as $.a.b[0]['c.d']"


class TenantSource:
    """Where to read the tenant id: ``header:<name>``, ``claim:<name>`` or ``path:<json path>``.

    Raises:
        ConfigError: for an unknown kind or a malformed path.
    """

    __slots__ = ("kind", "name", "steps")

    def __init__(self, spec: str) -> None:
        kind, _, name = spec.strip().partition(":")
        kind = kind.strip().lower()
        name = name.strip()
        if kind not in ("header", "claim", "path") or not name:
            raise ConfigError(f"tenant source {spec!r}: expected {_EXPECTED_SOURCE}")
        self.kind = kind
        self.name = name.lower() if kind == "header" else name
        self.steps: list[str | int] = _parse_path(name) if kind == "path" else []

    def read(self, event: object) -> object:
        """The raw value this source finds in `event`, or None."""
        if self.kind == "header":
            return _header(event, self.name)
        if self.kind == "claim":
            return _claim(event, self.name)
        return _follow(event, self.steps)


def _parse_path(path: str) -> list[str | int]:
    text = path[1:] if path.startswith("$") else path
    if text and text[0] not in ".[":
        text = "." + text
    steps: list[str | int] = []
    position = 0
    for match in _PATH_STEP.finditer(text):
        if match.start() != position:
            break
        name, index, _, quoted = match.groups()
        steps.append(int(index) if index is not None else (name if name is not None else quoted))
        position = match.end()
    if position != len(text) or not steps:
        raise ConfigError(f"tenant path {path!r}: expected $.a.b[0]['c.d']")
    return steps


def _follow(value: object, steps: Sequence[str | int]) -> object:
    for step in steps:
        if isinstance(value, str) and value[:1] in ("{", "[") and len(value) <= _MAX_BODY:
            import json

            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                return None
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and -len(value) <= step < len(value) else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def _header(event: object, name: str) -> object:
    if isinstance(event, dict):
        headers = event.get("headers")
        if isinstance(headers, dict):
            for key, value in headers.items():
                if str(key).lower() == name:
                    return value
        # API Gateway REST sends both; an ALB with multi-value headers on sends only this one.
        many = event.get("multiValueHeaders")
        if isinstance(many, dict):
            for key, values in many.items():
                if str(key).lower() == name and isinstance(values, list) and values:
                    return values[0]
        if isinstance(headers, dict) or isinstance(many, dict):
            return None
    else:
        headers = getattr(event, "headers", None)
    getter = getattr(headers, "get", None)  # Flask / Azure request objects: case-insensitive
    return getter(name) if callable(getter) else None


def _claim(event: object, name: str) -> object:
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    if not isinstance(authorizer, dict):
        return None
    # REST + Cognito, HTTP API + JWT, HTTP API + Lambda authorizer, REST + Lambda authorizer.
    for path in (("claims",), ("jwt", "claims"), ("lambda",), ()):
        found = _follow(authorizer, [*path, name])
        if found is not None:
            return found
    return None


def _valid(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    if isinstance(value, int) and value.bit_length() > 430:  # over 128 digits (str() would raise past 4300)
        return None
    text = str(value).strip()
    return text if 0 < len(text) <= MAX_LENGTH and text.isprintable() else None


def extract(event: object, sources: Sequence[TenantSource], default: str | None = None) -> str | None:
    """The first valid tenant id the sources find in `event`, else `default`.

    A value that is not a string or integer, is empty, longer than 128
    characters or holds control characters is ignored and counted
    (``tenant_id_invalid``).
    """
    for source in sources:
        raw = source.read(event)
        if raw is None:
            continue
        tenant = _valid(raw)
        if tenant is not None:
            return tenant
        stats.incr("tenant_id_invalid")
    return default


_configured: list[tuple[Settings, tuple[TenantSource, ...], str | None]] = []


def _sources(settings: Settings) -> tuple[tuple[TenantSource, ...], str | None]:
    if _configured and _configured[0][0] is settings:
        return _configured[0][1], _configured[0][2]
    from .config import Problem, report

    sources: list[TenantSource] = []
    problems: list[Problem] = []
    for spec in settings.environ.get("NEXS_TENANT_ID_FROM", "").split(","):
        if not spec.strip():
            continue
        try:
            sources.append(TenantSource(spec))
        except ConfigError:
            # What is accepted, not the message: it quotes the spec, which the line already shows
            # (clipped), and a 3,000-character spec made a 3,000-character log line.
            problems.append(Problem("NEXS_TENANT_ID_FROM", spec, _EXPECTED_SOURCE, "source skipped"))
    raw_default = settings.environ.get("NEXS_TENANT_DEFAULT", "")
    default = _valid(raw_default) or None
    if default is None and raw_default.strip():  # a default that cannot be used is named, not ignored
        problems.append(
            Problem(
                "NEXS_TENANT_DEFAULT",
                raw_default[:200],
                f"a tenant id of at most {MAX_LENGTH} printable characters",
                "no default tenant",
            )
        )
    report(problems)
    _configured[:] = [(settings, tuple(sources), default)]
    return tuple(sources), default


def annotate(attributes: dict[str, object], event: object, settings: Settings) -> None:
    """Set ``tenant.id`` in the root span's `attributes` from `event` (called by `invocation.begin`).

    Never raises: a failure (an event object whose ``headers`` raise) is
    reported once and the invocation simply has no tenant.
    """
    try:
        sources, default = _sources(settings)
        tenant = extract(event, sources, default)
    except Exception as exc:
        guard.report("tenant_id", exc)
        return
    if tenant is not None:
        attributes[KEY] = tenant


class TenantStamp:
    """Copies each invocation root's ``tenant.id`` to every span of the invocation (a stage).

    A span whose root is not in the batch takes its trace's remembered tenant
    (its root was flushed earlier) or, when its root still runs (concurrent
    requests: another request's flush took this span first), the tenant of
    its nearest running ancestor that has one.

    Args:
        memory: trace ids whose tenant is remembered for spans that end after their root.
        running: the spans still running (default: the tracer's buffer).
    """

    __slots__ = ("_memory", "_running")

    def __init__(self, memory: int = 1024, running: Callable[[], Iterable[Span]] | None = None) -> None:
        self._memory = BoundedMemory(memory)
        self._running = running

    def __call__(self, spans: list[Span]) -> list[Span]:
        """Stamp in place; returns the same list."""
        owner = owners(spans)
        memory = self._memory
        for index, span in enumerate(spans):
            root = owner[index]
            if root == index:
                tenant = span.attributes.get(KEY)
                if tenant is not None:
                    memory.put(span.trace_id, tenant)
        unresolved: list[Span] = []
        for index, span in enumerate(spans):
            attributes = span.attributes
            if KEY in attributes:
                continue
            root = owner[index]
            inherited = spans[root].attributes.get(KEY) if root != ORPHAN else memory.get(span.trace_id)
            if inherited is not None:  # a root's own value, whatever its type: the router str()s it
                attributes[KEY] = inherited  # type: ignore[assignment]
            elif root == ORPHAN:
                unresolved.append(span)
        if unresolved:
            self._from_running(spans, unresolved)
        return spans

    def _from_running(self, spans: list[Span], unresolved: list[Span]) -> None:
        """Stamp spans whose root still runs with the tenant of their nearest running ancestor."""
        traces = {span.trace_id for span in unresolved}
        running = self._running() if self._running is not None else _running_spans()
        index = {span.span_id: span for span in running if span.trace_id in traces}
        if not index:
            return
        index.update((span.span_id, span) for span in spans if span.trace_id in traces)
        for span in unresolved:
            parent = index.get(span.parent_span_id)
            for _ in range(_MAX_DEPTH):
                if parent is None or parent.trace_id != span.trace_id:
                    break
                tenant = parent.attributes.get(KEY)
                if tenant is not None:
                    span.attributes[KEY] = tenant
                    break
                if is_root(parent):
                    break
                parent = index.get(parent.parent_span_id)


def _running_spans() -> list[Span]:
    """The spans in the tracer's buffer: those still running, and any ended since the flush began."""
    from .runtime import runtime

    return list(runtime.buffer.spans)


def __getattr__(name: str) -> object:
    """`TenantRouter` and `route_exporters`, imported from `_tenant_routing` on first use.

    Only ``NEXS_TENANT_EXPORTERS`` needs them: a function that only stamps tenants
    never loads the router's module.
    """
    if name not in ("TenantRouter", "route_exporters"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _tenant_routing

    value: object = getattr(_tenant_routing, name)
    globals()[name] = value
    return value
