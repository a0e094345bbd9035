"""Captured events and responses (``nexs.event``, ``nexs.response``) through the redaction rules.

A capture is redacted *before* it is serialised and truncated, for two
reasons: key rules can then act on the JSON structure (``headers.Authorization``
is a path, not a substring of a string), and a secret cut in half by the
truncation can never escape detection. The walk copies the value (the user's
event is never modified), judges dict keys as dotted JSON paths, scans strings
with the detectors, and stops once the output passes the capture limit, so a
6 MB event costs no more than a small one.
"""

from __future__ import annotations

from . import _guard as guard
from .redaction import REDACTED, from_settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .config import Settings
    from .redaction import Redactor

__all__ = ["redact_capture", "redact_structure"]

_MAX_DEPTH = 32
_TRUNCATED = "[truncated]"


def redact_capture(value: object, settings: Settings) -> object:
    """`value` with the redaction rules applied, before a capture serialises it.

    Never raises: if redaction itself fails, the capture becomes
    ``[REDACTED: redaction failed]`` rather than risk exporting a secret.
    """
    try:
        redactor = from_settings(settings)
        if redactor is None:
            return value
        return redact_structure(redactor, value, budget=settings.capture_max_length)
    except Exception as exc:
        guard.report("redaction:capture", exc)
        return "[REDACTED: redaction failed]"


def redact_structure(redactor: Redactor, value: object, *, budget: int = 1 << 20) -> object:
    """A redacted copy of a JSON-like value, walked until about `budget` characters of output."""
    return _Walk(redactor, budget).value(value, "", 0)


class _Walk:
    __slots__ = ("left", "redactor")

    def __init__(self, redactor: Redactor, budget: int) -> None:
        self.redactor = redactor
        self.left = budget

    def value(self, value: object, path: str, depth: int) -> object:
        if type(value) is str:
            self.left -= len(value) + 3
            text = self.redactor.redact_text(value)
            return REDACTED if text is None else text
        if isinstance(value, (bool, int, float)) or value is None:
            self.left -= 6
            if type(value) is int and self.redactor.scans_integers:
                text = self.redactor.redact_text(str(value))
                return value if text == str(value) else (REDACTED if text is None else text)
            return value
        if depth >= _MAX_DEPTH:
            return REDACTED
        if isinstance(value, dict):
            return self.mapping(value, path, depth)
        if isinstance(value, (list, tuple)):
            items: list[object] = []
            for item in value:
                if self.left <= 0:
                    items.append(_TRUNCATED)
                    break
                items.append(self.value(item, path, depth + 1))
            return items
        try:
            text = str(value)
        except Exception:
            text = f"<unprintable {type(value).__name__}>"
        return self.value(text, path, depth)

    def mapping(self, value: dict[object, object], path: str, depth: int) -> dict[str, object]:
        redactor = self.redactor
        out: dict[str, object] = {}
        for key, item in value.items():
            if self.left <= 0:
                out["…"] = _TRUNCATED
                break
            name = str(key)
            child = f"{path}.{name}" if path else name
            self.left -= len(name) + 4
            action = redactor.key_action(child, name)
            if action is None:
                out[name] = self.value(item, child, depth + 1)
            elif action == "keep":
                out[name] = item
            else:
                new = redactor.redact_whole(item, action)
                if new is not None:
                    out[name] = new
        return out
