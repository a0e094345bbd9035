"""Redaction: secrets and personal data are masked before any span leaves the process.

A `Redactor` is a pipeline stage (see `runtime._build_stages`): every flushed
span's attributes, event names and attributes, link attributes, name and status
description pass through it before export. Two kinds of rules:

- **Key rules**, by attribute key (or, for captured events, by the JSON path
  such as ``headers.Authorization``): your glob patterns first
  (``NEXS_REDACTION_KEYS``), then the built-in credential names
  (Authorization, Cookie, password, secret, token, API/access/private keys,
  signatures...). A key rule acts on the whole value.
- **Detectors**, on the text of string values (`redaction_detectors`):
  credentials are on by default; e-mail, phone, credit card and IP detectors
  are opt-in. A detector acts on the matched part only.

Actions: ``redact`` (``[REDACTED]`` / ``[REDACTED:<detector>]``), ``hash``
(``hmac:<16 hex>``, a keyed HMAC: equal values stay joinable without being readable),
``drop`` (remove the attribute) and, for key rules, ``keep`` (exempt a key
from detectors). ``tenant.id`` is exempt unless a key rule names it, because
tenant routing reads it after this stage.

Captured events and responses go through the same rules (`redaction_capture`),
before they are serialised and truncated. The environment variables are read
by `redaction_settings`. Rule tables and the HMAC are checked and built by
`_redaction_rules`, which the default redactor never loads.

Speed: key verdicts are cached per key, and a value is scanned only when it is
long enough and contains one of the detectors' trigger literals, so most
values cost a dict lookup, a length test and one substring pass
(`scripts/bench_redaction.py`).
"""

from __future__ import annotations

from . import _guard as guard
from . import _stats as stats
from .model import Event, Link
from .redaction_keys import EXEMPT, is_secret_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from re import Pattern
    from typing import Any

    from .config import Settings
    from .redaction_detectors import Detector
    from .span import Span

__all__ = [
    "ACTIONS",
    "CREDENTIALS",
    "OPT_IN",
    "REDACTED",
    "Redactor",
    "from_settings",
    "is_secret_key",
    "may_hold_credentials",
]

# Detector names (`redaction_detectors` implements them; it loads when a value first needs a scan).
CREDENTIALS = ("jwt", "aws_access_key", "bearer", "url_password", "private_key", "assignment")
OPT_IN = ("email", "phone", "credit_card", "ipv4", "ipv6")

ACTIONS = ("redact", "hash", "drop", "keep")
REDACTED = "[REDACTED]"
_MAX_CACHED_KEYS = 4096
_MAX_CLEAN_VALUES = 2048
_MAX_CLEAN_LENGTH = 1024


class _Drop:
    __slots__ = ()


_DROP = _Drop()


def may_hold_credentials(text: str) -> bool:
    """The trigger test of the default (credential) detectors, unrolled.

    Equivalent to testing each credential detector's triggers; written out
    because each ``in`` costs one bytecode instead of a call (about 0.4 us
    against 1.7 us for ``any(map(...))`` on a small Lambda).
    """
    return (
        "=" in text
        or "eyJ" in text
        or "AKIA" in text
        or "ASIA" in text
        or "earer" in text
        or "EARER" in text
        or "asic" in text
        or "ASIC" in text
        or '":' in text
        or "':" in text
        or '" :' in text  # pretty-printed JSON (Jackson): "password" : "..."
        or "' :" in text
        or "PRIVATE KEY" in text
        or "@" in text  # a password in a URL's user information
        or ("://" in text and text.find("/", text.rfind("://") + 3) < 0)  # ... cut before its "@"
        or ": " in text  # a header line: "Authorization: Token ..."
    )


def _never(text: str) -> bool:
    return False


class Redactor:
    """Masks secrets and personal data in spans (a pipeline stage) and in captured values.

    Args:
        credentials: turn on the credential key names and detectors (the default).
        detectors: detector name -> action (redact, hash, drop; ``off`` removes
            a credential detector). Names: ``email``, ``phone``, ``credit_card``,
            ``ip``/``ipv4``/``ipv6``, and the credential ones ``jwt``,
            ``aws_access_key``, ``bearer``, ``url_password``, ``private_key``, ``assignment``.
        keys: glob pattern (``*`` and ``?``, case-insensitive, whole key) ->
            action (redact, hash, drop, keep); the first match wins, before the
            built-in names.
        hash_key: the HMAC key for ``hash`` (default: 32 random bytes per process).

    Raises:
        ConfigError: for an unknown detector or action, or a hash key under 16 bytes.
    """

    __slots__ = (
        "_cache",
        "_chosen",
        "_clean",
        "_credentials",
        "_detectors",
        "_hash_key",
        "_hasher",
        "_key_rules",
        "_min_length",
        "_path_cache",
        "_precheck",
        "_scan_ints",
        "_secret_names",
    )

    def __init__(
        self,
        *,
        credentials: bool = True,
        detectors: Mapping[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
        hash_key: bytes | None = None,
    ) -> None:
        chosen: dict[str, str] = dict.fromkeys(CREDENTIALS, "redact") if credentials else {}
        self._key_rules: list[tuple[Pattern[str], str]] = []
        if detectors or keys or hash_key is not None:  # the defaults have nothing to check
            from ._redaction_rules import compile_rules

            self._key_rules = compile_rules(chosen, detectors or {}, keys or {}, hash_key)
        self._credentials = credentials
        self._secret_names: dict[str, bool] = {}
        # The detectors load at the first value that passes the trigger test (most values never
        # do): the default set's test is `may_hold_credentials`, which needs no detector module.
        self._chosen = chosen
        self._detectors: list[tuple[Detector, str]] | None = None
        self._precheck: Callable[[str], bool] | None
        if not chosen:
            self._precheck = _never
        elif set(chosen) == set(CREDENTIALS):
            self._precheck = may_hold_credentials
        else:
            from .redaction_detectors import trigger_test

            self._precheck = trigger_test([detector for detector, _ in self._built()])
        # Values already scanned and found clean (most values repeat across warm invocations).
        self._clean: set[str] = set()
        # Shorter values cannot hold a match: "::1" is the shortest (IPv6), then "pwd=x" (an
        # assignment: "pwd" is the shortest secret key name) and "a@b.cd".
        self._min_length = 3 if "ipv6" in chosen else 5
        self._scan_ints = "credit_card" in chosen
        self._cache: dict[str, str | None] = {}
        # Captured paths apart from attribute keys: the same text is judged differently as a
        # path (by its last key) and as a key (as a whole), so one must not answer for the other.
        self._path_cache: dict[str, str | None] = {}
        self._hash_key = hash_key
        self._hasher: Callable[[str], str] | None = None
        if "hash" in chosen.values() or "hash" in (keys or {}).values():
            self._load_hasher()

    # -- the stage ---------------------------------------------------------------------

    def __call__(self, spans: list[Span]) -> list[Span]:
        """Redact every span of the batch in place; returns the spans to export.

        A span this stage fails on is left out (counted, reported once), never
        exported as it was: one odd span must neither leak its own values nor
        stop the redaction of the spans after it.
        """
        kept: list[Span] | None = None
        for index, span in enumerate(spans):
            if self._redacted(span):
                if kept is not None:
                    kept.append(span)
            elif kept is None:
                kept = spans[:index]
        return spans if kept is None else kept

    def _redacted(self, span: Span) -> bool:
        """Redact one span in place; False (reported, counted) when that failed."""
        try:
            attributes = span.attributes
            if attributes:
                self.redact_attributes(attributes)
            if span.events:
                span.events = [self._event(event) for event in span.events]
            if span.links:
                span.links = [self._link(link) for link in span.links]
            if self._chosen:
                name = span.name
                if type(name) is not str:  # an Enum or other object given as the name
                    name = span.name = str(name)
                if name not in self._clean:  # names repeat: usually one set lookup
                    text = self._text(name)
                    span.name = text if type(text) is str else REDACTED
                description = span.status_description
                if description:
                    if type(description) is not str:  # an exception object given as the description
                        description = str(description)
                    text = self._text(description)
                    span.status_description = text if type(text) is str else REDACTED
        except Exception as exc:
            guard.report("redaction", exc)
            stats.incr("spans_dropped_redaction_failed")
            return False
        return True

    def redact_attributes(self, attributes: dict[str, Any]) -> None:
        """Apply the rules to one attribute dict in place (dropped keys are removed)."""
        cache = self._cache
        clean = self._clean
        min_length = self._min_length
        dropped: list[str] | None = None
        new: object
        for key, value in attributes.items():
            try:
                action = cache[key]
            except KeyError:
                action = self._classify(key)
            if action is None:
                t = type(value)
                if t is str:
                    if len(value) < min_length or value in clean:
                        continue
                    new = self._text(value)
                elif t is tuple or t is list:
                    new = self._sequence(value)
                elif t is int and self._scan_ints:
                    new = self._text(str(value))
                    if new == str(value):
                        continue
                else:
                    continue
            elif action == "keep":
                continue
            else:
                new = self._whole(value, action)
            if new is _DROP:
                if dropped is None:
                    dropped = []
                dropped.append(key)
            elif new is not value:
                attributes[key] = new
        if dropped:
            for key in dropped:
                del attributes[key]
            stats.incr("redaction_dropped", len(dropped))

    # -- single values (captured events use these) --------------------------------------

    def key_action(self, key: str, name: str | None = None) -> str | None:
        """The key rule for `key` (redact, hash, drop, keep), or None: detectors decide.

        `name`: for a path into a captured object (``body.passwordPolicy.minimumLength``),
        its last key. Configured rules match the path; the built-in judgement of
        secret names reads only `name`, since a secret parent is redacted whole before
        its children are reached, and a parent that only describes one
        (``passwordPolicy``) must not taint them.
        """
        if name is None or name == key:
            try:
                return self._cache[key]
            except KeyError:
                return self._classify(key)
        try:
            return self._path_cache[key]
        except KeyError:
            return self._classify(key, name)

    def redact_text(self, text: str) -> str | None:
        """`text` with the detectors applied; None when a ``drop`` detector matched."""
        if len(text) < self._min_length:
            return text
        new = self._text(text)
        return new if type(new) is str else None

    def redact_whole(self, value: object, action: str) -> object:
        """`value` replaced as a key rule's `action` says (``[REDACTED]``, ``hmac:...``); None for drop."""
        new = self._whole(value, action)
        return None if new is _DROP else new

    @property
    def scans_integers(self) -> bool:
        """Whether integers are scanned too (the credit card detector is on)."""
        return self._scan_ints

    # -- pieces --------------------------------------------------------------------------

    def _classify(self, key: str, name: str | None = None) -> str | None:
        action: str | None = None
        for pattern, rule_action in self._key_rules:
            if pattern.fullmatch(key):
                action = rule_action
                break
        else:
            if key in EXEMPT:
                action = "keep"
            elif self._credentials and is_secret_key(key if name is None else name):
                action = "redact"
        cache = self._cache if name is None or name == key else self._path_cache
        if len(cache) < _MAX_CACHED_KEYS:
            cache[key] = action
        return action

    def _built(self) -> list[tuple[Detector, str]]:
        """The chosen detectors with their actions, built once (two threads may both build)."""
        from .redaction_detectors import build

        detectors: list[tuple[Detector, str]] = []
        for name, action in self._chosen.items():
            detectors.extend((detector, action) for detector in build(name, self._is_secret_name))
        self._detectors = detectors
        return detectors

    def _remember_clean(self, text: str) -> None:
        """Skip `text`'s scan next time, if short: the set holds at most 2048 values of 1 KiB."""
        if len(text) > _MAX_CLEAN_LENGTH:  # a long value costs its scan each time, not its memory
            return
        clean = self._clean
        if len(clean) >= _MAX_CLEAN_VALUES:
            clean.clear()
        clean.add(text)

    def _is_secret_name(self, key: str) -> bool:
        """`is_secret_key` with a bounded cache: names met in ``key=value`` text repeat."""
        names = self._secret_names
        verdict = names.get(key)
        if verdict is None:
            verdict = is_secret_key(key)
            if len(names) < _MAX_CACHED_KEYS:
                names[key] = verdict
        return verdict

    def _text(self, text: str) -> str | _Drop:
        clean = self._clean
        if text in clean:
            return text
        precheck = self._precheck
        if precheck is not None and not precheck(text):
            self._remember_clean(text)
            return text
        original = text
        detectors = self._detectors
        if detectors is None:
            detectors = self._built()
        for detector, action in detectors:
            found = detector.spans(text)
            if not found:
                continue
            stats.incr("redaction_hits_" + detector.name, len(found))
            if action == "drop":
                return _DROP
            pieces: list[str] = []
            last = 0
            for start, end in found:
                pieces.append(text[last:start])
                pieces.append(
                    self._hash(text[start:end]) if action == "hash" else f"[REDACTED:{detector.name}]"
                )
                last = end
            pieces.append(text[last:])
            text = "".join(pieces)
        if text is original:
            self._remember_clean(text)
        return text

    def _sequence(self, values: list[object] | tuple[object, ...]) -> object:
        out: list[object] = []
        changed = False
        masked_int = False
        new: object
        for item in values:
            if isinstance(item, str):
                new = self._text(item) if len(item) >= self._min_length else item
            elif type(item) is int and self._scan_ints:  # a card number in a list of ints, as alone
                new = self._text(str(item))
                if new == str(item):
                    new = item
                else:
                    masked_int = True
            else:
                new = item
            if new is _DROP:
                return _DROP
            changed = changed or new is not item
            out.append(new)
        if masked_int:  # an attribute array holds one type: all text, as the masked item is
            return tuple(str(item) for item in out)
        return tuple(out) if changed else values

    def _whole(self, value: object, action: str) -> object:
        if action == "drop":
            return _DROP
        stats.incr("redaction_keys_" + action)
        if isinstance(value, (tuple, list)):
            return tuple(self._whole(item, action) for item in value)
        return self._hash(_safe_str(value)) if action == "hash" else REDACTED

    def _event(self, event: Event) -> Event:
        """The event with its attributes and its name redacted (names are user text, as span names are)."""
        name = event.name
        if type(name) is not str:  # an Enum or other object given as the name
            name = str(name)
        if self._chosen and name not in self._clean:  # names repeat: usually one set lookup
            text = self._text(name)
            name = text if type(text) is str else REDACTED
        if not event.attributes:
            return (
                event
                if name is event.name
                else Event(name, event.timestamp_ns, event.attributes, event.dropped_attributes)
            )
        attributes = dict(event.attributes)
        before = len(attributes)
        self.redact_attributes(attributes)
        dropped = before - len(attributes)
        return Event(name, event.timestamp_ns, attributes, event.dropped_attributes + dropped)

    def _link(self, link: Link) -> Link:
        if not link.attributes:
            return link
        attributes = dict(link.attributes)
        before = len(attributes)
        self.redact_attributes(attributes)
        dropped = before - len(attributes)
        return Link(link.context, attributes, link.dropped_attributes + dropped)

    def _load_hasher(self) -> Callable[[str], str]:
        from ._redaction_rules import hasher

        self._hasher = hasher(self._hash_key)
        return self._hasher

    def _hash(self, text: str) -> str:
        return (self._hasher or self._load_hasher())(text)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


# -- configuration ----------------------------------------------------------------------

_cached: list[tuple[Settings, Redactor | None]] = []


def from_settings(settings: Settings) -> Redactor | None:
    """The redactor the environment asks for (None when ``NEXS_REDACTION_ENABLED=false``).

    Built once per `Settings` object (see `redaction_settings`); a bad value
    is logged as one line and that part falls back to its default.
    """
    if _cached and _cached[0][0] is settings:
        return _cached[0][1]
    redactor: Redactor | None
    if any(name in settings.environ for name in _VARIABLES):
        from .redaction_settings import build_redactor

        try:
            redactor = build_redactor(settings)
        except Exception as exc:  # a parser's own bug must not fail every flush: the defaults
            guard.report("redaction:settings", exc)
            redactor = Redactor()
    else:  # the defaults: no parser to load on the first flush
        redactor = Redactor()
    _cached[:] = [(settings, redactor)]
    return redactor


_VARIABLES = (
    "NEXS_REDACTION_ENABLED",
    "NEXS_REDACTION_DETECTORS",
    "NEXS_REDACTION_KEYS",
    "NEXS_REDACTION_HASH_KEY",
)
