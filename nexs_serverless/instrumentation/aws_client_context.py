"""Lambda ``Invoke``'s ``ClientContext`` with the trace context in ``custom``; loaded only by those calls.

Why a module of its own: only Lambda ``Invoke`` and ``InvokeWithResponseStream``
take a client context (base64 JSON, 3583 bytes at most), and a function that
never invokes another should not load the code that rewrites one (issue #5):
`aws_operations` imports this module inside that branch.

The caller's own client context is parsed and written again, so it is left as
it was (no context added, counted: ``carrier_skipped_inexact``) when that would
change a value: a number a float cannot hold exactly (``1e400``, long
decimals) or a key given twice.
"""

from __future__ import annotations

import json

from .. import _stats as stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MAX_CLIENT_CONTEXT", "client_context"]

MAX_CLIENT_CONTEXT = 3583


def client_context(encoded: object, headers: dict[str, str]) -> str | None:
    """`encoded` (the caller's ``ClientContext``, or none) with `headers` in ``custom``.

    Returns None, for the call to go as the caller wrote it, when the caller's text is
    not a base64 JSON object, when rewriting it would change a value, or when the result
    would pass `MAX_CLIENT_CONTEXT` bytes (the last two counted).
    """
    import base64

    document: dict[str, Any] = {}
    if isinstance(encoded, str) and encoded:
        try:
            raw = base64.b64decode(encoded)
            parsed = json.loads(raw)
        except ValueError:
            return None  # not ours to rewrite
        if not isinstance(parsed, dict):
            return None
        if not _reencodes_exactly(raw):
            stats.incr("carrier_skipped_inexact")
            return None
        document = parsed
    custom = dict(document["custom"]) if isinstance(document.get("custom"), dict) else {}
    # The caller's own entries win, whatever their case (as for SQS and SNS attributes).
    own = {str(name).lower() for name in custom}
    custom.update({name: value for name, value in headers.items() if name.lower() not in own})
    text = base64.b64encode(json.dumps({**document, "custom": custom}).encode("utf-8")).decode("ascii")
    if len(text) > MAX_CLIENT_CONTEXT:
        stats.incr("propagation_skipped_client_context_limit")
        return None
    return text


class _InexactError(ValueError):
    """Parsing and writing the text again would change a value in it."""


def _exact_float(text: str) -> float:
    import decimal

    value = float(text)
    # json.dumps writes repr(value): the same number only if it holds every digit written.
    if value - value != 0 or decimal.Decimal(repr(value)) != decimal.Decimal(text):
        raise _InexactError(text)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _InexactError("a key given twice")  # the parser would keep only the last
    return document


def _reencodes_exactly(text: bytes) -> bool:
    """Whether ``json.dumps(json.loads(text))`` keeps every value (numbers, keys) of `text`.

    Only a number written with more digits than a float holds (``1e400``
    becomes ``Infinity``, which no strict parser reads) or a key given twice
    fails; a caller's client context is rare, so the slower hooks cost nothing.
    """
    try:
        json.loads(text, parse_float=_exact_float, object_pairs_hook=_unique_keys)
    except ValueError:
        return False
    return True
