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
- Routing: `TenantRouter` (an exporter wrapper) sends each span to its
  tenant's exporters if it has any, otherwise to the default ones. Isolation:
  a span goes to exactly one tenant's exporters or to the defaults, never to
  another tenant's; if a tenant's exporter cannot be built, its spans are
  dropped and counted rather than sent elsewhere.

Environment: ``NEXS_TENANT_ID_FROM`` (none), ``NEXS_TENANT_DEFAULT`` (none),
``NEXS_TENANT_EXPORTERS`` (JSON ``{"acme": "otlp"}`` or
``{"acme": {"exporter": "otlp", "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "..."}}}``, or a list of
these per tenant; an ``env`` that names an OTLP endpoint inherits none of the function's OTLP
endpoint, header or certificate variables, so the operator's credentials never go to a tenant's
back end),
``NEXS_TENANT_COPY_TO_DEFAULT`` (false: routed tenants' spans skip the defaults).
"""

from __future__ import annotations

import re
import time

from . import _guard as guard
from . import _stats as stats
from .config import ConfigError
from .context import export_deadline
from .exporters.base import ExportResult
from .sampling.invocations import ORPHAN, BoundedMemory, is_root, owners

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from .config import Settings
    from .span import Span

__all__ = ["TenantRouter", "TenantSource", "TenantStamp", "annotate", "extract", "route_exporters"]

KEY = "tenant.id"
MAX_LENGTH = 128
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\[(['\"])(.*?)\3\]")
_MAX_BODY = 1 << 20
# Most ancestors walked up to find a running root's tenant (a cycle cannot hold a stamp forever).
_MAX_DEPTH = 256


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
            raise ConfigError(
                f"tenant source {spec!r}: expected header:<name>, claim:<name> or path:<json path>"
            )
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
        except ConfigError as exc:
            problems.append(Problem("NEXS_TENANT_ID_FROM", spec, str(exc), "source skipped"))
    report(problems)
    default = _valid(settings.environ.get("NEXS_TENANT_DEFAULT", "")) or None
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


class TenantRouter:
    """An exporter that sends each tenant's spans only to that tenant's exporters.

    Each target is wrapped in its own `ResilientExporter` here, so `adapt` leaves the
    router itself unwrapped (`wraps_resilient_exporters`).

    Args:
        routes: tenant id -> exporter, or list of exporters, for that tenant alone.
        default: exporters for spans without a routed tenant.
        copy_to_default: also send routed tenants' spans to `default`.
    """

    wraps_resilient_exporters = True

    def __init__(
        self,
        routes: Mapping[str, object | Sequence[object]],
        default: Sequence[object] = (),
        *,
        copy_to_default: bool = False,
    ) -> None:
        from .exporters.adapt import adapt

        self.routes: dict[str, list[object]] = {}
        for tenant, exporters in routes.items():
            items = list(exporters) if isinstance(exporters, (list, tuple)) else [exporters]
            self.routes[str(tenant)] = [adapt(exporter) for exporter in items]
        self.default = [adapt(exporter) for exporter in default]
        self.copy_to_default = copy_to_default
        self._stamp = TenantStamp()

    def export(self, spans: Sequence[Span]) -> ExportResult:
        """Stamp, split by tenant, and export each part to its own exporters only."""
        batch = self._stamp(list(spans))
        routes = self.routes
        parts: dict[str | None, list[Span]] = {}
        for span in batch:
            tenant = span.attributes.get(KEY)
            key = str(tenant) if tenant is not None and str(tenant) in routes else None
            parts.setdefault(key, []).append(span)
        ok = True
        for tenant, part in parts.items():
            if tenant is None:
                ok &= self._send(self.default, part, "default")
                continue
            targets = routes[tenant]
            if not targets:  # its exporter could not be built: dropped, never sent elsewhere
                stats.incr("tenant_spans_unroutable", len(part))
            ok &= bool(targets) and self._send(targets, part, tenant)
            if self.copy_to_default:
                ok &= self._send(self.default, part, "default")
        return ExportResult.SUCCESS if ok else ExportResult.FAILURE

    def _send(self, exporters: list[object], spans: list[Span], label: str) -> bool:
        # Every target is called even past the deadline, as `flush` calls its exporters: each is a
        # `ResilientExporter`, which keeps what it has no time to send in its carry-over for the
        # next flush. Skipping one lost that tenant's spans whenever an earlier one used the budget.
        ok = True
        deadline = export_deadline()
        for exporter in exporters:
            if deadline and time.monotonic() >= deadline:
                stats.incr("exports_past_deadline")
            try:
                result = exporter.export(spans)  # type: ignore[attr-defined]
            except Exception as exc:
                guard.report(f"export:tenant:{label}:{type(exporter).__name__}", exc)
                ok = False
                continue
            ok = ok and getattr(result, "name", "") == "SUCCESS"
        return ok

    def _all(self) -> list[object]:
        return [*self.default, *(exporter for route in self.routes.values() for exporter in route)]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush every tenant's and the default exporters within one `timeout_millis`."""
        deadline = time.monotonic() + timeout_millis / 1000.0
        ok = True
        for exporter in self._all():
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                return False
            try:
                ok = bool(exporter.force_flush(left)) and ok  # type: ignore[attr-defined]
            except Exception as exc:
                guard.report("force_flush:tenant:" + type(exporter).__name__, exc)
                ok = False
        return ok

    def shutdown(self) -> None:
        """Shut every exporter down."""
        for exporter in self._all():
            try:
                exporter.shutdown()  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: PERF203 - one exporter's failure must not skip the others
                guard.report("shutdown:tenant:" + type(exporter).__name__, exc)


def route_exporters(exporters: list[object], settings: Settings) -> list[object]:
    """`exporters` wrapped in a `TenantRouter` when ``NEXS_TENANT_EXPORTERS`` is set.

    A tenant whose exporter cannot be built keeps an empty route: its spans
    are dropped and counted, never sent to the defaults or to another tenant.
    """
    raw = settings.environ.get("NEXS_TENANT_EXPORTERS", "").strip()
    if not raw:
        return exporters
    import json

    from .config import Problem, Reader, report

    reader = Reader(settings.environ)
    copy = reader.boolean("NEXS_TENANT_COPY_TO_DEFAULT", default=False)
    try:
        try:
            table = json.loads(raw)
        except RecursionError:
            raise ValueError("nested too deeply") from None
        if not isinstance(table, dict):
            raise ValueError("expected an object")
    except ValueError as exc:
        reader.problems.append(
            Problem(
                "NEXS_TENANT_EXPORTERS",
                f"<{len(raw)} characters, not shown: they may hold credentials>",
                f"a JSON object tenant -> exporter ({exc})",
                "no routing",
            )
        )
        report(reader.problems)
        return exporters
    routes: dict[str, list[object]] = {}
    for tenant, specs in table.items():
        route = routes[str(tenant)] = []
        for spec in specs if isinstance(specs, list) else [specs]:
            built = _build(spec, settings)
            if isinstance(built, Exception):
                reader.problems.append(
                    Problem(
                        "NEXS_TENANT_EXPORTERS",
                        _shown(tenant, spec),
                        f"an exporter name or {{'exporter': name, 'env': {{...}}}}, or a list ({built})",
                        "not built: the tenant's spans go to its other exporters, if any, else are dropped",
                    )
                )
            else:
                route.append(built)
        if isinstance(specs, list) and not specs:
            reader.problems.append(
                Problem("NEXS_TENANT_EXPORTERS", f"{tenant}: []", "at least one exporter", "spans dropped")
            )
    report(reader.problems)
    return [TenantRouter(routes, exporters, copy_to_default=copy)]


def _build(spec: object, settings: Settings) -> object:
    """One tenant exporter from its spec, or the exception that stopped it."""
    from .exporters import create

    try:
        name, env = _exporter_spec(spec)
        return create(name, settings.replace(environ=_tenant_environ(settings.environ, env)))
    except Exception as exc:
        return exc


def _shown(tenant: object, spec: object) -> str:
    """A tenant's exporter spec as a warning may show it: the names, never the env's values."""
    if isinstance(spec, dict):
        env = spec.get("env")
        names = sorted(str(name) for name in env) if isinstance(env, dict) else []
        return f"{tenant}: exporter {spec.get('exporter')!r}, env {names} (values not shown)"[:200]
    return f"{tenant}: {spec!r}"[:120]  # a bare exporter name


# The OTLP variables that say where spans go and with which credentials. A tenant's env that names
# its own endpoint inherits none of them: the operator's TRACES_ENDPOINT would win over the tenant's
# ENDPOINT (its spans to the operator's back end), and the operator's headers (an API key) or client
# key would go to the tenant's.
_OTLP_DESTINATION = tuple(
    f"OTEL_EXPORTER_OTLP_{signal}{setting}"
    for signal in ("", "TRACES_")
    for setting in ("ENDPOINT", "HEADERS", "CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE")
)


def _tenant_environ(environ: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """The environment a tenant's exporter reads: the function's, its own `env` over it."""
    merged = dict(environ)
    if any(name in env for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        for name in _OTLP_DESTINATION:
            merged.pop(name, None)
    merged.update(env)
    return merged


def _exporter_spec(spec: object) -> tuple[str, dict[str, str]]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and isinstance(spec.get("exporter"), str):
        env = spec.get("env", {})
        if not isinstance(env, dict) or set(spec) - {"exporter", "env"}:
            raise ValueError("only 'exporter' and 'env' (an object of strings) are accepted")
        return spec["exporter"], {str(key): str(value) for key, value in env.items()}
    raise ValueError("expected a name or an object with 'exporter'")
