"""What started the invocation: ``faas.trigger``, span kind, name and attributes from the event.

Each event source is one module with two functions, ``match(event) -> bool``
and ``describe(event) -> Trigger``, listed once in `_SOURCES` (first match
wins, most specific first). Modules are imported on the first invocation, not
at package import.
"""

from __future__ import annotations

import importlib

from ..model import SpanKind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from ..model import Link, SpanContext
    from ..span import Span

__all__ = ["Trigger", "describe"]

_SOURCES: tuple[str, ...] = (".http",)
_loaded: list[ModuleType] = []


class Trigger:
    """What `describe` learned from an event.

    Attributes:
        trigger: ``faas.trigger`` value (http, pubsub, datasource, timer, other).
        kind: span kind of the invocation's root span.
        name: span name suggested by the source (``GET /orders/{id}``), or None.
        attributes: semantic-convention attributes for the root span.
        parent: the context carried by the event, when it carries one.
        links: links to the contexts of batched messages.
        on_result: called with the root span and the handler's return value.
    """

    __slots__ = ("attributes", "kind", "links", "name", "on_result", "parent", "trigger")

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
    ) -> None:
        self.trigger = trigger
        self.kind = kind
        self.name = name
        self.attributes = attributes if attributes is not None else {}
        self.parent = parent
        self.links = links if links is not None else []
        self.on_result = on_result


def _sources() -> list[ModuleType]:
    if not _loaded:
        _loaded.extend(importlib.import_module(name, __name__) for name in _SOURCES)
    return _loaded


def describe(event: object) -> Trigger:
    """The first source that recognises `event` describes it; unknown events are ``other``."""
    for source in _sources():
        if source.match(event):
            trigger: Trigger = source.describe(event)
            return trigger
    return Trigger("other", SpanKind.SERVER)
