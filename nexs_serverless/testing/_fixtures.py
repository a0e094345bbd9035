"""The sample events shipped in ``nexs_serverless/events/``: names, loading, merging overrides.

One JSON file per trigger, in the shapes AWS, Google and Azure document. The
CLI (``events list``, ``invoke --event NAME``) and the event factories read
them through here, so every copy a caller gets is freshly parsed: a test that
mutates its event cannot leak into the next.
"""

from __future__ import annotations

import base64
import functools
import json
from importlib import resources

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from importlib.abc import Traversable
    from typing import Any

__all__ = [
    "KEEP",
    "body_text",
    "clone",
    "finish",
    "http_body",
    "load",
    "merge",
    "merge_headers",
    "names",
    "payload_bytes",
    "source",
]

KEEP: Any = object()  # "argument not given", for factory arguments where None means something

_SUFFIX = ".json"


def _folder() -> Traversable:
    return resources.files("nexs_serverless").joinpath("events")


@functools.cache
def _samples() -> dict[str, str]:
    """Each sample's name and text, read once: the shipped files do not change while tests run.

    (Listing the folder through `importlib.resources` alone took 0.4 ms, on every factory call.)
    """
    folder = _folder()
    if not folder.is_dir():
        return {}
    return {
        entry.name[: -len(_SUFFIX)]: entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(_SUFFIX) and entry.is_file()
    }


def names() -> list[str]:
    """The names of the sample events, sorted (``api-gateway-v1``, ``sqs``, ...)."""
    return list(_samples())


def source(name: str) -> str:
    """The JSON text of sample event `name`, as shipped.

    Raises:
        KeyError: when no sample event has that name (the message lists them).
    """
    samples = _samples()
    if name not in samples:  # a name, not a path: `../x` reads no file outside the samples
        raise KeyError(f"no sample event named {name!r}; known: {', '.join(samples) or '(none)'}")
    return samples[name]


def load(name: str) -> dict[str, Any]:
    """A fresh copy of sample event `name`, parsed.

    Raises:
        KeyError: when no sample event has that name.
    """
    event: dict[str, Any] = json.loads(source(name))
    return event


def clone(event: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON-shaped dict (every nested list and dict is new)."""
    copied: dict[str, Any] = json.loads(json.dumps(event))
    return copied


def merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply `overrides` to `base` in place, recursing into nested dicts, and return it.

    A dict value is merged into the dict already there; any other value
    replaces it; ``None`` is kept as a value (events use ``null``).
    """
    for key, value in overrides.items():
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merge(current, value)
        else:
            base[key] = value
    return base


def merge_headers(headers: dict[str, Any], changes: Mapping[str, str | None] | None) -> dict[str, Any]:
    """Set `changes` on `headers` case-insensitively (a None value removes the header).

    Header names keep the case of the change, as a client would send them.
    """
    if not changes:
        return headers
    for key, value in changes.items():
        for existing in [k for k in headers if k.lower() == key.lower()]:
            del headers[existing]
        if value is not None:
            headers[key] = value
    return headers


def body_text(body: object) -> str | None:
    """A message body as the platform delivers it: text (JSON for dicts and lists).

    Message bodies (SQS, SNS) are text, so bytes are decoded; HTTP bodies go through `http_body`.
    """
    if body is None or isinstance(body, str):
        return body
    if isinstance(body, (bytes, bytearray)):
        return bytes(body).decode("utf-8", "replace")
    return json.dumps(body, separators=(",", ":"))


def payload_bytes(payload: object) -> bytes:
    """A record's payload as bytes (Kinesis data, a Pub/Sub message): bytes as given, else its text."""
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return (body_text(payload) or "").encode()


def http_body(body: object) -> tuple[str | None, bool]:
    """An HTTP request body and its ``isBase64Encoded`` flag, as API Gateway, ALB and Function URLs send them.

    Bytes are binary content: the platforms base64-encode it and set the flag, so a handler that
    decodes ``body`` when the flag is set gets the exact bytes back. Anything else is text.
    """
    if isinstance(body, (bytes, bytearray)):
        return base64.b64encode(body).decode("ascii"), True
    return body_text(body), False


def finish(event: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`event` with `overrides` merged in last (the factories' common ending)."""
    return merge(event, overrides) if overrides else event
