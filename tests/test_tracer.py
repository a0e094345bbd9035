"""Tracer: parentage, `capture`, threads, asyncio, sampling, buffer bound and the pool."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from nexs_serverless import SpanContext, SpanKind, Tracer, configure, current_span, flush, stats, tracer, wrap
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.runtime import runtime


def _by_name(exporter: InMemoryExporter) -> dict[str, object]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_nested_spans_parent_to_the_current_span(exporter: InMemoryExporter) -> None:
    """A span started inside another is its child, in the same trace."""
    with tracer.span("root") as root:
        assert current_span() is root
        with tracer.span("child") as child, tracer.span("grandchild") as grandchild:
            assert grandchild.parent_span_id == child.span_id
        assert current_span() is root
    assert current_span() is None
    assert root.parent_span_id == 0
    assert child.parent_span_id == root.span_id
    assert {root.trace_id, child.trace_id, grandchild.trace_id} == {root.trace_id}


def test_explicit_parent_and_root_override_the_current_span() -> None:
    """`parent=` takes a remote context; `Tracer.ROOT` starts a new trace."""
    remote = SpanContext(0xABC, 0xDEF, 1, (("vendor", "v"),), is_remote=True)
    with tracer.span("outer") as outer:
        with tracer.span("continued", parent=remote) as continued:
            pass
        with tracer.span("fresh", parent=Tracer.ROOT) as fresh:
            pass
    assert continued.trace_id == 0xABC
    assert continued.parent_span_id == 0xDEF
    assert continued.parent_is_remote
    assert continued.trace_state == (("vendor", "v"),)
    assert fresh.trace_id != outer.trace_id
    assert fresh.parent_span_id == 0


def test_capture_names_the_span_after_the_function(exporter: InMemoryExporter) -> None:
    """`@tracer.capture` wraps each call in a span named after the function, result unchanged."""

    @tracer.capture
    def price(order: dict[str, int]) -> int:
        return order["items"] * 2

    @tracer.capture(name="tax", kind=SpanKind.CLIENT, attributes={"region": "eu"})
    def tax(value: int) -> int:
        return value + 1

    assert price({"items": 3}) == 6
    assert tax(6) == 7
    assert price.__name__ == "price"
    flush()
    spans = _by_name(exporter)
    assert "test_capture_names_the_span_after_the_function.<locals>.price" in spans
    tax_span = spans["tax"]
    assert tax_span.kind == SpanKind.CLIENT  # type: ignore[attr-defined]
    assert tax_span.attributes == {"region": "eu"}  # type: ignore[attr-defined]


def test_capture_records_and_reraises_exceptions(exporter: InMemoryExporter) -> None:
    """An exception in a captured function is recorded on its span and re-raised as is."""
    error = KeyError("missing")

    @tracer.capture
    def fails() -> None:
        raise error

    with pytest.raises(KeyError) as info:
        fails()
    assert info.value is error
    flush()
    (span,) = exporter.get_finished_spans()
    assert span.status_code == 2
    assert span.events[0].name == "exception"


def test_capture_on_async_functions_and_gather_parent_correctly(exporter: InMemoryExporter) -> None:
    """`async def` functions are captured, and concurrent tasks parent to their caller."""

    @tracer.capture
    async def step(n: int) -> int:
        await asyncio.sleep(0)
        with tracer.span(f"inner-{n}"):
            await asyncio.sleep(0)
        return n

    async def main() -> list[int]:
        with tracer.span("main"):
            return list(await asyncio.gather(step(1), step(2)))

    assert asyncio.run(main()) == [1, 2]
    flush()
    spans = exporter.get_finished_spans()
    main_span = next(s for s in spans if s.name == "main")
    steps = [s for s in spans if s.name.endswith("step")]
    assert len(steps) == 2
    assert all(s.parent_span_id == main_span.span_id for s in steps)
    for n in (1, 2):
        inner = next(s for s in spans if s.name == f"inner-{n}")
        assert inner.parent_span_id in {s.span_id for s in steps}


def test_capture_on_generators_covers_the_iteration(exporter: InMemoryExporter) -> None:
    """A captured generator's span starts at the first item and ends when it is exhausted."""

    @tracer.capture
    def numbers() -> Iterator[int]:
        with tracer.span("produce"):
            yield 1
            yield 2

    assert list(numbers()) == [1, 2]
    flush()
    spans = _by_name(exporter)
    outer = next(s for n, s in spans.items() if n.endswith("numbers"))
    assert spans["produce"].parent_span_id == outer.span_id  # type: ignore[attr-defined]


def test_a_captured_generator_called_with_wrong_arguments_ends_its_span(exporter: InMemoryExporter) -> None:
    """The generator function's own TypeError leaves unchanged, and the span it started is ended."""

    @tracer.capture(name="numbers")
    def numbers(count: int) -> Iterator[int]:
        yield from range(count)

    with pytest.raises(TypeError):
        list(numbers())  # type: ignore[call-arg]
    flush()
    (span,) = exporter.get_finished_spans()
    assert span.name == "numbers"
    assert span.status_code == 2  # ERROR


def test_wrap_carries_the_current_span_into_thread_pool_tasks(exporter: InMemoryExporter) -> None:
    """`wrap(fn)` makes spans started in executor threads children of the submitting span."""

    def work(n: int) -> int:
        with tracer.span(f"task-{n}"):
            return n * n

    with tracer.span("submit") as submit, ThreadPoolExecutor(max_workers=3) as pool:
        task = wrap(work)
        results = list(pool.map(task, range(5)))
    assert results == [0, 1, 4, 9, 16]
    flush()
    tasks = [s for s in exporter.get_finished_spans() if s.name.startswith("task-")]
    assert len(tasks) == 5
    assert all(s.parent_span_id == submit.span_id and s.trace_id == submit.trace_id for s in tasks)


def test_unwrapped_threads_start_their_own_traces() -> None:
    """Without `wrap`, a plain thread does not see the caller's span (contextvars semantics)."""
    seen: list[object] = []
    with tracer.span("caller"):
        thread = threading.Thread(target=lambda: seen.append(current_span()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_unsampled_roots_propagate_context_but_record_nothing(exporter: InMemoryExporter) -> None:
    """With always_off, spans still have ids (sampled flag 0) and nothing is exported."""
    configure(sampler="always_off", exporters=[exporter])
    with tracer.span("root") as root, tracer.span("child") as child:
        child.set_attribute("ignored", 1)
    assert not root.is_recording()
    assert root.trace_id
    assert child.trace_id == root.trace_id
    assert child.parent_span_id == root.span_id
    assert root.trace_flags & 1 == 0
    assert flush() == 0
    assert exporter.get_finished_spans() == []


def test_local_context_parent_is_followed_not_sampled(exporter: InMemoryExporter) -> None:
    """A context that was not extracted (is_remote False) is a local parent: kept local, no sampler asked."""
    configure(sampler="always_off", exporters=[exporter])
    with tracer.span("local", parent=SpanContext(5, 6, 1, (), False)) as local:
        pass
    with tracer.span("remote", parent=SpanContext(7, 8, 1, (), True)) as remote:
        pass
    assert (local.parent_is_remote, remote.parent_is_remote) == (False, True)
    assert flush() == 1  # always_off decides for the remote parent only
    assert [span.name for span in exporter.get_finished_spans()] == ["local"]


def test_remote_unsampled_parent_is_honoured(exporter: InMemoryExporter) -> None:
    """Parent-based sampling follows the remote parent's sampled flag."""
    with tracer.span("continued", parent=SpanContext(5, 6, 0, (), True)) as span:
        pass
    assert not span.is_recording()
    assert flush() == 0


def test_traceidratio_decides_from_the_trace_id() -> None:
    """The ratio sampler keeps about the configured share of new traces."""
    configure(sampler="traceidratio", sampler_arg=0.25)
    kept = 0
    for _ in range(4000):
        with tracer.span("s") as span:
            kept += span.trace_flags & 1
    assert 800 < kept < 1200


def test_buffer_bound_drops_and_counts_excess_spans() -> None:
    """Past NEXS_MAX_BUFFERED_SPANS, new spans are not recorded and the drop is counted."""
    configure(max_buffered_spans=3)
    spans = [tracer.span(f"s{i}") for i in range(5)]
    assert [s.is_recording() for s in spans] == [True, True, True, False, False]
    assert stats()["spans_dropped_buffer_full"] == 2


def test_spans_ending_after_a_flush_go_with_the_next_one(exporter: InMemoryExporter) -> None:
    """A span still running at flush time stays buffered and is exported once it ends."""
    running = tracer.span("background")
    with tracer.span("done"):
        pass
    assert flush() == 1
    running.end()
    assert flush() == 1
    assert [s.name for s in exporter.get_finished_spans()] == ["done", "background"]


def test_pool_recycles_records_nobody_holds(exporter: InMemoryExporter) -> None:
    """Exported records return to the pool unless something still references them."""
    configure(pool_size=8, exporters=[exporter])
    pool = runtime.pool
    kept = tracer.span("kept")
    kept.end()
    for _ in range(5):
        with tracer.span("transient"):
            pass
    gc.collect()
    flush()
    assert pool.recycled == 5  # `kept` is still referenced here, so it was not recycled
    assert kept.name == "kept"
    assert kept.end_ns
    before = pool.hits
    with tracer.span("again"):
        pass
    assert pool.hits == before + 1


def test_pool_misses_grow_without_blocking() -> None:
    """An empty pool hands out new records and counts the misses."""
    configure(pool_size=2)
    spans = [tracer.span(f"s{i}") for i in range(5)]
    assert len(spans) == 5
    assert stats()["pool_hits"] == 2
    assert stats()["pool_misses"] == 3


def test_pool_off_still_records() -> None:
    """NEXS_SPAN_POOL_SIZE=0 turns the pool off; spans are allocated per start."""
    configure(environ={"NEXS_SPAN_POOL_SIZE": "0"})
    with tracer.span("s") as span:
        span.set_attribute("k", 1)
    assert span.attributes == {"k": 1}
    assert runtime.pool.free == 0


def test_a_captured_generator_is_current_only_while_it_runs(exporter: InMemoryExporter) -> None:
    """While paused, the caller's span is current; closing it later leaves no span current behind.

    Before, the generator's span stayed current for its caller between items (the caller's
    next spans nested under it), and its close reset the context to an ended span, which
    then parented the next invocation's root.
    """
    seen_inside: list[str] = []

    @tracer.capture
    def rows() -> Iterator[int]:
        seen_inside.append(current_span().name)  # type: ignore[union-attr]
        yield 1
        seen_inside.append(current_span().name)  # type: ignore[union-attr]
        yield 2

    with tracer.span("handler") as handler:
        items = rows()
        assert next(items) == 1
        assert current_span() is handler
        with tracer.span("sibling") as sibling:
            pass
        assert next(items) == 2
    items.close()
    assert current_span() is None
    with tracer.span("next-root") as root:
        pass
    assert [name.rpartition(".")[2] for name in seen_inside] == ["rows", "rows"]
    assert sibling.parent_span_id == handler.span_id
    assert root.parent_span_id == 0


def test_send_and_throw_reach_a_captured_generator() -> None:
    """`send`/`throw` and `asend`/`athrow` pass through the capture, as `yield from` passes them."""

    @tracer.capture
    def doubler() -> Iterator[int]:
        received = yield 0
        try:
            yield received * 2
        except ValueError:
            yield -1

    @tracer.capture
    async def adoubler():  # type: ignore[no-untyped-def]
        received = yield 0
        try:
            yield received * 2
        except ValueError:
            yield -1

    sync = doubler()
    assert (next(sync), sync.send(6), sync.throw(ValueError("retry"))) == (0, 12, -1)

    async def drive() -> tuple[int, int, int]:
        agen = adoubler()
        return (await agen.__anext__(), await agen.asend(6), await agen.athrow(ValueError("retry")))

    assert asyncio.run(drive()) == (0, 12, -1)


def test_exits_that_are_not_errors_leave_the_status_unset(exporter: InMemoryExporter) -> None:
    """Breaking out of a captured generator (GeneratorExit) or a cancelled task is not an error."""

    @tracer.capture
    def produce() -> Iterator[int]:
        yield from range(10)

    for item in produce():
        if item == 2:
            break

    async def poll() -> None:
        with tracer.span("poll"):
            await asyncio.sleep(10)

    async def cancel() -> None:
        task = asyncio.ensure_future(poll())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel())
    flush()
    for name in ("produce", "poll"):
        span = next(s for s in exporter.get_finished_spans() if s.name.rpartition(".")[2] == name)
        assert (span.status_code, span.events) == (0, ()), name


def test_a_span_entered_twice_leaves_nothing_current_after_its_blocks() -> None:
    """The same span in two nested `with` blocks: current inside, nothing left current after.

    Before, the inner enter overwrote the outer one's token, so after both blocks the
    (ended) span stayed current and parented the spans that followed.
    """
    with tracer.span("outer") as outer:
        span = tracer.span("work")
        with span:
            with span:
                assert current_span() is span
        assert current_span() is outer
    assert current_span() is None


def test_an_invalid_parent_context_starts_a_new_trace() -> None:
    """``parent=SpanContext(0, 0)`` parents nothing: a fresh trace id, no parent."""
    with tracer.span("fresh", parent=SpanContext(0, 0, is_remote=True)) as span:
        pass
    assert span.trace_id != 0
    assert span.parent_span_id == 0


def test_a_span_kind_given_by_name_or_enum_is_stored_as_its_value(exporter: InMemoryExporter) -> None:
    """``kind="client"`` (or OpenTelemetry's enum) is the CLIENT kind, and the batch still renders and
    encodes; a kind nobody knows is INTERNAL. Stored as given, the string broke every later use."""
    from opentelemetry.trace import SpanKind as OTelSpanKind

    from nexs_serverless.exporters.console import format_trees
    from nexs_serverless.exporters.otlp_encode import encode_spans

    kinds = ["client", "SpanKind.SERVER", OTelSpanKind.CONSUMER, "bogus", 9, SpanKind.PRODUCER]
    for index, kind in enumerate(kinds):
        with tracer.span(f"s{index}", kind=kind):  # type: ignore[arg-type]
            pass
    flush()
    spans = exporter.get_finished_spans()
    assert [span.kind for span in spans] == [
        SpanKind.CLIENT,
        SpanKind.SERVER,
        SpanKind.CONSUMER,
        SpanKind.INTERNAL,
        SpanKind.INTERNAL,
        SpanKind.PRODUCER,
    ]
    assert "[CLIENT]" in format_trees(spans)
    assert encode_spans(spans)


def test_a_span_dropped_for_a_full_buffer_is_counted_once() -> None:
    """Dropped for a full buffer, a span is counted as that, not also as unsampled."""
    from nexs_serverless.testing import reset

    reset(environ={"NEXS_MAX_BUFFERED_SPANS": "3"})
    for index in range(6):
        with tracer.span(f"s{index}"):
            pass
    counts = stats()
    assert counts["spans_dropped_buffer_full"] == 3
    assert counts.get("spans_unsampled", 0) == 0
