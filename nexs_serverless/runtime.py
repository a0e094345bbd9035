"""Process-wide tracer state, and `configure` which replaces it.

One `Runtime` lives for the whole process (warm invocations share its pool,
buffer and exporters). Exporters are built on first flush, not at import, so
that importing the package costs nothing and a configured OTLP exporter's
modules load during the first invocation's init, not on the cold path.
"""

from __future__ import annotations

import threading

from . import _stats as stats
from . import config
from .model import InstrumentationScope
from .pool import SpanBuffer, SpanPool
from .span import state as span_state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import ModuleType

    from .sampling.head import AlwaysOff, AlwaysOn, ParentBased, TraceIdRatio
    from .span import Span

    Sampler = AlwaysOn | AlwaysOff | TraceIdRatio | ParentBased
    Stage = Callable[[list[Span]], list[Span]]
    # Exporters a reconfiguration made inside a flush replaced, those it kept, the preparing thread.
    Retiring = tuple[list[object], set[int], threading.Thread | None]

__all__ = ["Runtime", "configure", "runtime", "stats_snapshot"]

VERSION = "0.1.0"


class Runtime:
    """Settings plus the live objects built from them."""

    __slots__ = (
        "_build_lock",
        "_explicit",
        "_exporters",
        "_platform_module",
        "_prepared",
        "_preparing",
        "_stages",
        "buffer",
        "buffered",
        "disabled",
        "flush_lock",
        "flush_thread",
        "max_buffered",
        "plain_attribute_limit",
        "platform",
        "pool",
        "retiring",
        "sampler",
        "settings",
    )

    def __init__(self, settings: config.Settings) -> None:
        self.flush_lock = threading.Lock()
        # Who holds `flush_lock` (0: nobody), so that a reconfiguration made by
        # the flush itself (an exporter, a stage) does not wait for it: see `_retire.retire`.
        self.flush_thread = 0
        self.retiring: list[Retiring] = []  # shut down once the flush holding the lock ends
        self._build_lock = threading.Lock()
        self._prepared = False
        self._preparing: threading.Thread | None = None
        self._explicit: list[object] | None = None
        self._exporters: list[object] | None = None
        self.pool = SpanPool(settings.pool_size)
        self.buffer = SpanBuffer(settings.max_buffered_spans)
        self.settings = settings
        self.sampler: Sampler | None = _sampler(settings)
        self.platform = ""
        self._platform_module: ModuleType | None = None
        self._stages: list[Stage] | None = None
        self.apply(settings)

    def apply(self, settings: config.Settings) -> None:
        """Adopt `settings`: limits, resource, sampler, buffer bound, pool size."""
        self.settings = settings
        # Read on every span start, so kept as plain attributes rather than looked up.
        self.disabled = settings.disabled
        limits = settings.limits
        self.plain_attribute_limit = limits.attribute_count if limits.attribute_value_length is None else -1
        self.sampler = _sampler(settings)
        self.buffer.max_spans = settings.max_buffered_spans
        self.buffered = self.buffer.spans  # the list itself, for the span-start hot path
        self.max_buffered = settings.max_buffered_spans
        if settings.pool_size != self.pool.size:
            self.pool = SpanPool(settings.pool_size)
        span_state.limits = settings.limits
        span_state.set_resource_factory(lambda: build_resource_attributes(settings))  # type: ignore[arg-type,return-value]
        span_state.scope = InstrumentationScope("nexs_serverless", VERSION)
        self._drop_exporters(None)
        self._prepared = False
        self._platform_module = None
        if self._stages:  # a reconfiguration after a flush
            from ._configure import count_lost_waiting

            count_lost_waiting(self._stages)
        self._stages = None

    def platform_module(self) -> ModuleType:
        """The platform this process runs on (see `platforms.current`), detected once."""
        module = self._platform_module
        if module is None:
            from .platforms import current

            module = self._platform_module = current(self.settings)
            self.platform = module.__name__.rsplit(".", 1)[-1]
        return module

    def stages(self) -> list[Stage]:
        """Steps every flushed batch passes through before export, built on first use.

        A stage takes the batch and returns the spans to export (tail sampling
        drops, redaction rewrites attributes). Empty unless configured.
        """
        stages = self._stages
        if stages is None:
            stages = self._stages = _build_stages(self.settings)
        return stages

    def exporters(self) -> list[object]:
        """The exporters to flush to, built on first use."""
        current = self._exporters
        if current is None:
            with self._build_lock:  # the background `prepare_exporters` thread may be building them
                current = self._exporters
                if current is None:
                    current = self._exporters = self._build_exporters()
        return current

    def prepare_exporters(self) -> None:
        """Open network exporters' connections in a background thread, once (called at decoration).

        Hides the connection's latency behind the rest of the function's init:
        the thread builds the exporters and calls their `prepare()` (connect,
        load a signer). Only when a configured exporter talks to a network back
        end; never at import, no thread for console or in-memory exporters.
        """
        if self._prepared or self.settings.disabled:
            return
        explicit = self._explicit
        if explicit is not None:
            if not any(hasattr(exporter, "prepare") for exporter in explicit):
                return
        elif not _NETWORK_EXPORTERS.intersection(self.settings.exporters):
            return
        self._prepared = True
        thread = self._preparing = threading.Thread(
            target=self._prepare, name="nexs-prepare-exporters", daemon=True
        )
        thread.start()

    def _prepare(self) -> None:
        try:
            exporters = self.exporters()
        except Exception as exc:  # the first flush builds them again and reports what fails
            exporters = []
            _report_prepare(exc)
        for exporter in exporters:  # one that cannot prepare does not keep the others from it
            _prepare_one(exporter)

    def set_exporters(self, exporters: Sequence[object] | None, *, shut_down_replaced: bool = True) -> None:
        """Use `exporters` instead of ``OTEL_TRACES_EXPORTER`` (None: back to the environment).

        Those replaced are shut down, except any passed again; not with
        `shut_down_replaced=False`, for code that puts them back later (`testing.capture_spans`).
        """
        with self._build_lock:  # a build in progress (`prepare_exporters`) must not install the old set
            replaced = self._explicit
            self._explicit = None if exporters is None else list(exporters)
        self._drop_exporters(replaced, shut_down=shut_down_replaced)

    def retire_deferred(self, retiring: list[Retiring], deadline: float) -> None:
        """Shut down what reconfigurations inside the flush that just ended replaced; never raises.

        Called by the flush after it releases its lock, with the flush's own
        deadline. An object passed to `configure` again since is kept.
        """
        from ._retire import retire_deferred

        retire_deferred(retiring, self._explicit or (), deadline)

    def _drop_exporters(self, replaced: list[object] | None, *, shut_down: bool = True) -> None:
        """Forget the built exporters (the next flush builds them again) and shut down those now unused.

        Left to the garbage collector, their sockets, gRPC channels, threads and
        files lived on. `replaced`: the user's list before `set_exporters`, shut
        down itself when nothing was built from it yet. See `_retire.retire`.
        """
        with self._build_lock:
            built, self._exporters = self._exporters, None
        if built:  # a reconfiguration after a flush
            from ._configure import count_lost_carryover

            count_lost_carryover(built)
        retired = built or replaced
        if retired and shut_down:
            from ._retire import retire

            retire(retired, self._explicit or (), self.settings.flush_timeout_ms, self._preparing)

    def _build_exporters(self) -> list[object]:
        from . import _guard as guard
        from .exporters import create
        from .exporters.adapt import adapt

        built: list[object] = []
        explicit = self._explicit
        if explicit is not None:
            for exporter in explicit:
                try:
                    built.append(adapt(exporter, self.settings))
                except Exception as exc:  # noqa: PERF203 - one odd object must not cost the others
                    # (a proxy whose `__getattr__` raises lost every exporter's spans at every flush)
                    guard.report("exporter:" + type(exporter).__name__, exc)
            return _routed(built, self.settings)
        for name in self.settings.exporters:
            if name == "none":
                continue
            try:
                built.append(adapt(create(name, self.settings), self.settings))
            except Exception as exc:  # a missing extra must not break the handler
                guard.report(f"exporter:{name}", exc)
        return _routed(built, self.settings)


def _prepare_one(exporter: object) -> None:
    try:
        prepare = getattr(exporter, "prepare", None)
        if prepare is not None:
            prepare()
    except OSError:  # a back end not reachable yet: counted; the first flush classifies and logs it
        stats.incr("prepare_failed")
    except Exception as exc:  # anything else is a bug: reported once, with its trace
        _report_prepare(exc)


def _report_prepare(exc: Exception) -> None:
    from . import _guard as guard

    guard.report("prepare_exporters", exc)


# OTEL_TRACES_EXPORTER names whose exporters connect to a back end (see `prepare_exporters`).
_NETWORK_EXPORTERS = frozenset({"otlp", "otlp_proto_http", "otlp_proto_grpc"})


def _build_stages(settings: config.Settings) -> list[Stage]:
    """Tenant stamping, tail sampling, then redaction, built on the first flush.

    Tenancy and tail sampling load only when their variables are set; redaction
    is on by default (credentials) unless ``NEXS_REDACTION_ENABLED=false``.
    """
    environ = settings.environ
    stages: list[Stage] = []
    tenancy = ("NEXS_TENANT_ID_FROM", "NEXS_TENANT_DEFAULT", "NEXS_TENANT_EXPORTERS")
    if any(environ.get(name) for name in tenancy):
        from .tenancy import TenantStamp

        stages.append(TenantStamp())
    if environ.get("NEXS_TAIL_SAMPLING_RULES") or environ.get("NEXS_TAIL_SAMPLING_FILE"):
        from .sampling.tail import from_settings as tail_sampler

        sampler = tail_sampler(settings)
        if sampler is not None:
            stages.append(sampler)
    from .redaction import from_settings as redactor

    redaction = redactor(settings)
    if redaction is not None:
        stages.append(redaction)
    return stages


def _routed(exporters: list[object], settings: config.Settings) -> list[object]:
    """The exporters behind a per-tenant router when ``NEXS_TENANT_EXPORTERS`` is set."""
    if not settings.environ.get("NEXS_TENANT_EXPORTERS"):
        return exporters
    from .tenancy import route_exporters

    return route_exporters(exporters, settings)


def _sampler(settings: config.Settings) -> Sampler | None:
    """None stands for the default, parent-based always-on, which needs no call per trace."""
    if settings.sampler == "parentbased_always_on":
        return None
    from .sampling.head import create

    return create(settings.sampler, settings.sampler_arg)


def build_resource_attributes(settings: config.Settings) -> dict[str, object]:
    """``service.name``, the SDK's identity, the platform's attributes, then ``OTEL_RESOURCE_ATTRIBUTES``."""
    from .platforms import resource_attributes

    platform_attrs = resource_attributes(settings)
    attrs: dict[str, object] = {
        "telemetry.sdk.name": "nexs_serverless",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": VERSION,
    }
    attrs.update(platform_attrs)
    attrs.update(settings.resource_attributes)
    attrs["service.name"] = (
        settings.service_name
        or settings.resource_attributes.get("service.name")
        or platform_attrs.get("faas.name")
        or "unknown_service"
    )
    return attrs


runtime = Runtime(config.from_env())

_UNSET = object()


def configure(
    *,
    exporters: Sequence[object] | object | None = _UNSET,
    service_name: str | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    sampler: str | None = None,
    sampler_arg: float | None = None,
    pool_size: int | None = None,
    max_buffered_spans: int | None = None,
    flush_timeout_ms: int | None = None,
    timeout_guard_ms: int | None = None,
    capture_event: bool | None = None,
    capture_response: bool | None = None,
    disabled: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Configure the tracer in code; arguments given here beat the environment.

    Args:
        exporters: exporter objects (ours or OpenTelemetry SDK `SpanExporter`s);
            None returns to ``OTEL_TRACES_EXPORTER``.
        service_name: ``service.name`` (else ``OTEL_SERVICE_NAME``, else the function name).
        resource_attributes: extra resource attributes, merged over ``OTEL_RESOURCE_ATTRIBUTES``.
        sampler: an ``OTEL_TRACES_SAMPLER`` name.
        sampler_arg: the sampler's ratio (``OTEL_TRACES_SAMPLER_ARG``).
        pool_size: span records kept ready (0 turns the pool off; at most 65536).
        max_buffered_spans: spans held before a flush; more are dropped and counted.
        flush_timeout_ms: flush budget at the end of an invocation.
        timeout_guard_ms: flush this long before the invocation's deadline (0: off).
        capture_event: record the triggering event on the root span.
        capture_response: record the handler's response on the root span.
        disabled: the kill switch (same as ``OTEL_SDK_DISABLED``).
        environ: read this mapping instead of `os.environ` (tests, `config check`).

    Raises:
        ConfigError: for a value that cannot be used.
    """
    from ._configure import apply

    apply(
        runtime,
        _UNSET,
        exporters,
        service_name=service_name,
        resource_attributes=resource_attributes,
        sampler=sampler,
        sampler_arg=sampler_arg,
        pool_size=pool_size,
        max_buffered_spans=max_buffered_spans,
        flush_timeout_ms=flush_timeout_ms,
        timeout_guard_ms=timeout_guard_ms,
        capture_event=capture_event,
        capture_response=capture_response,
        disabled=disabled,
        environ=environ,
    )


def stats_snapshot() -> dict[str, float]:
    """Counters since the process started: spans, pool, flushes, drops, errors."""
    out = stats.snapshot()
    pool = runtime.pool
    out["pool_hits"] = pool.hits
    out["pool_misses"] = pool.misses
    out["pool_recycled"] = pool.recycled
    out["pool_free"] = pool.free
    out["spans_buffered"] = len(runtime.buffer.spans)
    return out
