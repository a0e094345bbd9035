"""Generator handlers (streamed responses) and Firestore / Realtime Database document attributes."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.functions_source import function_source
from support.memory import export

from nexs_serverless import StatusCode, current_span, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.testing import LambdaContext, native

W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GCP_ENV = {
    "K_SERVICE": "orders-fn",
    "K_REVISION": "orders-fn-00007-abc",
    "FUNCTION_TARGET": "handle",
    "GOOGLE_CLOUD_PROJECT": "my-project",
}


def by_name(exporter: InMemoryExporter) -> dict[str, FinishedSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def covers(root: FinishedSpan, child: FinishedSpan) -> bool:
    """`child` is `root`'s child and lies within it."""
    return (
        child.trace_id == root.trace_id
        and child.parent_span_id == root.span_id
        and root.start_ns <= child.start_ns <= child.end_ns <= root.end_ns
    )


# -- generator handlers ----------------------------------------------------------------------


def test_functions_framework_streams_a_traced_generator_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served by functions-framework, a generator handler's root covers the streamed chunks; body as is."""
    import functions_framework

    source = function_source(
        tmp_path,
        monkeypatch,
        """
        import functions_framework
        from nexs_serverless import traced_handler, tracer

        @functions_framework.http
        @traced_handler
        def stream(request):
            yield "a,"
            with tracer.span("between-chunks"):
                pass
            yield "b,"
            yield request.args.get("name", "world")
            with tracer.span("after-last-chunk"):
                pass
        """,
    )
    exporter = export(GCP_ENV)
    client = functions_framework.create_app("stream", source).test_client()
    response = client.get("/?name=nexs", headers={"traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-01"})
    assert response.get_data(as_text=True) == "a,b,nexs"
    assert response.status_code == 200
    response.close()
    spans = by_name(exporter)
    assert set(spans) == {"GET", "between-chunks", "after-last-chunk"}
    root = spans["GET"]
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert root.attributes["http.response.status_code"] == 200
    assert root.status_code == StatusCode.UNSET
    assert covers(root, spans["between-chunks"])
    assert covers(root, spans["after-last-chunk"])


def test_a_generator_handler_is_current_only_while_its_code_runs(exporter: InMemoryExporter) -> None:
    """Values and `send` pass through; the root parents the handler's spans, not its consumer's."""
    seen: list[object] = []

    @traced_handler(name="root")
    def handler(event: object, context: object) -> Iterator[int]:
        seen.append(current_span())
        received = yield 1
        with tracer.span("inside"):
            pass
        seen.append(current_span())
        yield received * 2
        return 99

    def consume() -> Iterator[int]:
        return (yield from handler({}, LambdaContext()))

    items = consume()
    assert next(items) == 1
    assert current_span() is None
    with tracer.span("consumer") as consumer:
        pass
    assert items.send(21) == 42
    assert exporter.get_finished_spans() == []  # not flushed while the stream goes on
    with pytest.raises(StopIteration) as stop:
        next(items)
    assert stop.value.value == 99
    spans = by_name(exporter)
    root = spans["root"]
    assert [span.span_id for span in seen] == [root.span_id, root.span_id]  # type: ignore[attr-defined]
    assert covers(root, spans["inside"])
    assert consumer.parent_span_id == 0
    assert consumer.trace_id != root.trace_id
    assert current_span() is None


def test_a_generator_handler_keeps_its_context_between_items_and_to_itself(
    exporter: InMemoryExporter,
) -> None:
    """Baggage the handler sets lasts to its next item and never reaches its consumer, nor outlives it."""
    from nexs_serverless import baggage

    seen: list[str | None] = []

    @traced_handler(name="root")
    def handler(event: object, context: object) -> Iterator[int]:
        baggage.set("tenant", "acme")
        yield 1
        seen.append(baggage.get("tenant"))
        yield 2

    stream = handler({}, LambdaContext())
    assert next(stream) == 1
    assert baggage.get("tenant") is None
    assert next(stream) == 2
    assert list(stream) == []
    assert seen == ["acme"]
    assert baggage.get("tenant") is None


def test_closing_a_generator_handler_early_ends_and_flushes_its_root(exporter: InMemoryExporter) -> None:
    """A stream closed early (a client gone) runs the handler's cleanup under the root, not an error."""

    @traced_handler(name="root")
    def handler(event: object, context: object) -> Iterator[int]:
        try:
            yield from range(10)
        finally:
            with tracer.span("cleanup"):
                pass

    stream = handler({}, LambdaContext())
    assert [next(stream), next(stream)] == [0, 1]
    assert exporter.get_finished_spans() == []
    stream.close()
    spans = by_name(exporter)
    assert set(spans) == {"root", "cleanup"}
    assert spans["root"].status_code == StatusCode.UNSET
    assert covers(spans["root"], spans["cleanup"])
    assert current_span() is None


def test_an_exception_mid_stream_is_recorded_flushed_and_raised_unchanged(
    exporter: InMemoryExporter,
) -> None:
    """The handler's exception after some chunks reaches the consumer as it is, and fails the root."""
    boom = ValueError("stream broke")

    @traced_handler(name="root")
    def handler(event: object, context: object) -> Iterator[str]:
        yield "first"
        with tracer.span("before-failure"):
            pass
        raise boom

    stream = handler({}, LambdaContext())
    assert next(stream) == "first"
    with pytest.raises(ValueError) as raised:
        next(stream)
    assert raised.value is boom
    spans = by_name(exporter)
    root = spans["root"]
    assert root.status_code == StatusCode.ERROR
    assert [event.name for event in root.events] == ["exception"]
    assert covers(root, spans["before-failure"])
    assert current_span() is None


def test_throw_reaches_a_generator_handler(exporter: InMemoryExporter) -> None:
    """`throw` passes through: a caught one lets the stream go on, an uncaught one fails the root."""

    @traced_handler(name="root")
    def handler(event: object, context: object) -> Iterator[int]:
        try:
            yield 1
        except KeyError:
            yield -1
        yield 2

    stream = handler({}, LambdaContext())
    assert next(stream) == 1
    assert stream.throw(KeyError("retry")) == -1
    with pytest.raises(LookupError):
        stream.throw(LookupError("give up"))
    (root,) = exporter.get_finished_spans()
    assert root.status_code == StatusCode.ERROR
    assert "LookupError" in (root.status_description or "")


def test_partials_and_objects_of_generator_functions_are_streamed(exporter: InMemoryExporter) -> None:
    """A `functools.partial` of a generator function, or an object whose ``__call__`` is one, is streamed."""

    def produce(prefix: str, event: object, context: object) -> Iterator[str]:
        yield prefix
        with tracer.span("after-first"):
            pass

    class Handler:
        def __call__(self, event: object, context: object) -> Iterator[str]:
            yield from produce("object", event, context)

    for fn, name in ((functools.partial(produce, "partial"), "partial"), (Handler(), "object")):
        exporter.clear()
        assert list(traced_handler(name="root")(fn)({}, LambdaContext())) == [name]
        spans = by_name(exporter)
        assert covers(spans["root"], spans["after-first"])


def test_a_function_returning_a_generator_is_traced_until_it_returns(exporter: InMemoryExporter) -> None:
    """The documented limit: only a generator function is streamed; a returned generator is not followed."""

    def rows() -> Iterator[int]:
        yield 1

    @traced_handler(name="root")
    def handler(event: object, context: object) -> Iterator[int]:
        return rows()

    stream = handler({}, LambdaContext())
    assert [span.name for span in exporter.get_finished_spans()] == ["root"]  # ended on return
    assert list(stream) == [1]


def test_async_generator_handlers_are_streamed(exporter: InMemoryExporter) -> None:
    """An async generator handler: `asend` passes through, the root parents its spans, flushed at the end."""

    @traced_handler(name="root")
    async def handler(event: object, context: object) -> AsyncIterator[int]:
        received = yield 1
        with tracer.span("between-items"):
            await asyncio.sleep(0)
        yield received + 1

    async def consume() -> list[object]:
        stream: Any = handler({}, LambdaContext())
        first = await stream.__anext__()
        outside = current_span()
        second = await stream.asend(41)
        flushed_before_end = list(exporter.get_finished_spans())
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
        return [first, outside, second, flushed_before_end]

    assert asyncio.run(consume()) == [1, None, 42, []]
    spans = by_name(exporter)
    assert covers(spans["root"], spans["between-items"])
    assert spans["root"].status_code == StatusCode.UNSET


def test_async_generator_handlers_closed_early_or_failing_end_their_root(exporter: InMemoryExporter) -> None:
    """`aclose` runs the handler's cleanup under the root; an exception mid-stream fails the root."""

    @traced_handler(name="closed")
    async def endless(event: object, context: object) -> AsyncIterator[int]:
        try:
            while True:
                yield 0
        finally:
            with tracer.span("cleanup"):
                await asyncio.sleep(0)

    @traced_handler(name="failing")
    async def failing(event: object, context: object) -> AsyncIterator[int]:
        yield 0
        raise RuntimeError("mid-stream")

    async def consume() -> None:
        stream: Any = endless({}, LambdaContext())
        await stream.__anext__()
        await stream.aclose()
        with pytest.raises(RuntimeError, match="mid-stream"):
            async for _ in failing({}, LambdaContext()):
                pass

    asyncio.run(consume())
    spans = by_name(exporter)
    assert set(spans) == {"closed", "cleanup", "failing"}
    assert spans["closed"].status_code == StatusCode.UNSET
    assert covers(spans["closed"], spans["cleanup"])
    assert spans["failing"].status_code == StatusCode.ERROR
    assert spans["failing"].trace_id != spans["closed"].trace_id


# -- Firestore and Realtime Database -------------------------------------------------------


def firestore_event(action: str, **extensions: str) -> dict[str, Any]:
    """A Firestore CloudEvent as Eventarc delivers it (protobuf body, left undecoded)."""
    return {
        "specversion": "1.0",
        "id": "5b1c7a2e-firestore",
        "source": "//firestore.googleapis.com/projects/my-project/databases/(default)",
        "type": f"google.cloud.firestore.document.v1.{action}",
        "subject": "documents/users/alice/orders/42",
        "time": "2026-11-28T10:00:00.000Z",
        "datacontenttype": "application/protobuf",
        **extensions,
        "data": b"\x0a\x02not decoded",
    }


def rtdb_event(action: str, **extensions: str) -> dict[str, Any]:
    """A Realtime Database CloudEvent (``ref``, ``instance`` extension attributes)."""
    return {
        "specversion": "1.0",
        "id": "7c2d9f10-rtdb",
        "source": "//firebasedatabase.googleapis.com/projects/_/locations/us-central1/instances/my-db",
        "type": f"google.firebase.database.ref.v1.{action}",
        "subject": "refs/users/alice",
        "time": "2026-11-28T10:00:01.000Z",
        "datacontenttype": "application/json",
        "instance": "my-db",
        "location": "us-central1",
        **extensions,
        "data": {"data": None, "delta": {"name": "Alice"}},
    }


def documents(root: FinishedSpan) -> dict[str, object]:
    return {key: value for key, value in root.attributes.items() if key.startswith("faas.document.")}


def traced_root(call: Any) -> FinishedSpan:
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(*args: object) -> None:
        return None

    call(handle)
    (root,) = exporter.get_finished_spans()
    return root


@pytest.mark.parametrize(
    ("action", "operation"),
    [("created", "insert"), ("updated", "edit"), ("deleted", "delete"), ("written", None)],
)
def test_firestore_cloud_event_sets_document_attributes(action: str, operation: str | None) -> None:
    """A Firestore CloudEvent names the collection path, document id, operation and time from its subject."""
    root = traced_root(lambda handle: handle(native.cloud_event(firestore_event(action))))
    expected = {
        "faas.document.collection": "users/alice/orders",
        "faas.document.name": "42",
        "faas.document.time": "2026-11-28T10:00:00.000Z",
    }
    if operation is not None:  # written: a create, an update or a delete; only the body says which
        expected["faas.document.operation"] = operation
    assert root.attributes["faas.trigger"] == "datasource"
    assert documents(root) == expected


def test_firestore_document_extension_attribute_and_auth_context_types() -> None:
    """The ``document`` extension attribute names the document; ``.withAuthContext`` keeps the operation."""
    event = firestore_event("created.withAuthContext", document="users/bob", database="(default)")
    root = traced_root(lambda handle: handle(native.cloud_event(event)))
    assert documents(root) == {
        "faas.document.collection": "users",
        "faas.document.name": "bob",
        "faas.document.operation": "insert",
        "faas.document.time": "2026-11-28T10:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("action", "operation"),
    [("created", "insert"), ("updated", "edit"), ("deleted", "delete"), ("written", None)],
)
def test_realtime_database_cloud_event_sets_document_attributes(action: str, operation: str | None) -> None:
    """A Realtime Database CloudEvent names the reference's parent path and key from its ``ref``."""
    event = rtdb_event(action, ref="/users/carol")
    root = traced_root(lambda handle: handle(native.cloud_event(event)))
    expected = {
        "faas.document.collection": "users",
        "faas.document.name": "carol",
        "faas.document.time": "2026-11-28T10:00:01.000Z",
    }
    if operation is not None:
        expected["faas.document.operation"] = operation
    assert root.attributes["faas.trigger"] == "datasource"
    assert documents(root) == expected


def test_realtime_database_subject_is_read_without_a_ref_attribute() -> None:
    """Without a ``ref`` extension attribute the subject (``refs/users/alice``) names the reference."""
    root = traced_root(lambda handle: handle(native.cloud_event(rtdb_event("deleted"))))
    assert documents(root)["faas.document.collection"] == "users"
    assert documents(root)["faas.document.name"] == "alice"


def test_firestore_cloud_event_through_functions_framework(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delivered in binary mode to functions-framework (protobuf body), the document attributes are set."""
    import functions_framework

    source = function_source(
        tmp_path,
        monkeypatch,
        """
        import functions_framework
        from nexs_serverless import traced_handler

        @functions_framework.cloud_event
        @traced_handler
        def on_document(cloud_event):
            return None
        """,
    )
    exporter = export(GCP_ENV)
    event = firestore_event("updated", document="users/alice/orders/42", namespace="(default)")
    headers = {f"ce-{key}": value for key, value in event.items() if key not in ("data", "datacontenttype")}
    headers["Content-Type"] = "application/protobuf"
    client = functions_framework.create_app("on_document", source).test_client()
    assert client.post("/", headers=headers, data=event["data"]).status_code == 200
    (root,) = exporter.get_finished_spans()
    assert documents(root) == {
        "faas.document.collection": "users/alice/orders",
        "faas.document.name": "42",
        "faas.document.operation": "edit",
        "faas.document.time": "2026-11-28T10:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("event_type", "resource", "expected"),
    [
        (
            "providers/cloud.firestore/eventTypes/document.create",
            "projects/my-project/databases/(default)/documents/users/alice",
            {
                "faas.document.collection": "users",
                "faas.document.name": "alice",
                "faas.document.operation": "insert",
            },
        ),
        (
            "providers/google.firebase.database/eventTypes/ref.write",
            "projects/_/instances/my-db/refs/users/alice/name",
            {"faas.document.collection": "users/alice", "faas.document.name": "name"},
        ),
    ],
)
def test_legacy_background_database_events_set_document_attributes(
    event_type: str, resource: str, expected: dict[str, object]
) -> None:
    """A 1st-gen background Firestore or Realtime Database event is described as its CloudEvent is."""
    from google.cloud.functions_v1.context import Context

    context = Context(
        eventId="1234", timestamp="2026-11-28T10:00:00.000Z", eventType=event_type, resource=resource
    )
    root = traced_root(lambda handle: handle(json.loads('{"value": {}}'), context))
    assert root.attributes["faas.trigger"] == "datasource"
    assert documents(root) == {**expected, "faas.document.time": "2026-11-28T10:00:00.000Z"}
