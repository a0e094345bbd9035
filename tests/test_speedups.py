"""The compiled attribute check (`_speedups.copy_plain`): built, and the same results as the Python loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexs_serverless import configure, tracer, tracing
from nexs_serverless.exporters import InMemoryExporter


def test_it_is_built_where_the_budget_is_measured() -> None:
    """The install compiled it (optional in pyproject, so a missing compiler would pass silently)."""
    from nexs_serverless import _speedups

    assert sys.implementation.name == "cpython"
    assert _speedups.__file__ is not None
    assert _speedups.__file__.endswith(".abi3.so")
    assert _speedups.copy_plain({}, {"a": 1}) is True


class _Str(str):
    __slots__ = ()


class _Int(int):
    pass


_KEYS = st.one_of(st.text(max_size=4), st.integers(0, 3), st.builds(_Str, st.text(min_size=1, max_size=3)))
_VALUES = st.one_of(
    st.text(max_size=5),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.booleans()),
    st.builds(_Int, st.integers(0, 9)),
    st.builds(_Str, st.text(max_size=3)),
    st.builds(object),
    st.binary(max_size=3),
)


def _plain(src: dict[Any, Any]) -> bool:
    """What copy_plain promises to accept: exact non-empty str keys, exact str/int/float/bool values."""
    return all(type(k) is str and k and type(v) in (str, int, float, bool) for k, v in src.items())


@given(
    st.dictionaries(_KEYS, _VALUES, max_size=6),
    st.dictionaries(st.text(min_size=1, max_size=2), st.integers()),
)
@settings(max_examples=300, deadline=None)
def test_it_copies_exactly_the_plain_mappings(src: dict[Any, Any], before: dict[str, int]) -> None:
    """True and a copy when every item is plain; False and `dest` untouched otherwise."""
    from nexs_serverless import _speedups

    dest: dict[str, object] = dict(before)
    accepted = _speedups.copy_plain(dest, src)
    assert accepted is _plain(src)
    assert dest == ({**before, **src} if accepted else before)


@pytest.mark.parametrize(
    ("src", "accepted"),
    [
        ({"s": "x", "i": -(2**70), "f": 1.5, "b": True}, True),
        ({}, True),
        ({"a": _Int(1)}, False),  # subclasses of the plain types are converted by the loop
        ({"a": _Str("x")}, False),
        ({_Str("a"): 1}, False),
        ({"": 1}, False),
        ({1: 1}, False),
        ({"a": None}, False),
        ({"a": 1, "b": [1]}, False),  # one bad item is enough
        ({"a": b"x"}, False),
    ],
)
def test_the_edges_of_plain(src: dict[Any, Any], accepted: bool) -> None:
    """Exact types only: what the loop would store as given, never a subclass or a bad key."""
    from nexs_serverless import _speedups

    dest: dict[str, object] = {"kept": 0}
    assert _speedups.copy_plain(dest, src) is accepted
    assert dest == ({"kept": 0, **src} if accepted else {"kept": 0})


def test_a_mapping_that_is_not_a_dict_is_left_to_the_loop() -> None:
    """A dict subclass or another Mapping: False, so the span checks it item by item."""
    from types import MappingProxyType

    from nexs_serverless import _speedups

    class Sub(dict[str, object]):
        pass

    dest: dict[str, object] = {}
    assert _speedups.copy_plain(dest, Sub(a=1)) is False
    assert _speedups.copy_plain(dest, MappingProxyType({"a": 1})) is False
    assert dest == {}
    with pytest.raises(TypeError, match="takes a dict and a mapping"):
        _speedups.copy_plain(Sub(), {"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a dict and a mapping"):
        _speedups.copy_plain({})  # type: ignore[call-arg]


def _bind(check: Any) -> Any:
    """Bind `check` as the span's attribute check; returns what was bound before."""
    saved = tracing._copy_plain
    tracing._copy_plain = check
    return saved


def _compiled() -> Any:
    from nexs_serverless import _speedups

    return _speedups.copy_plain


@pytest.fixture
def python_loop() -> Iterator[None]:
    """Start spans with the pure-Python check, as where `_speedups` is not built."""
    saved = tracing._copy_plain
    tracing._copy_plain = tracing._no_copy
    try:
        yield
    finally:
        tracing._copy_plain = saved


def _recorded(
    attributes: dict[Any, Any], environ: dict[str, str] | None = None
) -> tuple[list[tuple[str, str, object]], int]:
    """The span's attributes in order, each with its type's name (so that 1, 1.0 and True differ)."""
    exporter = InMemoryExporter()
    configure(exporters=[exporter], environ=environ or {})
    with tracer.span("op", attributes=attributes) as span:
        pass
    return [(k, type(v).__name__, v) for k, v in span.attributes.items()], span.dropped_attributes


# Half plain (the only input the compiled copy takes), half anything (the loop's share).
_PLAIN_DICTS = st.dictionaries(
    st.text(min_size=1, max_size=4), st.one_of(st.text(max_size=6), st.integers(), st.floats(), st.booleans())
)
_ANY_DICTS = st.one_of(_PLAIN_DICTS, st.dictionaries(_KEYS, _VALUES, max_size=6))
_LIMITS = st.sampled_from(
    [{}, {"OTEL_ATTRIBUTE_COUNT_LIMIT": "2"}, {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "3"}]
)


@given(_ANY_DICTS, _LIMITS)
@settings(max_examples=300, deadline=None)
def test_spans_record_the_same_attributes_with_or_without_it(
    src: dict[Any, Any], limits: dict[str, str]
) -> None:
    """Compiled or not, a span keeps, converts, truncates and drops the same attributes."""
    saved = _bind(_compiled())
    try:
        compiled = _recorded(src, limits)
        tracing._copy_plain = tracing._no_copy
        pure = _recorded(src, limits)
    finally:
        tracing._copy_plain = saved
    assert compiled == pure


@pytest.mark.usefixtures("python_loop")
def test_the_python_loop_still_checks_every_attribute() -> None:
    """The fallback path converts and drops as the span's rules say (bad values never raise)."""
    attributes, dropped = _recorded({"ok": 1, "": "empty key", "none": None, "ids": [1, 2], 3: "int key"})
    assert attributes == [("ok", "int", 1), ("ids", "tuple", (1, 2))]
    assert dropped == 3


def test_without_the_binary_the_package_falls_back_to_python() -> None:
    """A process where `_speedups` cannot load still traces, with the same attributes."""
    code = """
import json, sys
sys.modules["nexs_serverless._speedups"] = None  # what an interpreter without the binary sees
from nexs_serverless import configure, tracer, tracing
from nexs_serverless.exporters import InMemoryExporter
configure(exporters=[InMemoryExporter()], environ={})
for _ in range(tracing.COMPILED_CHECK_AFTER + 1):  # the span that would load the compiled check
    with tracer.span("op", attributes={"a": 1, "b": "two", "c": None}) as span:
        pass
print(json.dumps({"bound": tracing._copy_plain.__name__, "attributes": span.attributes,
                  "dropped": span.dropped_attributes}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == {"bound": "_no_copy", "attributes": {"a": 1, "b": "two"}, "dropped": 1}


class _EqMeta(type):
    """A metaclass with `__eq__` and no `__hash__`: its classes cannot be hashed."""

    def __eq__(cls, other: object) -> bool:
        return cls is other

    __hash__ = None  # type: ignore[assignment]


class _Odd(metaclass=_EqMeta):
    def __str__(self) -> str:
        return "odd"


@pytest.mark.parametrize("compiled", [True, False])
def test_a_value_whose_class_cannot_be_hashed_is_converted_not_raised(compiled: bool) -> None:
    """The type checks compare classes by identity: no metaclass code runs, nothing reaches the caller."""
    saved = _bind(_compiled() if compiled else tracing._no_copy)
    try:
        attributes, dropped = _recorded({"odd": _Odd(), "n": 1})
    finally:
        tracing._copy_plain = saved
    assert attributes == [("odd", "str", "odd"), ("n", "int", 1)]
    assert dropped == 0


def test_the_compiled_check_loads_after_the_first_spans_not_with_them() -> None:
    """A cold start's few spans use the Python loop: loading the library costs more than it saves them."""
    code = """
import json, sys
from nexs_serverless import configure, tracer, tracing
from nexs_serverless.exporters import InMemoryExporter
configure(exporters=[InMemoryExporter()], environ={})
seen = []
for index in range(tracing.COMPILED_CHECK_AFTER + 1):
    with tracer.span("op", attributes={"a": 1, "b": "two"}) as span:
        pass
    seen.append(["nexs_serverless._speedups" in sys.modules, type(tracing._copy_plain).__name__,
                 dict(span.attributes)])
print(json.dumps([seen[0], seen[-3], seen[-1]]))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    first, before, after = json.loads(out.stdout)
    assert first == [False, "function", {"a": 1, "b": "two"}]
    assert before == [False, "function", {"a": 1, "b": "two"}]
    assert after == [True, "builtin_function_or_method", {"a": 1, "b": "two"}]
