"""Head samplers with OpenTelemetry's semantics (``OTEL_TRACES_SAMPLER``).

The ratio decision is a pure function of the trace id (its low 64 bits, as
OpenTelemetry's `TraceIdRatioBased` does), so every function that sees the
same trace decides the same way without talking to the others.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..model import SpanContext

__all__ = ["AlwaysOff", "AlwaysOn", "ParentBased", "TraceIdRatio", "create"]

_LOW_64 = (1 << 64) - 1


class AlwaysOn:
    """Record every trace."""

    __slots__ = ()
    description = "always_on"

    def should_sample(self, trace_id: int, parent: SpanContext | None) -> bool:
        """Always True."""
        return True


class AlwaysOff:
    """Record no trace (context still propagates, with sampled=0)."""

    __slots__ = ()
    description = "always_off"

    def should_sample(self, trace_id: int, parent: SpanContext | None) -> bool:
        """Always False."""
        return False


class TraceIdRatio:
    """Record a fixed fraction of traces, decided from the trace id.

    Args:
        ratio: fraction from 0.0 to 1.0.

    Raises:
        ValueError: when `ratio` is not a number within [0, 1] (NaN, a string
            and a bool are not).
    """

    __slots__ = ("bound", "description", "ratio")

    def __init__(self, ratio: float) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
            raise ValueError(f"sampling ratio must be a number within [0, 1], got {ratio!r}")
        ratio = float(ratio)
        self.ratio = ratio
        self.bound = round(ratio * (_LOW_64 + 1))
        self.description = f"traceidratio{{{ratio}}}"

    def should_sample(self, trace_id: int, parent: SpanContext | None) -> bool:
        """True when the trace id's low 64 bits fall below the ratio's bound."""
        return (trace_id & _LOW_64) < self.bound


class ParentBased:
    """Follow a remote parent's sampled flag; use `root` for new traces."""

    __slots__ = ("description", "root")

    def __init__(self, root: AlwaysOn | AlwaysOff | TraceIdRatio) -> None:
        self.root = root
        self.description = f"parentbased{{{root.description}}}"

    def should_sample(self, trace_id: int, parent: SpanContext | None) -> bool:
        """The parent's flag when there is a parent, else the root sampler's decision."""
        if parent is not None:
            return bool(parent.trace_flags & 1)
        return self.root.should_sample(trace_id, None)


def create(name: str, arg: float) -> AlwaysOn | AlwaysOff | TraceIdRatio | ParentBased:
    """The sampler for an ``OTEL_TRACES_SAMPLER`` name and ``OTEL_TRACES_SAMPLER_ARG``."""
    base = name.removeprefix("parentbased_")
    root: AlwaysOn | AlwaysOff | TraceIdRatio
    if base == "always_on":
        root = AlwaysOn()
    elif base == "always_off":
        root = AlwaysOff()
    elif base == "traceidratio":
        root = TraceIdRatio(arg)
    else:
        raise ValueError(f"unknown sampler {name!r}")
    return ParentBased(root) if name.startswith("parentbased_") else root
