"""Detectors for secrets and personal data inside text, tuned against false positives.

Each `Detector` is a compiled pattern plus, optionally, literal *triggers*
(cheap ``in`` tests that must pass before the regex runs: most attribute
values contain none, so most values cost a few substring searches) and a
*validator* that rejects look-alikes the pattern alone cannot tell apart:

- credit cards need the Luhn checksum and a real issuer prefix and length, so
  order ids and timestamps of 13 to 19 digits are left alone;
- IPv4 addresses need four octets of 0-255 without leading zeros, not inside
  a longer dotted string (``1.2.3.4.5``) nor after a letter (``v1.2.3.4``);
- IPv6 candidates must parse with `ipaddress` (so ``12:30:45`` and MAC
  addresses are not addresses);
- phone numbers need a ``+`` country code or the separated North American
  shape ``(202) 555-0143``: bare digit runs are ids far more often than phones.

Credentials (on by default): ``jwt``, ``aws_access_key``, ``bearer`` (HTTP
auth schemes in text), ``url_password`` (also in a URL the attribute length limit
cut), ``private_key`` (PEM and OpenPGP blocks) and ``assignment`` (``password=...``,
``"api_key": "..."`` or a header line ``Authorization: Token ...`` in text, judged
by the same key-name rules as attribute keys). Opt-in: ``email``, ``phone``,
``credit_card``, ``ipv4``, ``ipv6`` (``ip`` means both).

Every pattern reads each character a bounded number of times, whatever the text: a
megabyte of adversarial input (backslash runs, digit runs, repeated keys) costs a
fraction of a second, not minutes (``tests/test_redaction12q.py``).

Compiling the patterns happens in `build`, on the first flush, never at import.
"""

from __future__ import annotations

import re

from .redaction import CREDENTIALS, OPT_IN, may_hold_credentials
from .redaction_keys import KEY_HINTS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "CREDENTIALS",
    "OPT_IN",
    "Detector",
    "build",
    "luhn_valid",
    "may_hold_credentials",
    "plausible_card",
    "trigger_test",
]


class Detector:
    """One kind of sensitive text: where it is, and whether a match is real.

    The regex is compiled on first use, not when the detector is built: a
    compile costs 0.2 to 0.6 ms on a small Lambda, and most detectors never see
    a value that passes their trigger test.

    Attributes:
        name: the detector's name (shown in ``[REDACTED:<name>]``).
        source: the regex; group `group` is the part to replace.
        triggers: literals of which one must occur before the regex runs (empty: always run).
        validate: called with each match; False means a look-alike, left as is.
        group: the regex group that holds the sensitive part (0: the whole match).
    """

    __slots__ = ("_compiled", "group", "name", "source", "triggers", "validate")

    def __init__(
        self,
        name: str,
        source: str,
        *,
        triggers: tuple[str, ...] = (),
        validate: Callable[[re.Match[str]], bool] | None = None,
        group: int | str = 0,
    ) -> None:
        self.name = name
        self.source = source
        self.triggers = triggers
        self.validate = validate
        self.group = group
        self._compiled: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled regex (compiled now if this is the first use)."""
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self.source)
        return compiled

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Start and end of each real match in `text` (empty when none)."""
        triggers = self.triggers
        if triggers:
            for trigger in triggers:  # a loop of `in` beats any(map(...)) for one to three literals
                if trigger in text:
                    break
            else:
                return []
        found: list[tuple[int, int]] = []
        validate = self.validate
        for match in self.pattern.finditer(text):
            if validate is not None and not validate(match):
                continue
            start, end = match.span(self.group)
            if start < end and not (text.startswith(_ALREADY_MASKED, start) and _masked(text, start, end)):
                found.append((start, end))
        return found


# -- credit cards -----------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a string of digits, as card numbers carry."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def plausible_card(digits: str) -> bool:
    """Whether the issuer prefix (IIN) and the length fit a real card network."""
    n = len(digits)
    if n < 12 or n > 19:
        return False
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    if two in (34, 37):  # American Express
        return n == 15
    if four == 6011 or two == 65 or 644 <= three <= 649:  # Discover
        return 16 <= n <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= n <= 19
    if 300 <= three <= 305 or two in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if two == 62:  # UnionPay
        return 16 <= n <= 19
    return two == 50 or 56 <= two <= 69  # Maestro


def _card(match: re.Match[str]) -> bool:
    text = match.group(0)
    digits = text.replace(" ", "").replace("-", "")
    if not (plausible_card(digits) and luhn_valid(digits)):
        return False
    groups = re.split("[ -]", text)
    if len(groups) == 1:
        return True
    # Separated numbers are printed in fixed groups (4-4-4-4, Amex 4-6-5); ids with
    # dashes in other places (``4111-11-1111111111``) are not cards.
    lengths = [len(group) for group in groups]
    return lengths[0] == 4 and (all(length == 4 for length in lengths[:-1]) or lengths[1] == 6)


# -- IP addresses -------------------------------------------------------------------


def _ipv6(match: re.Match[str]) -> bool:
    import ipaddress

    candidate = match.group(0)
    if candidate.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


# -- URL passwords -------------------------------------------------------------------

_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def _url_password(match: re.Match[str]) -> bool:
    """Whether a URL scheme (RFC 3986: a letter, then letters, digits, ``+.-``) ends where the match starts.

    False too for the password ``REDACTED``, which is masked already: OpenTelemetry's
    HTTP conventions write ``url.full``'s user information as ``REDACTED:REDACTED@``, and
    the client instrumentation does. Without an "@" (a URL cut at the end of the text),
    digits are a port: ``https://example.com:8443``.
    """
    text = match.string
    end = match.start()
    start = end
    while start > 0 and end - start <= 32 and text[start - 1] in _SCHEME_CHARS:
        start -= 1
    if not 0 < end - start <= 32 or not text[start].isalpha():
        return False
    if start and (text[start - 1].isalnum() or text[start - 1] == "_"):  # inside a word: not a scheme
        return False
    value = match.group(1)
    if value == "REDACTED":
        return False
    return text.startswith("@", match.end(1)) or not value.isdigit()


# -- phone numbers -------------------------------------------------------------------


def _phone(match: re.Match[str]) -> bool:
    digits = sum(char.isdigit() for char in match.group(0))
    return 7 <= digits <= 15


# -- the table ------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

_PATTERNS: dict[str, tuple[str, tuple[str, ...], Callable[[re.Match[str]], bool] | None, int | str]] = {
    # header.payload.signature, each base64url; the header always starts '{"' -> "eyJ". Not
    # inside a base64url run: a match may only start where a token can, so a long run such as
    # "eyJeyJeyJ..." is scanned once, not once per "eyJ" (quadratic: 25 s for 100 KB). The
    # signature is optional, as an attribute length limit may have cut it off before this stage.
    "jwt": (
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*)?",
        ("eyJ",),
        None,
        0,
    ),
    # Long-term (AKIA) and temporary (ASIA) access key ids; other prefixes are not secrets.
    "aws_access_key": (r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])", ("AKIA", "ASIA"), None, 0),
    # RFC 9110 credentials after an auth scheme: keep the scheme, hide the token. A scheme is
    # case-insensitive (``BEARER``) and whitespace follows it (a tab too); the triggers name
    # the capitalised and upper-case spellings, which is how clients write them.
    "bearer": (
        r"\b(?i:bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})",
        ("earer", "EARER", "asic", "ASIC"),
        None,
        1,
    ),
    # The password of a URL's user information (``postgres://app:<password>@db``,
    # ``redis://:<password>@cache``): keep the scheme, user and host. The password runs to the
    # authority's last "@", as URL parsers read it (``app:p@ss@db``: ``p@ss``), and the user
    # may hold one (``smtp://me@mail.example:<password>@smtp``). A URL the attribute length
    # limit cut before the "@" ends the text in its password (``postgres://app:s3cr``): a
    # colon and no "/" after the "://" (a port is digits, see `_url_password`; `_UrlPassword`
    # runs the pattern only on text with an "@" or ending so). The pattern starts at the
    # "://", a literal the regex engine finds fast; the scheme before it is checked by
    # `_url_password` (a pattern starting at the scheme ran at every position: 2 us for a
    # 40-character URL).
    "url_password": (
        r"://[^\s/:]*:((?:[^\s/?#]+(?=@)|[^\s/?#@:,\[\]]+\Z))",
        ("@", "://"),
        _url_password,
        1,
    ),
    # PEM (``-----BEGIN RSA PRIVATE KEY-----``) and OpenPGP armour (``PRIVATE KEY BLOCK``).
    "private_key": (
        r"-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END[A-Z ]*PRIVATE KEY(?: BLOCK)?-----|$)",
        ("PRIVATE KEY",),
        None,
        0,
    ),
    "email": (
        r"(?<![\w.+%-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])",
        ("@",),
        None,
        0,
    ),
    # +<country> then groups; or the separated North American shape. Not bare digit runs. A
    # group's digits are taken whole (``(?=(\d{1,4}))\1``, an atomic group before Python 3.11):
    # trying every split of a digit run cost seconds on a long "+1111..." text.
    "phone": (
        r"(?<![\w+.-])(?:\+\d{1,3}(?:[ .-]?\(?(?=(\d{1,4}))\1\)?){2,5}"
        r"|(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4})(?![\w-]|\.\d)",
        (),
        _phone,
        0,
    ),
    "credit_card": (r"(?<![\w.-])\d(?:[ -]?\d){11,18}(?![\w-]|\.\d)", (), _card, 0),
    "ipv4": (rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)", (".",), None, 0),
    "ipv6": (r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])", (":",), _ipv6, 0),
}


# Values a previous pass already replaced: a captured event is redacted as a structure, then
# again as the ``nexs.event`` attribute, and a hash of a hash would no longer join.
_ALREADY_MASKED = ("[REDACTED", "hmac:")
_HASH_LENGTH = len("hmac:") + 16


def _masked(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is this stage's own output (``[REDACTED...]``, ``hmac:<16 hex>``).

    Exact shapes, so a password that merely begins with ``hmac:`` is still a password.
    """
    if text.startswith("hmac:", start):
        return end - start == _HASH_LENGTH
    # A bare ``key=value`` stops before the closing bracket.
    return text.startswith("[REDACTED", start) and (text[end - 1] == "]" or text.startswith("]", end))


# ``"key": value`` / ``'key' = value`` (quoted key, colon or equals) or ``key=value``
# (bare key, equals only: a bare ``key:`` inside a line is a URL scheme or an ARN part far more
# often; brackets allowed, as form fields write ``user[password]=``). A bare key may follow a
# dash (``--password=``). JSON inside a JSON string (an SNS message in an SQS body) quotes with
# ``\"``: the key's quote may carry backslashes, a run read from its first one only (a match
# tried at each backslash of a long run read the rest of the run each time: 5 s for 20 KB).
_ASSIGNMENT_KEY = (
    r"(?<![\w.])(?:(?P<q>(?:(?<!\\)\\+)?[\"'])(?P<qkey>[A-Za-z_][\w.-]{0,63})(?P=q)[ \t]*[=:]"
    r"|(?P<key>[A-Za-z_][\w.\[\]-]{0,63})[ \t]*=)"
)
# A header line (``Authorization: Token ...``, ``Cookie: ...``, YAML's ``password: ...``): a
# key at the start of a line (after curl's ``> ``), a colon and a space (``token:42`` is a
# cache key, ``secret:name`` an ARN part). Its value is the rest of the line, but for an auth
# scheme, which is kept.
_HEADER_KEY = r"[ \t]*(?:[<>][ \t]+)?([A-Za-z][\w-]{0,63})"
_SCHEME = r"[A-Za-z][\w-]*[ \t]+(?=\S)"
# The value after a secret key: quoted with backslashes (read up to the same quote; 31 of
# them quote five levels deep, and an unbounded run made each character cost the run's
# length), quoted (JSON escapes), single-quoted (backslash escapes, as Python's repr writes
# them), or bare. A quoted value without its closing quote runs to the end of the text: an
# attribute length limit may have cut the text there.
_ASSIGNMENT_VALUE = (
    r"[ \t]*(?:(?P<eq>\\{1,31}\")(?P<edq>[^\"]*?)(?:(?P=eq)|\Z)"
    r"|\"(?P<dq>(?:[^\"\\]|\\[\s\S])*)(?:\"|\\?\Z)"
    r"|'(?P<sq>(?:[^'\\]|\\[\s\S])*)(?:'|\\?\Z)"
    r"|(?!\\+\")(?P<bare>[^\s\"'&,;}\]]+))"
)
_VALUE_GROUPS = ("edq", "dq", "sq", "bare")


class _Assignment(Detector):
    """``name=value``, ``"name": "value"`` and header lines in text, judged by the key-name rules.

    A key is matched first and its value only when the key names a secret: the value of
    any other key is text like the rest, read on from just after the key, so a secret
    inside it (``{"query": "page=2&password=..."}``, ``next=/cb?token=...``) is found,
    and each character is still read a bounded number of times. A header line is found
    from its first ": ", and only its start is matched against a pattern: a pattern tried
    at each position cost 7 us on a traceback (whose last line holds ": ").
    """

    __slots__ = ("_header", "_is_secret", "_scheme", "_value")

    def __init__(self, is_secret: Callable[[str], bool]) -> None:
        super().__init__("assignment", _ASSIGNMENT_KEY, triggers=("=", '":', "':", '" :', "' :", ": "))
        self._is_secret = is_secret
        self._value: re.Pattern[str] | None = None
        self._header: re.Pattern[str] | None = None
        self._scheme: re.Pattern[str] | None = None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The value part of each assignment or header line whose key names a secret."""
        # The triggers, unrolled: a generator over them costs more than the rest of a miss.
        assigns = "=" in text or '":' in text or "':" in text or '" :' in text or "' :" in text
        headers = ": " in text
        if not (assigns or headers):
            return []
        # The regex costs microseconds on a URL; most texts with '=' name no secret at all.
        lowered = text.lower()
        for hint in KEY_HINTS:
            if hint in lowered:
                break
        else:
            return []
        found: list[tuple[int, int]] = []
        lines: list[tuple[int, int]] = []  # secret header lines, read whole: (start, end)
        if headers:
            self._header_lines(text, lines, found)
        if assigns:
            self._assignments(text, lines, found)
        if lines and len(found) > 1:  # a quoted value may run over a header line: one span for both
            found.sort()
            merged = [found[0]]
            for start, end in found[1:]:
                last_start, last_end = merged[-1]
                if start < last_end:
                    merged[-1] = (last_start, max(last_end, end))
                else:
                    merged.append((start, end))
            found = merged
        return found

    def _header_lines(self, text: str, lines: list[tuple[int, int]], found: list[tuple[int, int]]) -> None:
        """Add the values of secret header lines to `found`, and their extent to `lines`."""
        header = self._header
        if header is None:
            header = self._header = re.compile(_HEADER_KEY)
        at = text.find(": ")
        while at >= 0:  # the first ": " of each line that has one
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            if end < 0:
                end = len(text)
            if at - start <= 72 and (match := header.fullmatch(text, start, at)) is not None:
                key = match.group(1)
                if self._is_secret(key):
                    lines.append((start, self._line_value(text, at + 2, key, found)))
            at = text.find(": ", end)

    def _assignments(self, text: str, lines: list[tuple[int, int]], found: list[tuple[int, int]]) -> None:
        """Add the values of ``key=value`` and ``"key": value`` outside the header `lines` to `found`."""
        search = self.pattern.search
        is_secret = self._is_secret
        position = 0
        line = 0
        while (match := search(text, position)) is not None:
            position = match.end()
            at = match.start()
            while line < len(lines) and lines[line][1] <= at:
                line += 1
            if line < len(lines) and lines[line][0] <= at:  # inside a header line, masked whole
                position = max(position, lines[line][1])
                continue
            if not is_secret(match.group("key") or match.group("qkey")):
                continue
            value_pattern = self._value
            if value_pattern is None:
                value_pattern = self._value = re.compile(_ASSIGNMENT_VALUE)
            value = value_pattern.match(text, position)
            if value is None:
                continue
            for group in _VALUE_GROUPS:
                start, end = value.span(group)
                if start < end:
                    if not (text.startswith(_ALREADY_MASKED, start) and _masked(text, start, end)):
                        found.append((start, end))
                    position = end
                    break

    def _line_value(self, text: str, start: int, key: str, found: list[tuple[int, int]]) -> int:
        """Add a header line's value (from `start`, after the colon) to `found`; where the line ends."""
        end = len(text)
        for stop in ("\n", "\r"):
            at = text.find(stop, start, end)
            if at >= 0:
                end = at
        line_end = end
        while start < end and text[start] in " \t":
            start += 1
        while end > start and text[end - 1] in " \t":
            end -= 1
        if key.lower().endswith("authorization"):  # keep the scheme: ``Token [REDACTED...]``
            scheme = self._scheme
            if scheme is None:
                scheme = self._scheme = re.compile(_SCHEME)
            kept = scheme.match(text, start, end)
            if kept is not None:
                start = kept.end()
        if start < end and not (text.startswith(_ALREADY_MASKED, start) and _masked(text, start, end)):
            found.append((start, end))
        return line_end


class _UrlPassword(Detector):
    """The ``url_password`` pattern, run on text with an "@" or ending inside a URL's authority.

    Its triggers ("@", "://") let every URL through; most URLs have a path after the
    authority and no "@", and hold no password.
    """

    __slots__ = ()

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Start and end of each URL password in `text` (empty when none)."""
        if "@" not in text:
            at = text.rfind("://")
            if at < 0 or text.find("/", at + 3) >= 0:
                return []
        return super().spans(text)


def build(name: str, is_secret: Callable[[str], bool]) -> list[Detector]:
    """The detector(s) `name` stands for (``ip`` is both IPv4 and IPv6).

    Args:
        name: a name from `CREDENTIALS` or `OPT_IN`, or ``ip``.
        is_secret: the key-name rule, used by ``assignment`` to judge ``key=value`` text.

    Raises:
        KeyError: for an unknown name.
    """
    if name == "ip":
        return build("ipv4", is_secret) + build("ipv6", is_secret)
    if name == "assignment":
        return [_Assignment(is_secret)]
    pattern, triggers, validate, group = _PATTERNS[name]
    kind = _UrlPassword if name == "url_password" else Detector
    return [kind(name, pattern, triggers=triggers, validate=validate, group=group)]


def trigger_test(detectors: Sequence[Detector]) -> Callable[[str], bool] | None:
    """The cheapest test a value must pass before any of `detectors` runs (None: scan everything).

    For the default credential set `Redactor` uses `may_hold_credentials`, the same test unrolled.
    """
    triggers: list[str] = []
    for detector in detectors:
        if not detector.triggers:
            return None  # some detector must see every value
        triggers.extend(detector.triggers)
    literals = tuple(dict.fromkeys(triggers))
    return lambda text: any(map(text.__contains__, literals))
