"""Redaction: secrets and personal data are masked before any span leaves the process.

A `Redactor` is a pipeline stage (see `runtime._build_stages`): every flushed
span's attributes, event and link attributes, name and status description pass
through it before export. Two kinds of rules:

- **Key rules**, by attribute key (or, for captured events, by the JSON path
  such as ``headers.Authorization``): your glob patterns first
  (``NEXS_REDACTION_KEYS``), then the built-in credential names
  (Authorization, Cookie, password, secret, token, API/access/private keys,
  signatures...). A key rule acts on the whole value.
- **Detectors**, on the text of string values (`redaction_detectors`):
  credentials are on by default; e-mail, phone, credit card and IP detectors
  are opt-in. A detector acts on the matched part only.

Actions: ``redact`` (``[REDACTED]`` / ``[REDACTED:<detector>]``), ``hash``
(``hmac:<16 hex>``: HMAC-SHA256 keyed by ``NEXS_REDACTION_HASH_KEY`` or a key
drawn per process, so equal values stay joinable without being readable),
``drop`` (remove the attribute) and, for key rules, ``keep`` (exempt a key
from detectors). ``tenant.id`` is exempt unless a key rule names it, because
tenant routing reads it after this stage.

Speed: key verdicts are cached per key, and a value is scanned only when it is
long enough and contains one of the detectors' trigger literals, so most
values cost a dict lookup, a length test and one substring pass
(`scripts/bench_redaction.py`).

Environment (parsed by `from_settings`):

- ``NEXS_REDACTION_ENABLED`` (true): false turns every rule off.
- ``NEXS_REDACTION_DETECTORS`` (none beyond credentials): comma list of
  ``name[:action]`` to add (``email:hash,credit_card``), ``-name`` to remove
  (``-assignment``, ``-credentials``).
- ``NEXS_REDACTION_KEYS`` (none): comma list of ``glob[:action]`` key rules (a glob
  holding a colon, such as ``*custom:tenant``, must end with its ``:action``).
- ``NEXS_REDACTION_HASH_KEY`` (random per process): the HMAC key, 16+ characters.
"""

from __future__ import annotations

import itertools
import re

from . import _guard as guard
from . import _stats as stats
from .model import Event, Link
from .redaction_detectors import CREDENTIALS, OPT_IN, build, may_hold_credentials

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    from .config import Settings
    from .redaction_detectors import Detector
    from .span import Span

__all__ = ["ACTIONS", "Redactor", "from_settings", "is_secret_key", "redact_capture"]

ACTIONS = ("redact", "hash", "drop", "keep")
REDACTED = "[REDACTED]"
_MAX_CACHED_KEYS = 4096
_MAX_CLEAN_VALUES = 2048
_MAX_DEPTH = 32
# Keys whose values this layer fills from platform facts (ids, names, regions,
# ARNs, methods): detectors skip them unless a key rule names them. tenant.id is
# here too because tenant routing reads it after this stage.
_EXEMPT = frozenset(
    {
        "tenant.id",
        "sampling.rule",
        "cloud.provider",
        "cloud.platform",
        "cloud.region",
        "cloud.account.id",
        "cloud.resource_id",
        "faas.name",
        "faas.version",
        "faas.instance",
        "faas.invocation_id",
        "faas.trigger",
        "faas.max_memory",
        "faas.coldstart",
        "nexs.trigger.source",
        "nexs.init.type",
        "http.request.method",
        "url.scheme",
        "http.response.status_code",
    }
)


class _Drop:
    __slots__ = ()


_DROP = _Drop()

# -- the built-in credential key names ---------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SECRET_WORDS = frozenset(
    {
        "authorization",
        "cookie",
        "cookies",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "signature",
        "privatekey",
    }
)
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key")})
# A trailing word that makes the key describe the secret rather than hold it.
_DESCRIBING = frozenset(
    {
        "arn",
        "name",
        "type",
        "count",
        "length",
        "len",
        "size",
        "id",
        "ids",
        "expires",
        "expiry",
        "expiration",
        "ttl",
        "version",
        "enabled",
        "present",
        "hint",
        "policy",
        "url",
    }
)


def is_secret_key(key: str) -> bool:
    """Whether an attribute key or JSON path names a credential.

    The key is split into words (``x-api-key`` -> x, api, key; ``apiKey`` ->
    api, key). It names a credential when a word is one of Authorization,
    Cookie, password, secret, token, signature, credential(s)..., or two
    adjacent words make api/access/private/secret key, unless the last word
    only describes the secret (``token_type``, ``secret.arn``, ``access_key_id``).
    """
    words = [word.lower() for word in _WORD.findall(key)]
    if not words or words[-1] in _DESCRIBING:
        return False
    if words[-1] == "auth" or not _SECRET_WORDS.isdisjoint(words):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def _glob(pattern: str) -> re.Pattern[str]:
    escaped = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(escaped, re.IGNORECASE)


class Redactor:
    """Masks secrets and personal data in spans (a pipeline stage) and in captured values.

    Args:
        credentials: turn on the credential key names and detectors (the default).
        detectors: detector name -> action (redact, hash, drop; ``off`` removes
            a credential detector). Names: ``email``, ``phone``, ``credit_card``,
            ``ip``/``ipv4``/``ipv6``, and the credential ones ``jwt``,
            ``aws_access_key``, ``bearer``, ``private_key``, ``assignment``.
        keys: glob pattern (``*`` and ``?``, case-insensitive, whole key) ->
            action (redact, hash, drop, keep); the first match wins, before the
            built-in names.
        hash_key: the HMAC key for ``hash`` (default: 32 random bytes per process).

    Raises:
        ConfigError: for an unknown detector or action, or a hash key under 16 bytes.
    """

    __slots__ = (
        "_cache",
        "_clean",
        "_credentials",
        "_detectors",
        "_hash_key",
        "_hmac",
        "_key_rules",
        "_min_length",
        "_precheck",
        "_scan_ints",
    )

    def __init__(
        self,
        *,
        credentials: bool = True,
        detectors: Mapping[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
        hash_key: bytes | None = None,
    ) -> None:
        from .config import ConfigError

        chosen: dict[str, str] = dict.fromkeys(CREDENTIALS, "redact") if credentials else {}
        for name, action in (detectors or {}).items():
            names = ("ipv4", "ipv6") if name == "ip" else (name,)
            for one in names:
                if one not in CREDENTIALS and one not in OPT_IN:
                    raise ConfigError(
                        f"unknown detector {name!r}; known: {', '.join(CREDENTIALS + OPT_IN)}, ip"
                    )
                if action == "off":
                    chosen.pop(one, None)
                elif action in ("redact", "hash", "drop"):
                    chosen[one] = action
                else:
                    raise ConfigError(
                        f"detector {name!r}: action {action!r} is not redact, hash, drop or off"
                    )
        self._key_rules: list[tuple[re.Pattern[str], str]] = []
        for pattern, action in (keys or {}).items():
            if action not in ACTIONS:
                raise ConfigError(
                    f"key rule {pattern!r}: action {action!r} is not one of {', '.join(ACTIONS)}"
                )
            if not pattern:
                raise ConfigError("key rule: empty pattern")
            self._key_rules.append((_glob(pattern), action))
        if hash_key is not None and len(hash_key) < 16:
            raise ConfigError("hash_key must be at least 16 bytes")
        self._credentials = credentials
        self._detectors: list[tuple[Detector, str]] = []
        for name, action in chosen.items():
            self._detectors.extend((detector, action) for detector in build(name, is_secret_key))
        self._precheck = _precheck(self._detectors, set(chosen))
        # Values already scanned and found clean (most values repeat across warm invocations).
        self._clean: set[str] = set()
        self._min_length = 6 if any(name in OPT_IN for name in chosen) else 10
        self._scan_ints = "credit_card" in chosen
        self._cache: dict[str, str | None] = {}
        self._hash_key = hash_key
        self._hmac: object = None
        if "hash" in chosen.values() or "hash" in (keys or {}).values():
            self._load_hmac()

    # -- the stage ---------------------------------------------------------------------

    def __call__(self, spans: list[Span]) -> list[Span]:
        """Redact every span of the batch in place; returns the same list."""
        detectors = self._detectors
        for span in spans:
            attributes = span.attributes
            if attributes:
                self.redact_attributes(attributes)
            if span.events:
                span.events = [self._event(event) for event in span.events]
            if span.links:
                span.links = [self._link(link) for link in span.links]
            if detectors:
                name = self._text(span.name)
                span.name = name if type(name) is str else REDACTED
                if span.status_description:
                    description = self._text(span.status_description)
                    span.status_description = description if type(description) is str else REDACTED
        return spans

    def redact_attributes(self, attributes: dict[str, Any]) -> None:
        """Apply the rules to one attribute dict in place (dropped keys are removed)."""
        cache = self._cache
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
                    if len(value) < min_length:
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

    # -- captured events and responses -------------------------------------------------

    def redact_value(self, value: object, path: str = "", budget: int = 1 << 20) -> object:
        """A redacted copy of a JSON-like value, with key rules applied to JSON paths.

        Dict keys are judged as dotted paths (``headers.Authorization``), strings
        by the detectors. Walking stops after about `budget` characters of
        output (the rest would be truncated anyway), so a 6 MB event costs no more
        than a small one.
        """
        left = [budget]
        return self._walk(value, path, 0, left)

    def _walk(self, value: object, path: str, depth: int, left: list[int]) -> object:
        if type(value) is str:
            left[0] -= len(value) + 3
            text = value if len(value) < self._min_length else self._text(value)
            return REDACTED if text is _DROP else text
        if isinstance(value, (bool, int, float)) or value is None:
            left[0] -= 6
            if type(value) is int and self._scan_ints:
                text = self._text(str(value))
                return value if text == str(value) else (REDACTED if text is _DROP else text)
            return value
        if depth >= _MAX_DEPTH:
            return REDACTED
        if isinstance(value, dict):
            out: dict[str, object] = {}
            for key, item in value.items():
                if left[0] <= 0:
                    out["…"] = "[truncated]"
                    break
                name = str(key)
                child = f"{path}.{name}" if path else name
                try:
                    action = self._cache[child]
                except KeyError:
                    action = self._classify(child)
                left[0] -= len(name) + 4
                if action is None:
                    out[name] = self._walk(item, child, depth + 1, left)
                elif action == "keep":
                    out[name] = item
                else:
                    new = self._whole(
                        item if isinstance(item, (str, int, float, bool)) else str(item), action
                    )
                    if new is not _DROP:
                        out[name] = new
            return out
        if isinstance(value, (list, tuple)):
            items: list[object] = []
            for item in value:
                if left[0] <= 0:
                    items.append("[truncated]")
                    break
                items.append(self._walk(item, path, depth + 1, left))
            return items
        return self._walk(_safe_str(value), path, depth, left)

    # -- pieces --------------------------------------------------------------------------

    def _classify(self, key: str) -> str | None:
        action: str | None = None
        for pattern, rule_action in self._key_rules:
            if pattern.fullmatch(key):
                action = rule_action
                break
        else:
            if key in _EXEMPT:
                action = "keep"
            elif self._credentials and is_secret_key(key):
                action = "redact"
        if len(self._cache) < _MAX_CACHED_KEYS:
            self._cache[key] = action
        return action

    def _text(self, text: str) -> str | _Drop:
        precheck = self._precheck
        if precheck is not None and not precheck(text):
            return text
        clean = self._clean
        if text in clean:
            return text
        original = text
        for detector, action in self._detectors:
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
            if len(clean) >= _MAX_CLEAN_VALUES:
                clean.clear()
            clean.add(text)
        return text

    def _sequence(self, values: list[object] | tuple[object, ...]) -> object:
        out: list[object] = []
        changed = False
        for item in values:
            new = self._text(item) if isinstance(item, str) and len(item) >= self._min_length else item
            if new is _DROP:
                return _DROP
            changed = changed or new is not item
            out.append(new)
        return tuple(out) if changed else values

    def _whole(self, value: object, action: str) -> object:
        if action == "drop":
            return _DROP
        stats.incr("redaction_keys_" + action)
        if isinstance(value, (tuple, list)):
            return tuple(self._whole(item, action) for item in value)
        return self._hash(_safe_str(value)) if action == "hash" else REDACTED

    def _event(self, event: Event) -> Event:
        if not event.attributes:
            return event
        attributes = dict(event.attributes)
        before = len(attributes)
        self.redact_attributes(attributes)
        dropped = before - len(attributes)
        return Event(event.name, event.timestamp_ns, attributes, event.dropped_attributes + dropped)

    def _link(self, link: Link) -> Link:
        if not link.attributes:
            return link
        attributes = dict(link.attributes)
        before = len(attributes)
        self.redact_attributes(attributes)
        dropped = before - len(attributes)
        return Link(link.context, attributes, link.dropped_attributes + dropped)

    def _load_hmac(self) -> None:
        # hmac pulls in OpenSSL (~8 ms on a small Lambda): loaded only when a rule hashes.
        import hmac
        import os

        if self._hash_key is None:
            self._hash_key = os.urandom(32)
        self._hmac = hmac.digest

    def _hash(self, text: str) -> str:
        if self._hmac is None:
            self._load_hmac()
        digest: bytes = self._hmac(self._hash_key, text.encode("utf-8", "replace"), "sha256")  # type: ignore[operator]
        stats.incr("redaction_hashed")
        return "hmac:" + digest[:8].hex()


def _precheck(detectors: list[tuple[Detector, str]], names: set[str]) -> Callable[[str], bool] | None:
    """The cheapest test a value must pass before any detector runs (None: scan everything)."""
    if not detectors:
        return _never
    if names == set(CREDENTIALS):
        return may_hold_credentials
    triggers: list[str] = []
    for detector, _ in detectors:
        if not detector.triggers:
            return None  # some detector must see every value
        triggers.extend(detector.triggers)
    literals = tuple(dict.fromkeys(triggers))
    return lambda text: any(map(text.__contains__, literals))


def _never(text: str) -> bool:
    return False


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


# -- configuration ---------------------------------------------------------------------

_cached: list[tuple[Settings, Redactor | None]] = []


def from_settings(settings: Settings) -> Redactor | None:
    """The redactor the environment asks for (None when ``NEXS_REDACTION_ENABLED=false``).

    Built once per `Settings` object; a bad value is logged as one line and
    that part falls back to its default (the credential rules stay on).
    """
    if _cached and _cached[0][0] is settings:
        return _cached[0][1]
    from .config import ConfigError, Problem, Reader, report

    reader = Reader(settings.environ)
    redactor: Redactor | None = None
    if reader.boolean("NEXS_REDACTION_ENABLED", default=True):
        credentials, detectors = _parse_detectors(reader)
        keys = _parse_pairs(reader, "NEXS_REDACTION_KEYS", "a comma list of glob[:action]", ACTIONS)
        hash_key: bytes | None = None
        raw_key = settings.environ.get("NEXS_REDACTION_HASH_KEY", "")
        if raw_key:
            if len(raw_key.encode()) >= 16:
                hash_key = raw_key.encode()
            else:
                reader.problems.append(
                    Problem("NEXS_REDACTION_HASH_KEY", "<hidden>", "16 or more characters", "a random key")
                )
        try:
            redactor = Redactor(credentials=credentials, detectors=detectors, keys=keys, hash_key=hash_key)
        except ConfigError as exc:  # pragma: no cover - the parsers above validate first
            reader.problems.append(Problem("NEXS_REDACTION_DETECTORS", str(exc), "valid rules", "defaults"))
            redactor = Redactor(hash_key=hash_key)
    report(reader.problems)
    _cached[:] = [(settings, redactor)]
    return redactor


def _parse_detectors(reader: object) -> tuple[bool, dict[str, str]]:
    from .config import Problem, Reader

    assert isinstance(reader, Reader)
    raw = reader.environ.get("NEXS_REDACTION_DETECTORS", "").strip()
    credentials = True
    chosen: dict[str, str] = {}
    known = (*CREDENTIALS, *OPT_IN, "ip", "credentials")
    for item in _items(raw):
        name, _, action = item.partition(":")
        name = name.strip().lower()
        removing = name.startswith("-")
        name = name.lstrip("-")
        action = "off" if removing else (action.strip().lower() or "redact")
        if name not in known or action not in ("redact", "hash", "drop", "off"):
            reader.problems.append(
                Problem(
                    "NEXS_REDACTION_DETECTORS",
                    item,
                    f"name[:redact|hash|drop] or -name, names {', '.join(known)}",
                    "skipped",
                )
            )
            continue
        if name == "credentials":
            credentials = action != "off"
            continue
        chosen[name] = action
    return credentials, chosen


def _parse_pairs(reader: object, variable: str, expected: str, actions: tuple[str, ...]) -> dict[str, str]:
    from .config import Problem, Reader

    assert isinstance(reader, Reader)
    pairs: dict[str, str] = {}
    for item in _items(reader.environ.get(variable, "")):
        # The action follows the last colon; a pattern holding a colon must name its action.
        pattern, colon, action = item.rpartition(":")
        action = action.strip().lower()
        if not colon:
            pattern, action = item, "redact"
        if not pattern.strip() or action not in actions:
            reader.problems.append(Problem(variable, item, expected, "skipped"))
            continue
        pairs[pattern.strip()] = action
    return pairs


def _items(raw: str) -> Iterable[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def redact_capture(value: object, settings: Settings) -> object:
    """`value` with the redaction rules applied, before a capture serialises it.

    Never raises: if redaction itself fails, the capture becomes
    ``[REDACTED: redaction failed]`` rather than risk exporting a secret.
    """
    try:
        redactor = from_settings(settings)
        if redactor is None:
            return value
        return redactor.redact_value(value, budget=settings.capture_max_length)
    except Exception as exc:
        guard.report("redaction:capture", exc)
        return "[REDACTED: redaction failed]"
