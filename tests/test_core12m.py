"""Core review 12: exceptions on their way out, `tracer.capture` on any callable, generator contexts."""

from __future__ import annotations

import asyncio
import functools
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from nexs_serverless import StatusCode, current_span, flush, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.testing import LambdaContext


class UnprintableError(Exception):
    """An exception whose text cannot be read."""

    def __str__(self) -> str:
        raise RuntimeError("no text")


class BoomError(Exception):
    """The handler's own error."""


def _spans(exporter: InMemoryExporter) -> list[FinishedSpan]:
    flush()
    return exporter.get_finished_spans()


def _named(exporter: InMemoryExporter, name: str) -> FinishedSpan:
    (span,) = [span for span in _spans(exporter) if span.name == name]
    return span


def _current_name() -> str | None:
    span = current_span()
    return span.name if span is not None else None


# -- exceptions leaving a handler or a span ---------------------------------------------------------


def test_a_handler_exception_whose_text_cannot_be_read_still_marks_the_root_error(
    exporter: InMemoryExporter,
) -> None:
    """The root is ERROR even when the exception's ``__str__`` raises; the exception reaches the caller."""
    error = UnprintableError()

    @traced_handler
    def handler(event: object, context: object) -> None:
        raise error

    with pytest.raises(UnprintableError) as raised:
        handler({}, LambdaContext())
    assert raised.value is error
    (root,) = _spans(exporter)
    assert root.status_code == StatusCode.ERROR
    assert root.status_description == "UnprintableError: <unprintable UnprintableError>"


def test_a_handler_exception_is_recorded_as_escaped_on_the_root(exporter: InMemoryExporter) -> None:
    """The root's ``exception`` event says the exception escaped (a boolean, as the conventions type it)."""

    @traced_handler
    def handler(event: object, context: object) -> None:
        raise BoomError("no")

    with pytest.raises(BoomError):
        handler({}, LambdaContext())
    (root,) = _spans(exporter)
    (event,) = root.events
    assert event.attributes["exception.escaped"] is True


def test_an_exception_leaving_a_with_is_recorded_as_escaped(exporter: InMemoryExporter) -> None:
    """``with tracer.span(...)`` records an exception leaving the block with ``exception.escaped``."""
    with pytest.raises(BoomError), tracer.span("work"):
        raise BoomError("no")
    (event,) = _named(exporter, "work").events
    assert event.attributes["exception.type"] == f"{__name__}.BoomError"
    assert event.attributes["exception.escaped"] is True


def test_record_exception_takes_escaped_and_a_time(exporter: InMemoryExporter) -> None:
    """`record_exception` takes OpenTelemetry's ``escaped`` and a time; by default nothing escaped."""
    with tracer.span("work") as span:
        span.record_exception(BoomError("handled"))
        span.record_exception(
            BoomError("rethrown"), {"retry": 2}, timestamp_ns=1_700_000_000_000_000_000, escaped=True
        )
    handled, rethrown = _named(exporter, "work").events
    assert "exception.escaped" not in handled.attributes
    assert rethrown.attributes["exception.escaped"] is True
    assert rethrown.attributes["retry"] == 2
    assert rethrown.timestamp_ns == 1_700_000_000_000_000_000


# -- tracebacks of generator handlers ------------------------------------------------------------------


def _frames(error: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(error.__traceback__)]


def test_a_generator_handlers_traceback_starts_at_the_handler(exporter: InMemoryExporter) -> None:
    """An exception from a generator handler carries no frame of ours, as without the decorator."""

    @traced_handler
    def stream(event: object, context: object) -> Iterator[int]:
        yield 1
        raise BoomError("midway")

    with pytest.raises(BoomError) as raised:
        list(stream({}, LambdaContext()))
    assert _frames(raised.value)[1:] == ["stream"]


def test_an_async_generator_handlers_traceback_starts_at_the_handler(exporter: InMemoryExporter) -> None:
    """An exception from an async generator handler carries no frame of ours, as without the decorator."""

    @traced_handler
    async def stream(event: object, context: object) -> AsyncIterator[int]:
        yield 1
        raise BoomError("midway")

    async def consume() -> None:
        async for _ in stream({}, LambdaContext()):
            pass

    with pytest.raises(BoomError) as raised:
        asyncio.run(consume())
    assert _frames(raised.value)[-2:] == ["consume", "stream"]


# -- tracer.capture on partials, callable objects, static and class methods ---------------------------


async def _priced(value: int, *, rate: int) -> tuple[int, str | None]:
    await asyncio.sleep(0)
    return value * rate, _current_name()


def _counted(limit: int, *, step: int) -> Iterator[tuple[int, str | None]]:
    for value in range(0, limit, step):
        yield value, _current_name()


class AsyncPricer:
    """A callable object whose ``__call__`` is a coroutine function."""

    async def __call__(self, value: int) -> tuple[int, str | None]:
        await asyncio.sleep(0)
        return value * 3, _current_name()


def test_capture_of_a_partial_coroutine_function_spans_the_coroutine(exporter: InMemoryExporter) -> None:
    """A captured `functools.partial` of an ``async def`` has its span current while the coroutine runs."""
    priced = tracer.capture(functools.partial(_priced, rate=2), name="price")
    assert asyncio.run(priced(5)) == (10, "price")
    assert _named(exporter, "price").end_ns > 0


def test_capture_of_an_async_callable_object_spans_the_coroutine(exporter: InMemoryExporter) -> None:
    """A captured object with an ``async def __call__`` has its span current while the coroutine runs."""
    priced = tracer.capture(AsyncPricer(), name="price")
    assert asyncio.run(priced(5)) == (15, "price")


def test_capture_of_a_partial_generator_function_spans_the_iteration(exporter: InMemoryExporter) -> None:
    """A captured `functools.partial` of a generator function has its span current at each item."""
    counted = tracer.capture(functools.partial(_counted, step=2), name="count")
    assert list(counted(5)) == [(0, "count"), (2, "count"), (4, "count")]


class Prices:
    """``@tracer.capture`` above ``@staticmethod`` and ``@classmethod``."""

    rate = 4

    @tracer.capture
    @staticmethod
    def doubled(value: int) -> tuple[int, str | None]:
        return value * 2, _current_name()

    @tracer.capture
    @classmethod
    def rated(cls, value: int) -> tuple[int, str | None]:
        return value * cls.rate, _current_name()

    @tracer.capture
    @staticmethod
    async def later(value: int) -> tuple[int, str | None]:
        await asyncio.sleep(0)
        return value, _current_name()


@pytest.mark.parametrize("owner", [Prices, Prices()], ids=["class", "instance"])
def test_capture_above_staticmethod_and_classmethod_keeps_them_methods(
    exporter: InMemoryExporter, owner: Any
) -> None:
    """Captured static and class methods are called as before, each call in its own span."""
    assert owner.doubled(3) == (6, "Prices.doubled")
    assert owner.rated(3) == (12, "Prices.rated")
    assert asyncio.run(owner.later(3)) == (3, "Prices.later")
    assert sorted(span.name for span in _spans(exporter)) == [
        "Prices.doubled",
        "Prices.later",
        "Prices.rated",
    ]


# -- a captured generator's own spans --------------------------------------------------------------


def _parent_names(exporter: InMemoryExporter) -> dict[str, str | None]:
    spans = _spans(exporter)
    names = {span.span_id: span.name for span in spans}
    return {span.name: names.get(span.parent_span_id) for span in spans}


def test_a_span_a_captured_generator_entered_is_still_current_after_a_yield(
    exporter: InMemoryExporter,
) -> None:
    """Spans a captured generator starts after a ``yield`` are children of the span it entered before it."""

    @tracer.capture(name="rows")
    def rows() -> Iterator[int]:
        with tracer.span("query"):
            yield 1
            with tracer.span("fetch-more"):
                yield 2

    with tracer.span("consumer"):
        seen_by_consumer = [_current_name() for _ in rows()]
    assert seen_by_consumer == ["consumer", "consumer"]
    assert _parent_names(exporter) == {
        "consumer": None,
        "rows": "consumer",
        "query": "rows",
        "fetch-more": "query",
    }


def test_a_span_a_captured_async_generator_entered_is_still_current_after_a_yield(
    exporter: InMemoryExporter,
) -> None:
    """A captured async generator's spans after a ``yield`` are children of the span it entered before."""

    @tracer.capture(name="rows")
    async def rows() -> AsyncIterator[int]:
        with tracer.span("query"):
            yield 1
            await asyncio.sleep(0)
            with tracer.span("fetch-more"):
                yield 2

    async def consume() -> list[str | None]:
        with tracer.span("consumer"):
            return [_current_name() async for _ in rows()]

    seen_by_consumer = asyncio.run(consume())
    assert seen_by_consumer == ["consumer", "consumer"]
    assert _parent_names(exporter) == {
        "consumer": None,
        "rows": "consumer",
        "query": "rows",
        "fetch-more": "query",
    }


def test_a_captured_async_generator_called_with_wrong_arguments_ends_its_span(
    exporter: InMemoryExporter,
) -> None:
    """Wrong arguments raise at the caller unchanged; the span ends with the error, not running forever."""

    @tracer.capture(name="rows")
    async def rows(limit: int) -> AsyncIterator[int]:
        yield limit

    call: Callable[..., AsyncIterator[int]] = rows

    async def consume() -> None:
        async for _ in call(1, 2):
            pass

    with pytest.raises(TypeError):
        asyncio.run(consume())
    assert _named(exporter, "rows").status_code == StatusCode.ERROR


def test_the_general_attribute_count_limit_applies_to_events_and_links() -> None:
    """``OTEL_ATTRIBUTE_COUNT_LIMIT`` limits events' and links' attributes too, as in OpenTelemetry's SDK."""
    from nexs_serverless import config

    settings, problems = config.load({"OTEL_ATTRIBUTE_COUNT_LIMIT": "2"})
    assert problems == []
    limits = settings.limits
    assert (limits.attribute_count, limits.event_attribute_count, limits.link_attribute_count) == (2, 2, 2)
    settings, _ = config.load({"OTEL_ATTRIBUTE_COUNT_LIMIT": "2", "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT": "5"})
    assert (settings.limits.event_attribute_count, settings.limits.link_attribute_count) == (2, 5)
    settings, problems = config.load({"OTEL_ATTRIBUTE_COUNT_LIMIT": "many"})
    assert [str(problem) for problem in problems] == [
        "invalid OTEL_ATTRIBUTE_COUNT_LIMIT='many' (expected an integer >= 0); using 128"
    ]
    assert settings.limits.event_attribute_count == 128
