"""The layer under the real runtime: awslambdaric against the Runtime API emulator, spans to an OTLP receiver.

Each test builds nothing itself: the module builds the core layer once, unpacks
it into a temporary /opt (applying the zip's permissions, as Lambda does) and
starts function processes the way the managed Python runtime does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.otlp_receiver import Fault, OTLPReceiver
from support.polling import wait_for
from support.runtime_api import FunctionProcess, RuntimeAPI

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = Path(__file__).resolve().parent / "support" / "functions"
HELLO = ROOT / "examples" / "hello"
ZERO_CODE = ROOT / "layer" / "zero-code-example"
# The example's API Gateway event, without its W3C traceparent: the X-Ray header is the only context.
_HELLO = json.loads((HELLO / "event.json").read_text())
_HELLO["headers"].pop("traceparent")
HELLO_EVENT = json.dumps(_HELLO)
XRAY_HEADERS = [
    f"Root=1-5759e988-bd862e3fe1be46a99427279{n};Parent=53995c3f42cd8ad{n};Sampled=1" for n in range(4)
]


@pytest.fixture
def api() -> Iterator[RuntimeAPI]:
    """The Runtime API emulator (runtime and extensions endpoints)."""
    with RuntimeAPI() as emulator:
        yield emulator


def start(
    api: RuntimeAPI,
    tmp_path: Path,
    *,
    handler: str,
    task_root: Path,
    opt: Path | None = None,
    zero_code: bool = False,
    receiver: OTLPReceiver | None = None,
    env: dict[str, str] | None = None,
) -> FunctionProcess:
    """A function process; with `opt` the layer is attached, with `zero_code` its exec wrapper too."""
    # xray-lambda: the root span continues Lambda-Runtime-Trace-Id (as template.yaml configures it)
    settings = {"OTEL_PROPAGATORS": "tracecontext,baggage,xray-lambda"}
    if receiver is not None:
        settings.update({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
    settings.update(env or {})
    process = FunctionProcess(
        api,
        handler=handler,
        task_root=task_root,
        opt=opt,
        wrapper=(opt / "nexs-handler") if zero_code and opt is not None else None,
        env=settings,
        log_path=tmp_path / f"function-{len(list(tmp_path.glob('function-*')))}.log",
    )
    process.start()
    return process


def attributes(span: Any) -> dict[str, Any]:
    """An OTLP span's attributes as plain values."""
    out: dict[str, Any] = {}
    for item in span.attributes:
        value = item.value
        out[item.key] = getattr(value, value.WhichOneof("value"))
    return out


def roots(receiver: OTLPReceiver) -> list[Any]:
    """Root spans of the invocations (they carry faas.invocation_id), in arrival order."""
    return [span for span in receiver.spans() if "faas.invocation_id" in attributes(span)]


# -- cold start, warm invocations, flush on return ------------------------------------------


def test_hello_exports_every_invocation_before_its_response(
    api: RuntimeAPI, receiver: OTLPReceiver, opt: Path, tmp_path: Path
) -> None:
    """Cold then warm: each invocation's three spans reach the receiver before its response is posted."""
    with start(api, tmp_path, handler="handler.handler", task_root=HELLO, opt=opt, receiver=receiver):
        invocations = []
        for header in XRAY_HEADERS:
            invocation = api.invoke(HELLO_EVENT.encode(), trace_id=header)
            assert invocation.json()["statusCode"] == 200
            # flush on return: the export finished before the handler returned
            mine = [
                s for s in roots(receiver) if attributes(s)["faas.invocation_id"] == invocation.request_id
            ]
            assert len(mine) == 1
            invocations.append(invocation)
    spans = receiver.spans()
    assert len(spans) == 3 * len(XRAY_HEADERS)
    by_trace: dict[bytes, list[str]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span.name)
    assert len(by_trace) == len(XRAY_HEADERS)  # one trace per invocation, the X-Ray root's
    assert {trace.hex()[-1] for trace in by_trace} == {"0", "1", "2", "3"}
    assert all(sorted(names) == ["GET /hello", "load-order", "price"] for names in by_trace.values())
    cold = [attributes(root)["faas.coldstart"] for root in roots(receiver)]
    assert cold == [True, False, False, False]
    assert [attributes(r)["faas.invocation_id"] for r in roots(receiver)] == [
        i.request_id for i in invocations
    ]


def test_traces_continue_the_xray_root_of_each_invocation(
    api: RuntimeAPI, receiver: OTLPReceiver, opt: Path, tmp_path: Path
) -> None:
    """The root span joins the trace in Lambda-Runtime-Trace-Id, under its Parent segment."""
    with start(api, tmp_path, handler="handler.handler", task_root=HELLO, opt=opt, receiver=receiver):
        for header in XRAY_HEADERS[:2]:
            api.invoke(HELLO_EVENT.encode(), trace_id=header)
    for root, header in zip(roots(receiver), XRAY_HEADERS[:2], strict=True):
        fields = dict(part.split("=", 1) for part in header.split(";"))
        assert root.trace_id.hex() == fields["Root"][2:].replace("-", "")
        assert root.parent_span_id.hex() == fields["Parent"]


def test_zero_code_wrapper_traces_an_undecorated_handler(
    api: RuntimeAPI, receiver: OTLPReceiver, opt: Path, tmp_path: Path
) -> None:
    """AWS_LAMBDA_EXEC_WRAPPER=/opt/nexs-handler: every invocation traced, responses as without the layer."""
    event = b'{"queryStringParameters": {"name": "zero"}}'
    with start(
        api, tmp_path, handler="app.handler", task_root=ZERO_CODE, opt=opt, zero_code=True, receiver=receiver
    ):
        traced = [api.invoke(event, trace_id=header) for header in XRAY_HEADERS]
    with start(api, tmp_path, handler="app.handler", task_root=ZERO_CODE):
        plain = api.invoke(event)
    assert {i.response for i in traced} == {plain.response}
    assert [attributes(r)["faas.invocation_id"] for r in roots(receiver)] == [i.request_id for i in traced]
    assert [attributes(r)["faas.coldstart"] for r in roots(receiver)] == [True, False, False, False]
    assert len({r.trace_id for r in roots(receiver)}) == len(XRAY_HEADERS)


def test_layer_code_comes_from_opt(api: RuntimeAPI, opt: Path, tmp_path: Path) -> None:
    """The function imports nexs_serverless from the unpacked layer, not from the repository."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "where.py").write_text(
        "import nexs_serverless\ndef handler(e, c):\n    return nexs_serverless.__file__\n"
    )
    with start(api, tmp_path, handler="where.handler", task_root=probe, opt=opt):
        assert api.invoke({}).json() == str(opt / "python" / "nexs_serverless" / "__init__.py")


# -- after-response mode ------------------------------------------------------------------------


def test_after_response_registers_during_init_and_exports_after_each_response(
    api: RuntimeAPI, receiver: OTLPReceiver, opt: Path, tmp_path: Path
) -> None:
    """The extension registers before the runtime's first next; spans go out after each response."""
    env = {"NEXS_FLUSH_MODE": "after_response"}
    with start(
        api, tmp_path, handler="handler.handler", task_root=HELLO, opt=opt, receiver=receiver, env=env
    ):
        invocations = []
        for header in XRAY_HEADERS:
            invocation = api.invoke(HELLO_EVENT.encode(), trace_id=header)
            assert api.wait_idle()
            invocations.append(invocation)
            mine = [
                s for s in roots(receiver) if attributes(s)["faas.invocation_id"] == invocation.request_id
            ]
            assert len(mine) == 1
    (registration,) = api.registrations
    assert registration.seq < api.seq_of("runtime next")[0]
    extension_nexts = api.seq_of(f"extension next {registration.identifier}")
    for invocation in invocations:  # the extension let go only after the response was posted
        assert any(seq > invocation.posted_seq for seq in extension_nexts)
    assert len(receiver.spans()) == 3 * len(XRAY_HEADERS)
    assert [attributes(r)["faas.coldstart"] for r in roots(receiver)] == [True, False, False, False]


def test_after_response_the_caller_does_not_wait_for_the_export(
    api: RuntimeAPI, receiver: OTLPReceiver, opt: Path, tmp_path: Path
) -> None:
    """With the back end hanging, the response is posted while the export is still in flight."""
    receiver.mode = Fault.hang()
    env = {
        "NEXS_FLUSH_MODE": "after_response",
        "NEXS_FLUSH_TIMEOUT_MS": "60000",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "60000",
    }
    with start(
        api, tmp_path, handler="handler.handler", task_root=HELLO, opt=opt, receiver=receiver, env=env
    ):
        invocation = api.invoke(HELLO_EVENT.encode(), timeout_ms=120_000)
        assert invocation.json()["statusCode"] == 200
        assert receiver.wait_for_requests(1)  # the export reached the back end, which never answers
        assert not api.wait_idle(0)  # so the extension is still exporting: the response did not wait for it


def test_after_response_falls_back_to_flush_on_return_without_the_extensions_api(
    receiver: OTLPReceiver, opt: Path, tmp_path: Path
) -> None:
    """Without the Extensions API, after_response exports before the response, as the default mode does."""
    env = {"NEXS_FLUSH_MODE": "after_response"}
    with RuntimeAPI(extensions_api=False) as api:
        with start(
            api, tmp_path, handler="handler.handler", task_root=HELLO, opt=opt, receiver=receiver, env=env
        ):
            for _ in range(2):
                invocation = api.invoke(HELLO_EVENT.encode())
                mine = [
                    s for s in roots(receiver) if attributes(s)["faas.invocation_id"] == invocation.request_id
                ]
                assert len(mine) == 1
        assert api.registrations == []


@pytest.mark.parametrize("zero_code", [False, True], ids=["decorated", "zero-code"])
def test_sigterm_exports_what_ended_after_the_last_flush(
    api: RuntimeAPI, receiver: OTLPReceiver, opt: Path, tmp_path: Path, zero_code: bool
) -> None:
    """A span a background thread ends after the invocation's flush is exported when Lambda sends SIGTERM."""
    release, done = tmp_path / "release", tmp_path / "done"
    env = {"NEXS_FLUSH_MODE": "after_response", "FIXTURE_DECORATE": "0" if zero_code else "1"}
    process = start(
        api, tmp_path, handler="edge.leaves_work", task_root=FUNCTIONS, opt=opt, zero_code=zero_code,
        receiver=receiver, env=env,
    )  # fmt: skip
    with process:
        invocation = api.invoke({"release": str(release), "done": str(done)})
        assert invocation.json() == {"left": "work"}
        assert api.wait_idle()
        assert "late-work" not in receiver.span_names()  # still running at the invocation's flush
        release.write_text("go")
        assert wait_for(done.exists)
        assert process.terminate() == -15  # our handler flushed, then the default one ended the process
    assert "late-work" in receiver.span_names()


# -- the runtime sees what it would see without the layer ---------------------------------------

LAYER_FRAME = f"{os.sep}nexs_serverless{os.sep}"


def normalised_error(error: dict[str, Any] | None, request_id: str) -> dict[str, Any] | None:
    """The error payload without the layer's own stack frames, and with the request id checked."""
    if error is None:
        return None
    assert error.get("requestId", "") in ("", request_id)
    stack = [line for line in error.get("stackTrace", []) if LAYER_FRAME not in line]
    return {**error, "requestId": "<id>", "stackTrace": stack}


def normalised_cause(cause: str | None) -> Any:
    """The X-Ray error cause without the layer's frames (its paths are a set: sorted)."""
    if not cause:
        return cause
    data = json.loads(cause)
    for exception in data.get("exceptions", []):
        exception["stack"] = [f for f in exception.get("stack", []) if LAYER_FRAME not in f["path"]]
    data["paths"] = sorted(p for p in data.get("paths", []) if LAYER_FRAME not in p)
    return data


def outcome(api: RuntimeAPI, event: dict[str, Any], timeout_ms: int) -> tuple[Any, ...]:
    """What the runtime posted for one invocation, comparable across processes."""
    inv = api.invoke(event, timeout_ms=timeout_ms)
    return (
        inv.timed_out,
        inv.response,
        inv.content_type,
        normalised_error(inv.error, inv.request_id),
        inv.error_type,
        normalised_cause(inv.xray_error_cause),
    )


EDGE_CASES = {"raises": ({"order": 7}, 30_000), "unserialisable": ({}, 30_000), "hangs": ({}, 700)}
_baselines: dict[str, tuple[Any, ...]] = {}


def baseline(case: str, tmp_path: Path) -> tuple[Any, ...]:
    """The outcome of `case` without the layer (computed once per case)."""
    if case not in _baselines:
        event, timeout_ms = EDGE_CASES[case]
        with RuntimeAPI() as api, start(api, tmp_path, handler=f"edge.{case}", task_root=FUNCTIONS):
            _baselines[case] = outcome(api, event, timeout_ms)
    return _baselines[case]


@pytest.mark.parametrize("zero_code", [False, True], ids=["decorated", "zero-code"])
@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_runtime_sees_the_same_outcome_with_the_layer(
    api: RuntimeAPI, receiver: OTLPReceiver, opt: Path, tmp_path: Path, case: str, zero_code: bool
) -> None:
    """Raising, hanging past the deadline, returning what JSON cannot encode: as without the layer."""
    expected = baseline(case, tmp_path)
    event, timeout_ms = EDGE_CASES[case]
    env = {"FIXTURE_DECORATE": "0" if zero_code else "1", "NEXS_TIMEOUT_GUARD_MS": "300"}
    with start(
        api, tmp_path, handler=f"edge.{case}", task_root=FUNCTIONS, opt=opt, zero_code=zero_code,
        receiver=receiver, env=env,
    ):  # fmt: skip
        actual = outcome(api, event, timeout_ms)
    assert actual == expected
    (root,) = roots(receiver)  # the invocation was traced all the same (the timeout guard flushed a hang)
    if case == "raises":
        assert root.status.code == 2  # STATUS_CODE_ERROR
    if case == "hangs":
        assert expected[0] is True  # nothing was posted: the runtime was still in the handler
        assert attributes(root)["nexs.timed_out"] is True


# -- init errors read the same ------------------------------------------------------------------

BAD_HANDLERS = ["edge.missing", "no_such_module.handler", "edge", "broken_import.handler"]


def init_error(api: RuntimeAPI) -> tuple[Any, ...]:
    """The init error the runtime posted, without the layer's frames."""
    assert api.wait_init_error()
    error = normalised_error(api.init_error, "")
    assert error is not None
    return error["errorType"], error["errorMessage"], error["stackTrace"], api.init_error_type


@pytest.mark.parametrize("spec", BAD_HANDLERS)
def test_bad_handler_fails_init_as_it_would_without_the_layer(opt: Path, tmp_path: Path, spec: str) -> None:
    """A wrong handler name, module or import error reaches init/error with the runtime's type and message."""
    with RuntimeAPI() as api, start(api, tmp_path, handler=spec, task_root=FUNCTIONS):
        expected = init_error(api)
    with (
        RuntimeAPI() as api,
        start(api, tmp_path, handler=spec, task_root=FUNCTIONS, opt=opt, zero_code=True),
    ):
        actual = init_error(api)
    assert actual == expected


def test_missing_handler_setting_fails_init_with_a_precise_message(opt: Path, tmp_path: Path) -> None:
    """No handler configured: init/error says which variable is empty and what to set."""
    with RuntimeAPI() as api, start(api, tmp_path, handler="", task_root=FUNCTIONS, opt=opt, zero_code=True):
        error_type, message, _, header = init_error(api)
    assert error_type == header == "Runtime.MalformedHandlerName"
    assert "NEXS_ORIGINAL_HANDLER is empty" in message


WARM_AND_LARGE = """\
from nexs_serverless import traced_handler, tracer


@traced_handler
def handler(event, context):
    with tracer.span("work-%d" % event["n"]):
        pass
    return {"blob": ["x" * 100] * event["items"]}


handler({"n": 0, "items": 1}, None)  # a warm-up call during init, outside any invocation
"""


def test_after_response_exports_after_the_runtime_posted_and_a_warm_up_call_releases_nothing(
    api: RuntimeAPI, receiver: OTLPReceiver, opt: Path, tmp_path: Path
) -> None:
    """The hand-over waits for the runtime's post, and a traced call the runtime did not dispatch
    flushes on return.

    Before, the wrapper handed over when the handler returned, before the runtime had
    serialised and posted the result: with a ~5 MB response the export reached the back end
    first. And a warm-up call at import left a hand-over queued that released the first real
    invocation's wait at once, so its spans went out only with the next invocation.
    """
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(WARM_AND_LARGE)
    env = {"NEXS_FLUSH_MODE": "after_response"}
    with start(api, tmp_path, handler="app.handler", task_root=task, opt=opt, receiver=receiver, env=env):
        assert receiver.wait_for_requests(1)  # the warm-up call's span, flushed during init
        for n, items in ((1, 50_000), (2, 10)):
            before = len(receiver.requests)
            invocation = api.invoke({"n": n, "items": items})
            assert len(invocation.json()["blob"]) == items
            assert api.wait_idle()
            assert receiver.wait_for_requests(before + 1)
            first_export = receiver.requests[before]
            assert first_export.arrived_at > invocation.posted_at  # after the caller had the response
            names = {span.name for received in receiver.requests[before:] for span in received.spans()}
            assert f"work-{n}" in names


def test_after_response_survives_a_transient_extension_next_failure(
    api: RuntimeAPI, receiver: OTLPReceiver, opt: Path, tmp_path: Path
) -> None:
    """The extension's first ``event/next`` fails once: it asks again, and the invocations still end
    with the response and their export (a loop that stopped on it would leave Lambda waiting for
    the extension until each invocation's timeout)."""
    api.failing_extension_nexts = 1
    env = {"NEXS_FLUSH_MODE": "after_response"}
    with start(
        api, tmp_path, handler="handler.handler", task_root=HELLO, opt=opt, receiver=receiver, env=env
    ):
        for _ in range(2):
            invocation = api.invoke(HELLO_EVENT.encode(), timeout_ms=20_000)
            assert invocation.json()["statusCode"] == 200
            assert api.wait_idle(10)
    assert api.failing_extension_nexts == 0
    assert len(roots(receiver)) == 2
