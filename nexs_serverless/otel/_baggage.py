"""Baggage in both APIs: OpenTelemetry's (a ``{name: value}`` in its context) and ours.

OpenTelemetry keeps baggage in its context under its own key; we keep it in
`nexs_serverless.baggage`. Without the bridge keeping them in step, baggage a
trigger brought in was missing from ``opentelemetry.propagate.inject`` (and so
from every call an OpenTelemetry instrumentation makes), and baggage set with
``opentelemetry.baggage`` never reached our propagators.

The two forms: OpenTelemetry's W3C propagator keeps a member's properties in
its value (``"v;ttl=30"``), ours keeps them apart (``("v", "ttl=30")``); one is
written as the other. A name that is not an HTTP token (our API refuses it) is
left out of ours, and stays in OpenTelemetry's context: `differs` compares what
ours would hold, so nothing of OpenTelemetry's is lost by being looked at.
"""

from __future__ import annotations

from ..baggage import _EMPTY, is_token
from ..span import _safe_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..baggage import Entries

__all__ = ["adopted", "differs", "texts"]


def _text(entry: tuple[str, str]) -> str:
    value, metadata = entry
    return f"{value};{metadata}" if metadata else value


# The last answers, by identity (`get_current` asks again for every OpenTelemetry call): the
# entries of ours last written for OpenTelemetry, and the last pair found to agree.
_written: tuple[object, dict[str, object]] = (None, {})
_agreed: tuple[object, object] = (None, None)


def texts(ours: Mapping[str, tuple[str, str]]) -> dict[str, object]:
    """Our entries as OpenTelemetry's baggage, properties in the value as its W3C propagator keeps them.

    The same dict for the same entries, so a context made from it agrees by identity next time.
    """
    global _written
    written = _written
    if written[0] is ours:
        return written[1]
    converted: dict[str, object] = {name: _text(entry) for name, entry in ours.items()}
    _written = (ours, converted)
    return converted


def adopted(theirs: object, ours: Entries) -> Entries | None:
    """Our entries for OpenTelemetry's baggage `theirs`; None when `ours` already hold exactly that.

    An entry whose text is unchanged keeps our own (value, metadata) pair, so a
    round trip through OpenTelemetry's context keeps the properties apart.
    """
    items = getattr(theirs, "items", None)  # a dict as OpenTelemetry stores it, or another mapping
    if not theirs or items is None:
        return _EMPTY if ours else None
    wanted: Entries = {}
    for name, value in items():
        if not is_token(name):
            continue
        text = value if type(value) is str else _safe_str(value)
        kept = ours.get(name)
        wanted[name] = kept if kept is not None and _text(kept) == text else (text, "")
    if not wanted:
        return _EMPTY if ours else None
    return None if wanted == ours else wanted


def differs(ours: Entries, theirs: object) -> bool:
    """Whether OpenTelemetry's baggage `theirs` says something else than `ours`."""
    global _agreed
    agreed = _agreed
    if agreed[0] is ours and agreed[1] is theirs:
        return False
    if adopted(theirs, ours) is not None:
        return True
    _agreed = (ours, theirs)
    return False
