"""An Application Insights connection string checked as the Azure SDK's parser would take it.

Split from `azure_monitor`, whose constructor and `from_settings` both ask it;
the rules follow the SDK's ``_connection_string_parser``.
"""

from __future__ import annotations

import re

__all__ = ["connection_string_problem"]

# The SDK's instrumentation key check (_connection_string_parser): a UUID, lowercase only.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def connection_string_problem(connection_string: str | None) -> str | None:
    """What makes `connection_string` one the Azure SDK refuses (its parser's rules), or None.

    The SDK parses it only when the exporter is built, at the first export:
    checked here, a typo fails at configuration time instead of every flush.
    The text itself is never quoted (it holds the instrumentation key).
    """
    if not connection_string:
        return "missing"
    parts: dict[str, str] = {}
    for number, part in enumerate(connection_string.split(";"), 1):
        key, equals, value = part.partition("=")
        if not part.strip():
            return "an empty part (a ';' doubled or at the end)"
        if not equals or "=" in value:
            return f"part {number} is not one key=value"
        if key != key.strip():
            return f"spaces around the key of part {number} (the SDK would not recognise it)"
        parts[key.lower()] = value
    if parts.get("authorization", "ikey").lower() != "ikey":
        return "Authorization must be ikey (Entra ID takes a credential instead)"
    ikey = parts.get("instrumentationkey")
    if not ikey:
        return "no InstrumentationKey"
    if not _UUID.fullmatch(ikey):
        return "the InstrumentationKey is not a lowercase UUID"
    return None
