"""Captured events and responses (``nexs.event``, ``nexs.response``) through the redaction rules.

A capture is redacted *before* it is serialised and truncated, for two
reasons: key rules can then act on the JSON structure (``headers.Authorization``
is a path, not a substring of a string), and a secret cut in half by the
truncation can never escape detection. The walk copies the value (the user's
event is never modified), judges dict keys as dotted JSON paths, scans strings
with the detectors, and stops once the output passes the capture limit, so a
6 MB event costs no more than a small one: a long string is cut to the limit (plus a
margin, so a secret that starts before the cut is still whole) before it is scanned.

A body the trigger marks ``isBase64Encoded`` (API Gateway, function URLs, ALB) is
decoded, redacted and encoded again when it is UTF-8 text: a password in a
base64-encoded JSON body is a password to anyone who decodes it.
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
# Characters scanned past the capture limit in one string: the longest credential the
# detectors read whole (a PEM key runs to the end of the text anyway).
_MARGIN = 1024


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
    __slots__ = ("left", "longest", "redactor")

    def __init__(self, redactor: Redactor, budget: int) -> None:
        self.redactor = redactor
        self.left = budget
        # No string shows more than the whole budget of the serialised capture.
        self.longest = max(budget, 0) + _MARGIN

    def value(self, value: object, path: str, depth: int) -> object:
        if type(value) is str:
            self.left -= len(value) + 3
            if len(value) > self.longest:
                value = value[: self.longest]
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
            # A key can hold the secret itself: API Gateway reads "?<token>" as a query key.
            masked = redactor.redact_text(name)
            if masked is None:  # a drop detector matched it: the item goes
                continue
            name = masked
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
        if value.get("isBase64Encoded") is True:
            body = out.get("body")
            if type(body) is str and body:
                out["body"] = self.base64_text(body)
        return out

    def base64_text(self, body: str) -> object:
        """`body` (base64) redacted as the text it encodes; as it was when it encodes no UTF-8 text."""
        import binascii
        import codecs

        try:
            raw = binascii.a2b_base64(body[: len(body) // 4 * 4])  # a cut body: whole quanta only
            text = codecs.getincrementaldecoder("utf-8")().decode(raw)  # a cut character is left out
        except (ValueError, UnicodeDecodeError):
            return body  # an image or other binary body
        redacted = self.redactor.redact_text(text)
        if redacted == text:
            return body
        if redacted is None:
            return REDACTED
        return binascii.b2a_base64(redacted.encode("utf-8", "surrogatepass"), newline=False).decode("ascii")
