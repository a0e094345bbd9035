"""Tail sampling per invocation: decide after the invocation ended, keep what matters.

This layer holds every span of an invocation until the flush, so it can judge
the whole invocation (did it fail, was it slow, was it a cold start) before
anything is sent: tail sampling without a collector. `TailSampler` is a
pipeline stage: it groups the flushed batch by invocation
(`invocations.owners`), asks the policy (`rules.Policy`, per tenant when the
root has a ``tenant.id`` with a policy of its own), records the decision on
the root (``sampling.rule``, ``sampling.probability``) and returns the spans of
the kept invocations. Spans that arrive after their root was decided (a thread
that outlived its invocation) follow the remembered decision of their trace.
Spans that arrive before it (their root still running: a flush at the end of
another, concurrent invocation, or a manual flush) wait for it, and join its
decision: an error among them keeps the whole trace. A trace is judged as one:
when several invocations of it are in a batch (a traced handler calling
another), or when it was kept before, all of it is kept if any part is. Spans
that waited `MAX_WAIT_S` seconds, or that do not fit in
`MAX_WAITING_SPANS`, go out undecided (``tail_waited_out``).

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
# How long spans wait for their root's decision. In seconds, not flushes: with concurrent
# requests (Cloud Run, Azure) every request's return is a flush, so a count ran out in moments.
MAX_WAIT_S = 30.0
MAX_WAITING_SPANS = 2048
_SAME_TRACE = "same_trace"


class TailSampler:
    """Keeps or drops each finished invocation of a batch (a pipeline stage).

    Args:
        policy: the default policy.
        tenants: ``tenant.id`` -> policy overriding the default for that tenant.
        memory: trace ids whose decision is remembered for late spans.
    """

    __slots__ = ("_clock", "_kept", "_memory", "_seen", "_waiting", "_waiting_spans", "policy", "tenants")

    def __init__(
        self,
        policy: Policy,
        tenants: Mapping[str, Policy] | None = None,
        *,
        memory: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.tenants = dict(tenants or {})
        self._memory = BoundedMemory(memory)
        self._seen = 0
        self._kept = 0
        self._clock = clock
        # trace id -> (when the first span began to wait, the spans), oldest first
        self._waiting: dict[int, tuple[float, list[Span]]] = {}
        self._waiting_spans = 0

    @classmethod
    def from_document(cls, document: object, *, clock: Callable[[], float] = time.monotonic) -> TailSampler:
        """A sampler from a parsed JSON document (see `rules`).

        Raises:
            ConfigError: for an invalid document.
        """
        policy, tenants = parse(document, clock=clock)
        return cls(policy, tenants, clock=clock)

    def __call__(self, spans: list[Span]) -> list[Span]:
        """The spans of the kept invocations (and of traces decided earlier that were kept)."""
        owner = owners(spans)
        first = owner[0] if owner else ORPHAN
        if not self._waiting and first != ORPHAN and owner.count(first) == len(owner):
            # One invocation and nothing waiting: the usual batch.
            root = spans[first]
            keep, name = self._judge(root, spans)
            self._count(root, keep, name)
            if keep:
                return spans
            stats.incr("tail_spans_dropped", len(spans))
            return []
        members: dict[int, list[Span]] = {}
        for index, root_index in enumerate(owner):
            if root_index != ORPHAN:
                members.setdefault(root_index, []).append(spans[index])
        # Decide each invocation with the spans of its trace that waited for it, then keep a trace
        # whole when any of its invocations is kept.
        waiting = self._waiting
        early: list[Span] = []
        traces: dict[int, bool] = {}
        decided: list[tuple[Span, bool, str]] = []
        for root_index, members_of_root in members.items():
            root = spans[root_index]
            group = members_of_root
            waited = waiting.pop(root.trace_id, None)
            if waited is not None:
                self._waiting_spans -= len(waited[1])
                early.extend(waited[1])
                group = waited[1] + members_of_root
            keep, name = self._judge(root, group)
            decided.append((root, keep, name))
            traces[root.trace_id] = traces.get(root.trace_id, False) or keep
        # Counted once the trace's verdict is known: an invocation another one of its trace keeps
        # is counted kept (same_trace), not dropped.
        for root, judged, rule in decided:
            if not judged and traces[root.trace_id]:
                root.attributes["sampling.rule"] = _SAME_TRACE
                root.attributes["sampling.probability"] = 1.0
                self._count(root, True, _SAME_TRACE)
            else:
                self._count(root, judged, rule)
        memory = self._memory
        kept: list[Span] = [span for span in early if traces[span.trace_id]]
        dropped = len(early) - len(kept)
        for index, span in enumerate(spans):
            trace_id = span.trace_id
            if owner[index] != ORPHAN or trace_id in traces:  # (an orphan: its parent was not here)
                keep = traces[trace_id]
            else:
                remembered = memory.get(trace_id)
                if remembered is None:  # its root still runs: wait for it
                    self._wait(span)
                    continue
                keep = bool(remembered)
            if keep:
                kept.append(span)
            else:
                dropped += 1
        kept.extend(self._waited_out())
        if dropped:
            stats.incr("tail_spans_dropped", dropped)
        return kept

    def discard_waiting(self) -> int:
        """Forget the spans waiting for their root's decision (a reconfiguration); how many."""
        count = self._waiting_spans
        self._waiting.clear()
        self._waiting_spans = 0
        return count

    def _wait(self, span: Span) -> None:
        entry = self._waiting.get(span.trace_id)
        if entry is None:
            self._waiting[span.trace_id] = (self._clock(), [span])
        else:
            entry[1].append(span)
        self._waiting_spans += 1

    def _waited_out(self) -> list[Span]:
        """Spans that waited too long, or the oldest beyond the bound: they go out undecided."""
        out: list[Span] = []
        waiting = self._waiting
        now = self._clock() if waiting else 0.0
        while waiting:
            trace_id, (since, held) = next(iter(waiting.items()))
            if now - since < MAX_WAIT_S and self._waiting_spans <= MAX_WAITING_SPANS:
                break
            del waiting[trace_id]
            self._waiting_spans -= len(held)
            out.extend(held)
        if out:
            stats.incr("tail_waited_out", len(out))
        return out

    def _judge(self, root: Span, group: list[Span]) -> tuple[bool, str]:
        """Whether the invocation is kept and the rule that kept it, recorded on the root."""
        policy = self.policy
        tenant = root.attributes.get("tenant.id")
        if tenant is not None and self.tenants:
            policy = self.tenants.get(str(tenant), policy)
        decision = policy.decide(root, group)
        if decision is not None:
            name, probability = decision
        elif self._memory.get(root.trace_id) is True:
            # A trace with several invocations in one instance is kept if any of them is: one kept
            # earlier keeps this one too.
            name, probability = _SAME_TRACE, 1.0
        else:
            return False, ""
        root.attributes["sampling.rule"] = name
        root.attributes["sampling.probability"] = probability
        return True, name

    def _count(self, root: Span, keep: bool, name: str) -> None:
        """Count the verdict and remember it for the trace's later spans and invocations."""
        self._seen += 1
        stats.incr("tail_invocations")
        if keep:
            self._kept += 1
            stats.incr("tail_kept")
            stats.incr("tail_kept_" + name)
        else:
            stats.incr("tail_dropped")
        stats.observe("tail_rate", self._kept / self._seen)
        self._memory.put(root.trace_id, keep)


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
        raw = data.decode("utf-8-sig", "replace")  # a BOM (Windows editors) is not JSON
    try:
        return variable, json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"invalid JSON ({exc})") from None
    except RecursionError:  # "[[[[..." deeper than the interpreter's stack: it broke every flush
        raise ValueError("invalid JSON (nested too deeply)") from None


def from_settings(settings: Settings) -> TailSampler | None:
    """The tail sampler the environment configures, or None (off, or invalid: logged once)."""
    from ..config import ConfigError, Problem, report

    # The variable in use, known before reading: a file that fails must be named as the file.
    rules = settings.environ.get("NEXS_TAIL_SAMPLING_RULES", "").strip()
    variable = "NEXS_TAIL_SAMPLING_RULES" if rules else "NEXS_TAIL_SAMPLING_FILE"
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
