"""Per-tenant exporters: `TenantRouter` and the ``NEXS_TENANT_EXPORTERS`` table that builds one.

Split from `tenancy` because only a function with ``NEXS_TENANT_EXPORTERS`` set routes:
one that only stamps ``tenant.id`` (``NEXS_TENANT_ID_FROM``) loads `tenancy` at its cold
start and never this module. `tenancy` forwards both names here on first use, so
``from nexs_serverless.tenancy import TenantRouter`` keeps working.

Isolation: a span goes to exactly one tenant's exporters or to the defaults, never to
another tenant's; if a tenant's exporter cannot be built, its spans are dropped and
counted rather than sent elsewhere.
"""

from __future__ import annotations

import time

from . import _guard as guard
from . import _stats as stats
from .context import export_deadline
from .exporters.base import ExportResult
from .tenancy import KEY, TenantStamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .config import Settings
    from .span import Span

__all__ = ["TenantRouter", "route_exporters"]


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
# key would go to the tenant's; the operator's INSECURE (meant for its local collector) sent a
# tenant's scheme-less gRPC endpoint its spans in plain text.
_OTLP_DESTINATION = tuple(
    f"OTEL_EXPORTER_OTLP_{signal}{setting}"
    for signal in ("", "TRACES_")
    for setting in ("ENDPOINT", "HEADERS", "CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE", "INSECURE")
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
        # A null, list or object has no text form: str() made "None" an endpoint or a header.
        unusable = sorted(str(key) for key, value in env.items() if not isinstance(value, (str, int, float)))
        if unusable:
            raise ValueError(f"env {', '.join(unusable)}: expected a string")
        return spec["exporter"], {str(key): str(value) for key, value in env.items()}
    raise ValueError("expected a name or an object with 'exporter'")
