"""What X-Ray takes as values: indexed annotations, JSON-safe metadata, and attributes recorded the X-Ray way.

- Annotations (indexed, searchable) come from a configured set of attribute
  keys, and always from ``aws.xray.annotation.<key>`` attributes (Powertools'
  ``put_annotation`` through `powertools.NexsProvider`), named ``<key>``. X-Ray's
  rules: keys of ASCII letters, digits and ``_`` (others become ``_``), at most
  500 characters; str, bool or number values, strings cut to 1,000 characters;
  X-Ray indexes 50 per document.
- ``aws.xray.metadata.<namespace>.<key>`` (Powertools' ``put_metadata``) is
  metadata ``<key>`` in ``<namespace>``, JSON text of an object or a list
  decoded again. A namespace X-Ray reserves (``AWS``) or one of ours (``otel``,
  ``nexs``) leaves the attribute in ``default`` as it is.
- Metadata values are JSON-safe: sequences become lists, a non-finite float
  its text (X-Ray's JSON has no NaN).
"""

from __future__ import annotations

import math
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..attributes import AttributeValue

__all__ = [
    "MAX_ANNOTATIONS",
    "MAX_ANNOTATION_KEY",
    "MAX_ANNOTATION_VALUE",
    "annotate",
    "jsonable",
    "jsonable_map",
    "recorded_for_xray",
]

MAX_ANNOTATIONS = 50  # X-Ray indexes at most 50 annotations per document
MAX_ANNOTATION_VALUE = 1000  # characters kept of an annotation string
MAX_ANNOTATION_KEY = 500  # X-Ray's longest annotation key
# Annotation keys X-Ray takes: ASCII letters, digits and underscore only (``\W`` is
# Unicode-aware and would let any letter through).
_KEY_BAD = re.compile(r"[^A-Za-z0-9_]")
_ANNOTATION_PREFIX = "aws.xray.annotation."  # as `powertools.ANNOTATION_PREFIX` writes them
_METADATA_PREFIX = "aws.xray.metadata."  # `powertools.METADATA_PREFIX`


def annotate(
    attrs: Mapping[str, AttributeValue],
    keys: tuple[str, ...],
    annotate_all: bool,
    used: set[str],
    out: dict[str, object],
) -> None:
    """Add the attributes named by `keys` (every one when `annotate_all`) to the annotations `out`.

    Those X-Ray can index (str, bool, finite numbers; 50 per document) are
    marked `used`; the others stay metadata.
    """
    for key in attrs.keys() if annotate_all else keys:
        if key in used:  # already placed (an aws.xray.* attribute)
            continue
        _annotate(out, key, attrs.get(key), key, used)


def _annotate(out: dict[str, object], name: str, value: object, key: str, used: set[str]) -> None:
    """Add annotation `name` (cleaned) = `value` when X-Ray can index it; `key` is then used."""
    if value is None or not isinstance(value, (str, bool, int, float)) or len(out) >= MAX_ANNOTATIONS:
        return
    if isinstance(value, float) and not math.isfinite(value):  # not JSON
        return
    name = _KEY_BAD.sub("_", name)[:MAX_ANNOTATION_KEY]
    if not name or name in out:  # another key cleaned to the same name: this value stays in metadata
        return
    if isinstance(value, str) and len(value) > MAX_ANNOTATION_VALUE:
        value = value[:MAX_ANNOTATION_VALUE]
    out[name] = value
    used.add(key)


def recorded_for_xray(
    attrs: Mapping[str, AttributeValue],
    keys: list[str],
    used: set[str],
    annotations: dict[str, object],
    metadata: dict[str, object],
) -> None:
    """``aws.xray.annotation.<key>`` is annotation <key>; ``aws.xray.metadata.<namespace>.<key>`` metadata.

    The names `powertools` writes (a namespace's own dots escaped as ``%2E``, so
    ``a.b`` stays one namespace, as the X-Ray SDK keeps it). A namespace X-Ray
    reserves (``AWS``, ``AWS.…``) or one of ours (``otel``, ``nexs``) leaves the
    attribute in ``default`` as it is.
    """
    for key in keys:
        if key.startswith(_ANNOTATION_PREFIX):
            _annotate(annotations, key[len(_ANNOTATION_PREFIX) :], attrs[key], key, used)
        elif key.startswith(_METADATA_PREFIX):
            namespace, _, name = key[len(_METADATA_PREFIX) :].partition(".")
            if "%" in namespace:  # `powertools` writes a namespace's own "." and "%" as %2E and %25
                namespace = namespace.replace("%2E", ".").replace("%25", "%")
            if (
                not namespace
                or not name
                or namespace in ("otel", "nexs", "AWS")
                or namespace.startswith("AWS.")
            ):
                continue
            entries = metadata.get(namespace)
            if not isinstance(entries, dict):
                entries = metadata[namespace] = {}
            entries[name] = _recorded_value(attrs[key])
            used.add(key)


def _recorded_value(value: object) -> object:
    """A metadata value as recorded: JSON text of an object or a list is that object again (unless cut)."""
    if type(value) is str and value[:1] in ("{", "[") and not value.endswith("…[truncated]"):
        import json

        try:
            # Non-finite numbers stay text: X-Ray's JSON has no NaN.
            return json.loads(value, parse_constant=str)
        except (ValueError, RecursionError):
            return value
    return jsonable(value)


def jsonable(value: object) -> object:
    """`value` as JSON accepts it: sequences to lists, non-finite floats to strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def jsonable_map(values: Mapping[str, AttributeValue]) -> dict[str, object]:
    """Each value of `values` as JSON accepts it."""
    return {key: jsonable(value) for key, value in values.items()}
