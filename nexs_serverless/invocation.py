"""One invocation, start to flush: what `@traced_handler` does around the user's call.

`begin` starts the root span with the platform's and the trigger's attributes
and arms the timeout guard; `succeed`/`fail` record the outcome; `finish`
ends the root span and flushes within min(flush timeout, remaining time minus
a safety margin). Each is wrapped so that a tracer failure is swallowed,
counted and logged once: the handler's result and exceptions are untouched.
`wrap_generator` runs them around the iteration of a generator handler (a
streamed response); it is here, not in `handler`, so that it loads only with
the first generator handler, off the import path.
"""

from __future__ import annotations

import json
import time
from _contextvars import ContextVar

from . import _guard as guard
from . import _stats as stats
from ._watchdog import watchdog
from .context import _current, _invocation_deadline
from .flushing import flush, shutdown_flush
from .handler import process
from .model import StatusCode
from .platforms import for_call
from .runtime import runtime
from .span import _safe_str
from .tracing import name_of, tracer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextvars import Token
    from types import ModuleType
    from typing import Any

    from .config import Settings
    from .handler import Options
    from .model import SpanContext
    from .span import Span
    from .triggers import Trigger

__all__ = ["Invocation", "begin", "fail", "finish", "finish_async", "succeed"]

# True while this context (thread or task) runs a traced handler: a traced call made there is nested.
_inside: ContextVar[bool] = ContextVar("nexs_inside_invocation", default=False)


class Invocation:
    """What one call needs to finish what `begin` started (lives in the wrapper's locals)."""

    __slots__ = (
        "capture_response",
        "context",
        "deadline_token",
        "inside_token",
        "nested",
        "platform",
        "root",
        "ticket",
        "token",
        "trigger",
    )

    def __init__(
        self,
        root: Span,
        token: Token[Span | SpanContext | None],
        trigger: Trigger,
        context: object,
        capture_response: bool,
        platform: ModuleType,
    ) -> None:
        self.platform = platform
        self.root = root
        self.token = token
        self.trigger = trigger
        self.context = context
        self.ticket = 0
        self.capture_response = capture_response
        # Called from inside another invocation's handler (a router calling decorated handlers):
        # the outer one flushes, or hands over, the whole trace when it returns.
        self.nested = False
        self.inside_token: Token[bool] | None = None
        self.deadline_token: Token[float] | None = None


def begin(
    fn: Callable[..., Any], options: Options, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Invocation | None:
    """Start the root span; None when disabled or when anything goes wrong."""
    settings = runtime.settings
    if settings.disabled:
        return None
    try:
        platform = for_call(settings, runtime.platform_module(), args, kwargs)
        if not _instrumented:
            _auto_instrument(settings)
        event, context = platform.split(args, kwargs)
        trigger = platform.describe(event, context, settings)
        attrs = platform.invocation_attributes(event, context, settings)
        attrs["faas.trigger"] = trigger.trigger
        attrs.update(trigger.attributes)
        if "NEXS_TENANT_ID_FROM" in settings.environ or "NEXS_TENANT_DEFAULT" in settings.environ:
            from .tenancy import annotate

            annotate(attrs, event, settings)
        _cold_start_attributes(
            attrs, settings.proactive_init_ms, settings.env("AWS_LAMBDA_INITIALIZATION_TYPE")
        )
        span_name = options.name or trigger.name or str(attrs.get("faas.name") or name_of(fn))
        root = tracer.span(
            span_name, kind=trigger.kind, attributes=attrs, links=trigger.links, parent=trigger.parent
        )
        capture_event = options.capture_event
        if capture_event if capture_event is not None else settings.capture_event:
            root.set_attribute("nexs.event", _captured(event, settings.capture_max_length))
        capture_response = options.capture_response
        # Nested only inside another invocation of this thread or task (its context): a span that is
        # current for another reason (a web framework's middleware span, a user's own) while another
        # request runs concurrently (Cloud Run, Azure) made this request wait for someone else's flush.
        nested = process.active > 0 and _inside.get()
        token = _current.set(root)
        process.began(root.trace_id)
        inside = _inside.set(True)
        try:
            invocation = Invocation(
                root,
                token,
                trigger,
                context,
                capture_response if capture_response is not None else settings.capture_response,
                platform,
            )
            invocation.nested = nested
            invocation.inside_token = inside
            trigger.enter(root)
            remaining = platform.remaining_ms(context)
            _arm_timeout_guard(
                invocation, settings, options.flush_timeout_ms or settings.flush_timeout_ms, remaining
            )
            if remaining is not None and -_INFINITY < remaining < _INFINITY:
                # Last, as nothing after it can fail: a flush the handler asks for (`flush()`, the
                # OpenTelemetry bridge's `force_flush`) ends before the deadline (`flushing.flush`).
                invocation.deadline_token = _invocation_deadline.set(time.monotonic() + remaining / 1000.0)
        except Exception:
            # Untraced from here on: leave no current span or baggage behind, no root that never ends.
            process.ended(root.trace_id)
            trigger.exit(root)
            _current.reset(token)
            _inside.reset(inside)
            root.end()
            raise
        return invocation
    except Exception as exc:
        guard.report("begin_invocation", exc)
        return None


def succeed(invocation: Invocation | None, result: object) -> None:
    """Record the handler's return value (HTTP status, captured response)."""
    if invocation is None:
        return
    try:
        root = invocation.root
        if invocation.trigger.on_result is not None:
            invocation.trigger.on_result(root, result)
        if invocation.capture_response:
            root.set_attribute("nexs.response", _captured(result, runtime.settings.capture_max_length))
    except Exception as exc:
        guard.report("record_result", exc)


def fail(invocation: Invocation | None, exc: BaseException) -> None:
    """Record the handler's exception on the root span (the wrapper re-raises it).

    Any `BaseException` sets ERROR, `SystemExit`, `KeyboardInterrupt` and
    `asyncio.CancelledError` included: on Lambda ``sys.exit()`` in a handler
    ends the runtime (``Runtime.ExitError``) and the request fails; a cancelled
    request got no answer; an interrupted one did not finish. Each is still
    re-raised unchanged, and the spans are still flushed. (OpenTelemetry's
    `use_span` records only `Exception`s, after going back and forth on it over
    `GeneratorExit`: open-telemetry/opentelemetry-python#4406, #4494. A handler
    is not a generator, and a coroutine closed unfinished did not answer either.)
    """
    if invocation is None:
        return
    try:
        root = invocation.root
        root.record_exception(exc, escaped=True)
        status = _http_status_of(exc) if invocation.trigger.trigger == "http" else None
        if status is not None:
            # An HTTP error the framework answers with (Flask's ``abort(404)``, a werkzeug
            # HTTPException): the response's status, and ERROR only for a server error, as
            # for a returned response (4xx is the client's error on a server span).
            root.set_attribute("http.response.status_code", status)
            if status < 500:
                return
        # `_safe_str`: an exception whose ``__str__`` raises left the root UNSET, the failure unseen.
        root.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {_safe_str(exc)}")
    except Exception as err:
        guard.report("record_exception", err)


# Exceptions a web framework turns into a response with their own status (the first attribute
# named is the status): Flask's `abort` (functions-framework on Cloud Run functions), Starlette's.
_FRAMEWORK_HTTP_ERRORS = {
    ("werkzeug.exceptions", "HTTPException"): "code",
    ("starlette.exceptions", "HTTPException"): "status_code",
}


def _http_status_of(exc: BaseException) -> int | None:
    """The status a web framework answers `exc` with, when it is one of its HTTP errors.

    Only those: on Lambda an exception's ``code`` says nothing about the response (API
    Gateway answers 502 for any unhandled exception).
    """
    for cls in type(exc).__mro__:
        attribute = _FRAMEWORK_HTTP_ERRORS.get((cls.__module__, cls.__name__))
        if attribute is not None:
            code = getattr(exc, attribute, None)
            return code if type(code) is int and 400 <= code <= 599 else None
    return None


def finish(invocation: Invocation | None, options: Options) -> None:
    """End the root span, restore the context, flush within the budget."""
    deadline = _end(invocation, options)
    if deadline is not None:
        _flush_by(deadline)


async def finish_async(invocation: Invocation | None, options: Options) -> None:
    """`finish` for an ``async def`` handler: the flush runs in the event loop's default executor.

    Run on the loop's thread, the flush blocked every other coroutine (the
    other requests of an ASGI app or an Azure worker) for up to its budget. It
    is still awaited, so it is done before the handler's awaitable returns, and
    bounded by the same deadline, counted from the handler's return. Without
    a running asyncio loop (another event loop library, a coroutine driven by
    hand) or an executor that takes no more work (the loop shutting down), the
    flush runs here, as before. A cancellation that lands while the flush is
    awaited is not let through: without the tracer the handler's outcome was
    settled before this await existed (its result returned, its exception
    raised), so a ``wait_for`` timeout or a task group's cancel must not turn
    it into a ``CancelledError`` (counted as ``flush_cancel_held``; the flush
    goes on in its thread).
    """
    deadline = _end(invocation, options)
    if deadline is None:
        return
    try:
        import asyncio  # loaded already: an asyncio loop is running this coroutine

        pending = asyncio.get_running_loop().run_in_executor(None, _flush_by, deadline)
    except RuntimeError:  # no running asyncio loop, or its executor is shut down
        _flush_by(deadline)
        return
    try:
        await asyncio.shield(pending)
    except asyncio.CancelledError:
        stats.incr("flush_cancel_held")


def _flush_by(deadline: float) -> None:
    """Flush with what is left until `deadline` (a `time.monotonic()` value)."""
    flush(max(0.0, (deadline - time.monotonic()) * 1000.0), reason="return")


def _end(invocation: Invocation | None, options: Options) -> float | None:
    """End the root span and restore the context; the flush's deadline, or None when no flush is due."""
    if invocation is None:
        if runtime.settings.flush_mode == "after_response":
            _handed_over(None)
        return None
    try:
        process.ended(invocation.root.trace_id)
        if invocation.ticket:
            watchdog.disarm(invocation.ticket)
        invocation.trigger.exit(invocation.root)
        invocation.root.end()
        # Nothing here holds the root from now on, so that the flush can give its record back to
        # the pool (a record something still references is never reused): every warm invocation
        # allocated a new root before.
        del invocation.root
        try:
            _current.reset(invocation.token)
            if invocation.inside_token is not None:
                _inside.reset(invocation.inside_token)
            if invocation.deadline_token is not None:
                _invocation_deadline.reset(invocation.deadline_token)
        except ValueError:  # finished in another context than it began in
            _current.set(None)
            _inside.set(False)
            _invocation_deadline.set(0.0)
        if invocation.nested:
            # The outer invocation flushes (or hands over) when it returns: flushing now would split
            # the trace (tail sampling would judge half of it), and handing over would let the
            # extension flush while the outer handler still runs.
            return None
        settings = runtime.settings
        if settings.flush_mode == "after_response" and _handed_over(
            invocation.context, options.flush_timeout_ms
        ):
            return None
        budget = float(options.flush_timeout_ms or settings.flush_timeout_ms)
        remaining = invocation.platform.remaining_ms(invocation.context)
        if remaining is not None:
            budget = min(budget, remaining - settings.flush_safety_margin_ms)
        return time.monotonic() + max(budget, 0.0) / 1000.0
    except Exception as exc:
        guard.report("finish_invocation", exc)
        return None


def _handed_over(context: object, budget_ms: int | None = None) -> bool:
    """After-response mode: the extension thread flushes (False: not running, flush now)."""
    try:
        from .extension import hand_over

        return hand_over(getattr(context, "aws_request_id", None), budget_ms)
    except Exception as exc:
        guard.report("hand_over", exc)
        return False


_instrumented: list[bool] = []


def _auto_instrument(settings: Settings) -> None:
    """First invocation: instrument the clients already imported (botocore, HTTP, logging)."""
    _instrumented.append(True)
    try:
        from .instrumentation import auto_install

        auto_install(settings)
    except Exception as exc:
        guard.report("auto_instrument", exc)


def _cold_start_attributes(attrs: dict[str, object], proactive_ms: int, init_type: str) -> None:
    first = process.invocations == 0
    process.invocations += 1
    if not first:
        attrs["faas.coldstart"] = False
        return
    waited_ms = (time.monotonic() - process.import_monotonic) * 1000.0
    attrs["nexs.init.to_first_invocation_ms"] = round(waited_ms, 3)
    if init_type == "provisioned-concurrency":
        attrs["faas.coldstart"] = False
        attrs["nexs.init.type"] = "provisioned-concurrency"
    elif init_type == "snap-start":
        # Restored from a snapshot taken after init, however long ago: the first call of this
        # environment is still its cold (restore) start, and the time since import means nothing.
        attrs["faas.coldstart"] = True
        attrs["nexs.init.type"] = "snap-start"
    elif waited_ms > proactive_ms:
        attrs["faas.coldstart"] = False
        attrs["nexs.init.type"] = "proactive"
    else:
        attrs["faas.coldstart"] = True
        attrs["nexs.init.type"] = init_type or "on-demand"
    if not process.exit_hook_installed:
        import atexit

        process.exit_hook_installed = True
        atexit.register(_flush_at_exit)


_INFINITY = float("inf")


def _arm_timeout_guard(
    invocation: Invocation, settings: Settings, flush_timeout_ms: int, remaining: float | None
) -> None:
    margin_ms = settings.timeout_guard_ms
    if margin_ms <= 0:
        return
    if remaining is None or not -_INFINITY < remaining < _INFINITY:
        # NaN (a context stand-in's arithmetic) compared false with everything and armed a guard
        # due now, marking every invocation timed out; infinity says there is no deadline to guard.
        return
    if remaining <= settings.flush_safety_margin_ms:  # no time left to flush in: nothing to guard
        return
    if remaining < margin_ms:
        # A margin longer than the time the invocation starts with (NEXS_TIMEOUT_GUARD_MS past the
        # function's timeout) made the guard due at once: it marked every invocation timed out and
        # ended its spans as they began. Half the time left goes to the handler, half to the flush.
        margin_ms = int(remaining // 2)
    due = time.monotonic() + max(0.0, remaining - margin_ms) / 1000.0
    root = invocation.root

    def on_deadline() -> None:
        stats.incr("timeout_guard_fired")
        root.set_attribute("nexs.timed_out", True)
        root.set_status(
            StatusCode.ERROR,
            f"invocation timed out (timeout guard flushed {margin_ms} ms before the deadline)",
        )
        now = time.time_ns()
        trace_id = root.trace_id
        for span in runtime.buffer.running():
            if span.trace_id != trace_id:  # another request's (Cloud Run, Azure: concurrent requests)
                continue
            span.set_attribute("nexs.force_ended", True)
            span.force_ended = True
            span.end(now)
        # Bounded as the flush at return is: min(flush timeout, remaining time - safety margin).
        left = invocation.platform.remaining_ms(invocation.context)
        budget = (left if left is not None else margin_ms) - settings.flush_safety_margin_ms
        flush(max(0.0, min(budget, flush_timeout_ms)), reason="timeout")

    invocation.ticket = watchdog.arm(due, on_deadline)


def _flush_at_exit() -> None:
    """Last chance at interpreter exit: send what has ended, then what exporters hold."""
    try:
        shutdown_flush(runtime.settings.flush_timeout_ms, reason="exit")
    except Exception as exc:  # pragma: no cover - interpreter shutting down
        guard.report("exit_flush", exc)


def _captured(value: object, max_length: int) -> str:
    from .redaction_capture import redact_capture  # same rules as spans, applied before truncation

    value = redact_capture(value, runtime.settings)
    try:
        text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    except Exception:
        text = repr(value)
    if len(text) > max_length:
        stats.incr("captures_truncated")
        return text[:max_length] + "…[truncated]"
    return text
