"""What started the invocation: ``faas.trigger``, span kind, name, attributes and parent context.

Each event source is one module with ``describe(event) -> Trigger``.
`source_of` tells which one an event comes from by its shape, in one pass and
without importing any of them, so an invocation loads only its own source's
module (a cold start pays for one, not eight); unknown events are ``other``.

Where the parent comes from: a source *offers* every context it finds, tagged
with where it came from (``headers``, ``host``, ``xray``, ``derived``; see
`nexs_serverless.propagation.options`), the platform adds its own (Lambda's
client context and X-Ray variable), and `Trigger.resolve` picks the first in
``NEXS_CONTEXT_PRECEDENCE`` order. The winning source is recorded on the root
span as ``nexs.context.source``.
"""

from __future__ import annotations

import importlib
import sys

from .. import _guard as guard
from ..model import SpanKind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import ModuleType

    from ..model import Link, SpanContext
    from ..propagation.incoming import Incoming
    from ..span import Span

__all__ = ["Trigger", "describe", "source_of"]

# ``eventSource`` of a batch's first record -> module (SQS and SNS are tested first).
_RECORD_SOURCES = {
    "aws:kinesis": ".kinesis",
    "aws:dynamodb": ".dynamodb",
    "aws:s3": ".s3",
}
_loaded: dict[str, ModuleType] = {}
_BAGGAGE = __name__.rpartition(".")[0] + ".baggage"  # loaded only by code that uses baggage


class Trigger:
    """What `describe` learned from an event.

    Attributes:
        trigger: ``faas.trigger`` value (http, pubsub, datasource, timer, other).
        kind: span kind of the invocation's root span.
        name: span name suggested by the source (``GET /orders/{id}``), or None.
        attributes: semantic-convention attributes for the root span.
        parent: the context the root span continues (set directly, or by `resolve`).
        links: links to the contexts of batched messages.
        dropped_links: links of the batch left out for the span's link limit
            (added to the root span's dropped count).
        on_result: called with the root span and the handler's return value.
        candidates: contexts (and baggage) found, by source, for `resolve`.
        carried: the `Incoming` whose baggage and X-Ray extras the invocation adopts.
        on_start: called with the root span once it is current (per-message spans).
        on_end: called with the root span just before it ends.
    """

    __slots__ = (
        "_baggage",
        "_tokens",
        "attributes",
        "candidates",
        "carried",
        "dropped_links",
        "kind",
        "links",
        "name",
        "on_end",
        "on_result",
        "on_start",
        "parent",
        "trigger",
    )

    def __init__(
        self,
        trigger: str = "other",
        kind: int = SpanKind.SERVER,
        *,
        name: str | None = None,
        attributes: dict[str, object] | None = None,
        parent: SpanContext | None = None,
        links: list[Link] | None = None,
        on_result: Callable[[Span, object], None] | None = None,
        on_start: Callable[[Span], None] | None = None,
        on_end: Callable[[Span], None] | None = None,
    ) -> None:
        self.trigger = trigger
        self.kind = kind
        self.name = name
        self.attributes = attributes if attributes is not None else {}
        self.parent = parent
        self.links = links if links is not None else []
        self.dropped_links = 0
        self.on_result = on_result
        self.on_start = on_start
        self.on_end = on_end
        self.candidates: dict[str, Incoming] = {}
        self.carried: Incoming | None = None
        self._tokens: tuple[object, object] | None = None
        self._baggage: Mapping[str, tuple[str, str]] | None = None

    def offer(self, source: str, incoming: Incoming | None) -> None:
        """Record what `source` carried; the first offer per source stays."""
        if incoming is None or (incoming.context is None and not incoming.baggage):
            return
        self.candidates.setdefault(source, incoming)

    def resolve(self, precedence: tuple[str, ...]) -> None:
        """Pick the parent from the candidates, first source in `precedence` wins.

        Baggage comes from the first listed source that has any, even when the
        context comes from another (X-Ray carries no baggage). Without any
        candidate an explicitly set `parent` is kept.
        """
        chosen: Incoming | None = None
        source = ""
        baggage = None
        for name in precedence:
            incoming = self.candidates.get(name)
            if incoming is None:
                continue
            if chosen is None and incoming.context is not None:
                chosen = incoming
                source = name
            if baggage is None and incoming.baggage:
                baggage = incoming.baggage
        if chosen is not None:
            self.parent = chosen.context
            self.attributes["nexs.context.source"] = source
        if chosen is None and baggage is None:
            return
        from ..propagation.incoming import Incoming

        carried = Incoming(self.parent)
        carried.baggage = baggage
        carried.extras = chosen.extras if chosen is not None else None
        self.carried = carried

    def enter(self, root: Span) -> None:
        """The root span is current: adopt the carried baggage, run `on_start`. Never raises."""
        try:
            # What the handler sets must not outlive it: `exit` puts this back (also when the
            # trigger carried a context but no baggage, which `activate` leaves alone).
            baggage = sys.modules.get(_BAGGAGE)
            self._baggage = baggage.entries() if baggage is not None else None
            if self.carried is not None:
                from ..propagation.incoming import activate

                self._tokens = activate(self.carried)
            if self.dropped_links:
                root.dropped_links += self.dropped_links
            if self.on_start is not None:
                self.on_start(root)
        except Exception as exc:
            guard.report("trigger_enter", exc)

    def exit(self, root: Span) -> None:
        """The root span is about to end: run `on_end`, restore the baggage. Never raises.

        The baggage goes back to what it was before `enter`, whether the trigger
        carried some or the handler set its own: the next invocation starts clean.
        """
        try:
            if self.on_end is not None:
                self.on_end(root)
        except Exception as exc:
            guard.report("trigger_exit", exc)
        tokens = self._tokens
        try:
            if tokens is not None:
                self._tokens = None
                from ..propagation.incoming import deactivate

                deactivate(tokens)
            baggage = sys.modules.get(_BAGGAGE)
            if baggage is not None:  # not loaded: nobody can have set any
                baggage.restore(self._baggage)
        except Exception as exc:
            guard.report("trigger_exit", exc)


def source_of(event: object) -> str | None:
    """The module (relative name) that describes `event`, or None for an unknown event.

    - HTTP: a ``requestContext`` with ``httpMethod`` (REST API), ``http``
      (HTTP API, Function URL) or ``elb`` (ALB);
    - batches: the first record's ``eventSource`` (SNS: ``EventSource`` or an
      ``Sns`` object);
    - EventBridge: ``detail-type``, ``source`` and ``detail``;
    - Step Functions: an ``Execution`` whose ``Id`` is a states ARN.
    """
    if not isinstance(event, dict):
        return None
    ctx = event.get("requestContext")
    if isinstance(ctx, dict) and ("httpMethod" in event or isinstance(ctx.get("http"), dict) or "elb" in ctx):
        return ".http"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        source = first.get("eventSource")
        if source == "aws:sqs":
            return ".sqs"
        if first.get("EventSource") == "aws:sns" or isinstance(first.get("Sns"), dict):
            return ".sns"
        if type(source) is str and source in _RECORD_SOURCES:
            return _RECORD_SOURCES[source]
    if "detail-type" in event and "source" in event and "detail" in event:
        return ".eventbridge"
    execution = event.get("Execution")
    if isinstance(execution, dict):
        arn = execution.get("Id")
        if isinstance(arn, str) and arn.startswith("arn:") and ":states:" in arn:
            return ".step_functions"
    return None


def describe(event: object) -> Trigger:
    """The first source that recognises `event` describes it; unknown events are ``other``.

    The returned trigger's parent is resolved from what the event carries
    (``NEXS_CONTEXT_PRECEDENCE``); platforms may offer more and resolve again.
    """
    name = source_of(event)
    if name is None:
        trigger = Trigger("other", SpanKind.SERVER)
    else:
        module = _loaded.get(name)
        if module is None:
            module = _loaded[name] = importlib.import_module(name, __name__)
        trigger = module.describe(event)
    if trigger.candidates:
        from ..propagation.options import current

        trigger.resolve(current().precedence)
    return trigger
