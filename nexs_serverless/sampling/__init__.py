"""Sampling: which traces are recorded (head) and which invocations are kept (tail).

- `head`: OpenTelemetry's samplers (``OTEL_TRACES_SAMPLER``), asked only for a
  new root or a remote parent; local children inherit their parent's flag.
- `tail`: a pipeline stage that judges each finished invocation against
  `rules` (errors, duration, cold start, attributes, then a ratio), per tenant
  if configured; `adaptive` replaces the ratio with a target rate.
- `invocations`: which invocation each span of a flushed batch belongs to.

Only `head` is imported here: tail sampling loads on the first flush, and
only when ``NEXS_TAIL_SAMPLING_RULES`` or ``NEXS_TAIL_SAMPLING_FILE`` is set.
"""

from __future__ import annotations

from .head import AlwaysOff, AlwaysOn, ParentBased, TraceIdRatio, create

__all__ = ["AlwaysOff", "AlwaysOn", "ParentBased", "TraceIdRatio", "create"]
