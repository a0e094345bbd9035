"""Redaction settings from the environment: ``NEXS_REDACTION_*`` into a `Redactor`.

- ``NEXS_REDACTION_ENABLED`` (true): false turns every rule off.
- ``NEXS_REDACTION_DETECTORS`` (none beyond credentials): comma list of
  ``name[:action]`` to add (``email:hash,credit_card``), ``-name`` to remove
  (``-assignment``; ``-credentials`` removes the credential key names and detectors).
- ``NEXS_REDACTION_KEYS`` (none): comma list of ``glob[:action]`` key rules (a glob
  holding a colon, such as ``*custom:tenant``, must end with its ``:action``).
- ``NEXS_REDACTION_HASH_KEY`` (random per process, also when blank): the HMAC key,
  16+ characters; set it to join hashed values across instances and functions.

Every bad item is reported as one log line naming the variable and skipped;
the rest of the configuration still applies, and the credential rules stay on
unless explicitly removed.
"""

from __future__ import annotations

from .config import ConfigError, Problem, Reader, report
from .redaction import ACTIONS, CREDENTIALS, OPT_IN, Redactor

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .config import Settings

__all__ = ["build_redactor"]


def build_redactor(settings: Settings) -> Redactor | None:
    """The redactor ``NEXS_REDACTION_*`` describe (None when ``NEXS_REDACTION_ENABLED=false``)."""
    reader = Reader(settings.environ)
    redactor: Redactor | None = None
    if reader.boolean("NEXS_REDACTION_ENABLED", default=True):
        credentials, detectors = _detectors(reader)
        keys = _key_rules(reader)
        hash_key: bytes | None = None
        raw_key = settings.environ.get("NEXS_REDACTION_HASH_KEY", "")
        if raw_key.strip():  # blank is unset, as everywhere: a random key, not a short one
            # The variable's own bytes: the environment is decoded with surrogateescape, so a
            # byte that is not UTF-8 comes back as itself instead of failing every flush.
            encoded = raw_key.encode("utf-8", "surrogateescape")
            if len(encoded) >= 16:
                hash_key = encoded
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
    return redactor


def _detectors(reader: Reader) -> tuple[bool, dict[str, str]]:
    """``name[:action]`` adds a detector, ``-name`` removes one (``-credentials``: the group)."""
    credentials = True
    chosen: dict[str, str] = {}
    known = (*CREDENTIALS, *OPT_IN, "ip", "credentials")
    for item in _items(reader.environ.get("NEXS_REDACTION_DETECTORS", "")):
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


def _key_rules(reader: Reader) -> dict[str, str]:
    """``glob[:action]`` items; a glob holding a colon must end with its action."""
    variable = "NEXS_REDACTION_KEYS"
    rules: dict[str, str] = {}
    for item in _items(reader.environ.get(variable, "")):
        pattern, colon, action = item.rpartition(":")
        action = action.strip().lower()
        if not colon:
            pattern, action = item, "redact"
        if not pattern.strip() or action not in ACTIONS:
            reader.problems.append(Problem(variable, item, "a comma list of glob[:action]", "skipped"))
            continue
        rules[pattern.strip()] = action
    return rules


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]
