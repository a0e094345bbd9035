"""Tail sampling per invocation: decide after the invocation ended, keep what matters.

This layer holds every span of an invocation until the flush, so it can judge
the whole invocation (did it fail, was it slow, was it a cold start) before
anything is sent: tail sampling without a collector. `TailSampler` is a
pipeline stage: it groups the flushed batch by invocation
(`invocations.owners`), asks the policy (`rules.Policy`, per tenant when the
root has a ``tenant.id`` with a policy of its own), records the decision on
the root (``sampling.rule``, ``sampling.probability``) and returns the spans of
the kept invocations. Spans that arrive after their root was decided (a thread
that outlived its invocation) follow the remembered decision of their trace;
spans of a trace never decided here pass through.

Limitations: the decision is per function. A trace that crosses functions is
kept whole only when each function keeps it; ratio decisions agree (they
depend on the trace id only) but rule decisions are local, so an error in a
downstream function can keep its part of a trace whose upstream part was dropped.

Stats: ``tail_invocations``, ``tail_kept``, ``tail_dropped``,
``tail_kept_<rule>``, ``tail_spans_dropped`` and the gauge ``tail_rate`` (kept
/ seen since the sampler was built).

Environment: ``NEXS_TAIL_SAMPLING_RULES`` (JSON, see `rules`) or
``NEXS_TAIL_SAMPLING_FILE`` (a path to the same JSON, at most 64 KiB); the
variable wins when both are set. Invalid configuration logs one line and
turns tail sampling off (everything is kept).
"""

from __future__ import annotations

import time

from .. import _stats as stats
from .invocations import ORPHAN, BoundedMemory, owners
from .rules import parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..config import Settings
    from ..span import Span
    from .rules import Policy

__all__ = ["TailSampler", "from_settings", "load_document"]

_MAX_FILE_BYTES = 64 * 1024


class TailSampler:
    """Keeps or drops each finished invocation of a batch (a pipeline stage).

    Args:
        policy: the default policy.
        tenants: ``tenant.id`` -> policy overriding the default for that tenant.
        memory: trace ids whose decision is remembered for late spans.
    """

    __slots__ = ("_kept", "_memory", "_seen", "policy", "tenants")

    def __init__(
        self, policy: Policy, tenants: Mapping[str, Policy] | None = None, *, memory: int = 1024
    ) -> None:
        self.policy = policy
        self.tenants = dict(tenants or {})
        self._memory = BoundedMemory(memory)
        self._seen = 0
        self._kept = 0

    @classmethod
    def from_document(cls, document: object, *, clock: Callable[[], float] = time.monotonic) -> TailSampler:
        """A sampler from a parsed JSON document (see `rules`).

        Raises:
            ConfigError: for an invalid document.
        """
        policy, tenants = parse(document, clock=clock)
        return cls(policy, tenants)

    def __call__(self, spans: list[Span]) -> list[Span]:
        """The spans of the kept invocations, in batch order."""
        owner = owners(spans)
        first = owner[0] if owner else ORPHAN
        if first != ORPHAN and owner.count(first) == len(owner):  # one invocation: the usual batch
            if self._decide(spans[first], spans):
                return spans
            stats.incr("tail_spans_dropped", len(spans))
            return []
        members: dict[int, list[Span]] = {}
        for index, root in enumerate(owner):
            if root != ORPHAN:
                members.setdefault(root, []).append(spans[index])
        verdict: dict[int, bool] = {}
        for root_index, group in members.items():
            verdict[root_index] = self._decide(spans[root_index], group)
        memory = self._memory
        kept: list[Span] = []
        dropped = 0
        for index, span in enumerate(spans):
            root = owner[index]
            if root != ORPHAN:
                keep = verdict[root]
            else:
                remembered = memory.get(span.trace_id)
                keep = True if remembered is None else bool(remembered)
            if keep:
                kept.append(span)
            else:
                dropped += 1
        if dropped:
            stats.incr("tail_spans_dropped", dropped)
        return kept

    def _decide(self, root: Span, group: list[Span]) -> bool:
        policy = self.policy
        tenant = root.attributes.get("tenant.id")
        if tenant is not None and self.tenants:
            policy = self.tenants.get(str(tenant), policy)
        decision = policy.decide(root, group)
        self._seen += 1
        stats.incr("tail_invocations")
        keep = decision is not None
        if decision is not None:
            name, probability = decision
            root.attributes["sampling.rule"] = name
            root.attributes["sampling.probability"] = probability
            self._kept += 1
            stats.incr("tail_kept")
            stats.incr("tail_kept_" + name)
        else:
            stats.incr("tail_dropped")
        stats.observe("tail_rate", self._kept / self._seen)
        # A trace with several invocations in one instance is kept if any of them is.
        previous = self._memory.get(root.trace_id)
        self._memory.put(root.trace_id, keep or previous is True)
        return keep


def load_document(settings: Settings) -> tuple[str, object] | None:
    """The variable that configured tail sampling and its parsed JSON, or None when off.

    Raises:
        ValueError: for an unreadable file or invalid JSON.
    """
    import json

    raw = settings.environ.get("NEXS_TAIL_SAMPLING_RULES", "").strip()
    variable = "NEXS_TAIL_SAMPLING_RULES"
    if not raw:
        path = settings.environ.get("NEXS_TAIL_SAMPLING_FILE", "").strip()
        if not path:
            return None
        variable = "NEXS_TAIL_SAMPLING_FILE"
        try:
            with open(path, "rb") as fh:
                data = fh.read(_MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"cannot read {path!r} ({exc.strerror})") from None
        if len(data) > _MAX_FILE_BYTES:
            raise ValueError(f"{path!r} is larger than {_MAX_FILE_BYTES} bytes")
        raw = data.decode("utf-8", "replace")
    try:
        return variable, json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"invalid JSON ({exc})") from None


def from_settings(settings: Settings) -> TailSampler | None:
    """The tail sampler the environment configures, or None (off, or invalid: logged once)."""
    from ..config import ConfigError, Problem, report

    variable = "NEXS_TAIL_SAMPLING_RULES"
    try:
        found = load_document(settings)
        if found is None:
            return None
        variable, document = found
        return TailSampler.from_document(document)
    except (ValueError, ConfigError) as exc:
        raw = settings.environ.get(variable, "")
        shown = raw if len(raw) <= 120 else raw[:117] + "..."
        report(
            [
                Problem(
                    variable, shown, f"tail-sampling rules; {exc}", "tail sampling off, every invocation kept"
                )
            ]
        )
        return None
