"""Exporters a test builds, shut down after it: the factory fixtures of the exporter tests share this."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["made_exporters"]


class _Exporter(Protocol):
    def shutdown(self) -> object: ...


_E = TypeVar("_E", bound=_Exporter)


@contextlib.contextmanager
def made_exporters(build: Callable[..., _E]) -> Iterator[Callable[..., _E]]:
    """Yield `build` that remembers what it built, and shut every one down on exit.

    A test that fails half way still leaves no open socket, file or thread
    behind. Defaults go in with ``functools.partial``: the test's own keyword
    arguments override them.
    """
    made: list[_E] = []

    def make(*args: object, **kwargs: object) -> _E:
        exporter = build(*args, **kwargs)
        made.append(exporter)
        return exporter

    try:
        yield make
    finally:
        for exporter in made:
            exporter.shutdown()
