"""`configure()`'s argument checks, and what a reconfiguration loses: off a default cold start.

A function configured by its environment never calls `configure`, and a
first configuration has no stages or exporters built to lose: so these load
only when code configures the tracer (`runtime.configure`) or reconfigures
after a flush (`Runtime.apply`, `Runtime._drop_exporters`).
"""

from __future__ import annotations

from . import _stats as stats
from . import config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    from .runtime import Runtime, Stage


def apply(
    runtime: Runtime, unset: object, exporters: Sequence[object] | object | None, **arguments: Any
) -> None:
    """Check `configure`'s arguments, then install them over the environment's settings.

    `unset` is `configure`'s marker for an `exporters` not passed (None means
    "back to the environment"). Raises `config.ConfigError` for a bad value.
    """
    environ: Mapping[str, str] | None = arguments.pop("environ")
    if environ is not None and not _is_text_mapping(environ):
        raise config.ConfigError("configure(environ=...) takes a mapping of str to str")
    base, problems = config.load(environ)
    config.report(problems)  # each variable and value once per process
    changes: dict[str, object] = {}
    for name, check in _CHECKS:
        value = arguments[name]
        if value is None:
            continue
        if not check(value):
            raise config.ConfigError(f"configure({name}={value!r}): invalid value")
        changes[name] = value
    resource_attributes = arguments["resource_attributes"]
    if resource_attributes is not None:
        given = dict(resource_attributes)
        changes["resource_attributes"] = {**base.resource_attributes, **given}
        # Code beats the environment: a ``service.name`` given here wins over ``OTEL_SERVICE_NAME``
        # (the resource takes `Settings.service_name` first), as in OpenTelemetry's `Resource.create`.
        code_name = given.get("service.name")
        if "service_name" not in changes and isinstance(code_name, str) and code_name.strip():
            changes["service_name"] = code_name
    settings = base.replace(**changes)
    if exporters is not unset:
        if exporters is not None:
            if isinstance(exporters, (str, bytes)) or not hasattr(exporters, "__iter__"):
                raise config.ConfigError("configure(exporters=...) takes a list of exporter objects")
            exporters = list(exporters)  # once: a generator can be read once
            if not _is_exporter_list(exporters):
                raise config.ConfigError("configure(exporters=...) takes a list of exporter objects")
        runtime.set_exporters(exporters)
    runtime.apply(settings)


def _is_text_mapping(value: object) -> bool:
    items = getattr(value, "items", None)
    return callable(items) and all(type(k) is str and type(v) is str for k, v in items())


def _is_attribute_mapping(value: object) -> bool:
    """Resource attributes: str keys, values of the attribute types (no arbitrary objects)."""
    items = getattr(value, "items", None)
    return callable(items) and all(
        type(k) is str and k and isinstance(v, (str, bool, int, float)) for k, v in items()
    )


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_exporter_list(value: object) -> bool:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return False
    items: Iterable[object] = value
    return all(callable(getattr(item, "export", None)) for item in items)


_HOUR_MS = 3_600_000  # as the environment's NEXS_FLUSH_TIMEOUT_MS and NEXS_TIMEOUT_GUARD_MS

# Each argument's check, in the order `configure` reports them.
_CHECKS: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("service_name", lambda v: isinstance(v, str) and bool(v.strip())),
    ("pool_size", lambda v: _is_int(v, 0) and v <= config.MAX_POOL_SIZE),
    ("max_buffered_spans", lambda v: _is_int(v, 1)),
    ("flush_timeout_ms", lambda v: _is_int(v, 1) and v <= _HOUR_MS),
    ("timeout_guard_ms", lambda v: _is_int(v, 0) and v <= _HOUR_MS),
    ("capture_event", lambda v: isinstance(v, bool)),
    ("capture_response", lambda v: isinstance(v, bool)),
    ("disabled", lambda v: isinstance(v, bool)),
    ("sampler", lambda v: v in config.SAMPLER_NAMES),
    ("sampler_arg", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1),
    ("resource_attributes", _is_attribute_mapping),
)


def count_lost_waiting(stages: list[Stage]) -> None:
    """Reconfiguring rebuilds the stages: spans a tail sampler held for a decision are lost, and counted."""
    for stage in stages:
        discard = getattr(stage, "discard_waiting", None)
        dropped = discard() if discard is not None else 0
        if dropped:
            stats.incr("spans_dropped_reconfigure", dropped)


def count_lost_carryover(exporters: list[object]) -> None:
    """Reconfiguring rebuilds the exporters: what their carry-over held is lost, and counted."""
    from .exporters.resilient import ResilientExporter

    for exporter in exporters:
        if isinstance(exporter, ResilientExporter):
            dropped = exporter.discard_carryover()
            if dropped:
                stats.incr("spans_dropped_reconfigure", dropped)
