"""Flush after the response (``NEXS_FLUSH_MODE=after_response``): an internal Lambda extension.

Why: with flush-on-return the caller waits for the export. Lambda keeps the
execution environment running after the runtime has posted the response until
every registered extension asks for its next event, so an *internal* extension
(a thread of the runtime process, registered through the Extensions API) turns
that window into export time the caller does not wait for. The handler wrapper
then only hands the invocation over (`hand_over`); this thread flushes.

The platform's rules (AWS docs, "Lambda Extensions API"):

- An internal extension registers during init, before the runtime's first
  ``next``: `start` runs at decoration time (`@traced_handler`, or the
  zero-code wrapper loading the handler), never at package import.
- Internal extensions may register for ``INVOKE`` only; ``SHUTDOWN`` is for
  external ones. At shutdown, Lambda sends SIGTERM to the runtime when an
  extension is registered and SIGKILLs it 500 ms later (internal extensions
  only): `start` installs a SIGTERM handler that flushes what is left within
  `SHUTDOWN_BUDGET_MS` and then defers to the previous handler (put back in
  front at each dispatch when the function replaced it after `start`). The Python
  runtime delivers SIGTERM to Python code on 3.12+ only (older runtimes block
  the main thread in C while waiting for the next event).
- The invoke phase, extension time included, ends at the function's timeout:
  the wait for the hand-over and the flush are both capped by the event's
  ``deadlineMs``.

When the API is not there (not on Lambda, or registration refused) `start`
returns False, logs one line, and `hand_over` returns False so the wrapper
flushes on return as usual. When it runs, the decorator skips the exporters'
background preparation during init: the first flush, after the response,
builds and connects them.

"After the response" means after the runtime posted it. The wrapper returns
before the runtime client serialises and posts the result, so a hand-over from
the wrapper let the flush race the post (a large response reached the caller
after the export). When `start` runs inside the runtime's own init (its
bootstrap module, which loads the handler's module: ``awslambdaric.bootstrap``
on python3.12+, ``/var/runtime/bootstrap.py`` run as ``__main__`` on 3.10 and
3.11), it wraps the bootstrap's ``handle_event_request``, which calls the
handler and posts its result or error: the hand-over then happens when that
returns. A traced call that the runtime did not dispatch (a warm-up call at
import) flushes on return, so it cannot release the wait of the next
invocation early.

Environment: ``AWS_LAMBDA_RUNTIME_API`` (host:port of the API, set by Lambda),
``NEXS_FLUSH_MODE``, ``NEXS_FLUSH_TIMEOUT_MS``, ``NEXS_FLUSH_SAFETY_MARGIN_MS``.

HTTP goes through `exporters._http` (a keep-alive client over the C `_socket`
module): no `socket`, `http.client` or `urllib` on the cold path.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque

from . import _guard as guard
from . import _stats as stats
from .flushing import flush, shutdown_flush
from .runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable
    from types import FrameType

    from .config import Settings
    from .exporters._http import Connection
else:
    import _signal  # `signal` wraps the same functions but costs ~1 ms of enum building

__all__ = ["NAME", "SHUTDOWN_BUDGET_MS", "Extension", "active", "hand_over", "start"]

NAME = "nexs-serverless"
SHUTDOWN_BUDGET_MS = 400  # of the 500 ms Lambda leaves between SIGTERM and SIGKILL
_BASE = "/2020-01-01/extension"
_REGISTER_TIMEOUT_S = 2.0
_NEXT_TIMEOUT_S = 365 * 24 * 3600.0  # `next` waits for the next invocation, however long that is
_HANDED_KEEP = 32  # hand-overs remembered while their INVOKE event is awaited
_MAX_INVOCATION_S = 900.0  # Lambda's longest timeout: the wait when an event has no deadline


class ExtensionError(Exception):
    """The Extensions API answered with an unexpected status or could not be reached."""


class Extension:
    """A registered internal extension: the event loop thread and the hand-over mailbox.

    Args:
        connection: a client for the Extensions API (used by the loop thread only).
        identifier: the ``Lambda-Extension-Identifier`` returned by register.
    """

    __slots__ = ("_budget_ms", "_cond", "_handed", "connection", "identifier", "running", "thread")

    def __init__(self, connection: Connection, identifier: str) -> None:
        self.connection = connection
        self.identifier = identifier
        self.running = False
        self.thread: threading.Thread | None = None
        self._cond = threading.Condition(threading.Lock())
        self._handed: deque[str | None] = deque(maxlen=_HANDED_KEEP)
        self._budget_ms: float | None = None

    def launch(self) -> None:
        """Start the event loop in a daemon thread (it asks for the first event at once)."""
        self.running = True
        self.thread = threading.Thread(target=self.run, name="nexs-extension", daemon=True)
        self.thread.start()

    def hand_over(self, request_id: str | None, budget_ms: float | None = None) -> None:
        """Tell the loop that invocation `request_id` has returned (None: whichever is pending).

        `budget_ms`: the handler's own flush budget (``@traced_handler(flush_timeout_ms=...)``),
        else ``NEXS_FLUSH_TIMEOUT_MS`` applies.
        """
        with self._cond:
            self._handed.append(request_id)
            self._budget_ms = budget_ms
            self._cond.notify()

    def run(self) -> None:
        """Event loop: next -> wait for the hand-over -> flush -> next, until the API fails.

        Once registered, Lambda waits for this thread's ``next`` to end every
        invoke phase: a failure while serving is counted and the loop goes on;
        only a failing ``next`` (the API is gone) ends it.
        """
        while True:
            try:
                event = self._next_event_retried()
            except Exception as exc:
                # The environment is going away or the API broke: flush on return from now on.
                self.running = False
                self.connection.close()
                stats.incr("extension_stopped")
                guard.report("extension_next", exc)
                return
            try:
                if event.get("eventType") == "INVOKE":
                    self.serve(event)
            except Exception as exc:
                guard.report("extension_serve", exc)

    def _next_event_retried(self) -> dict[str, object]:
        """`next_event`, tried again after a failure before giving up (`_NEXT_RETRY_DELAYS_S`).

        Lambda counts a registered extension until the environment ends: one that stopped
        asking for events would leave every later invoke phase open until the function's
        timeout, so one failed ``next`` (a transient error) must not end the loop.
        """
        for delay_s in _NEXT_RETRY_DELAYS_S:
            try:
                return self.next_event()
            except Exception:  # noqa: PERF203 - once per failure, not a hot loop
                stats.incr("extension_next_retries")
                time.sleep(delay_s)
        return self.next_event()

    def next_event(self) -> dict[str, object]:
        """Block until Lambda sends the next lifecycle event."""
        import json

        response = self.connection.request(
            "GET",
            _BASE + "/event/next",
            {"Lambda-Extension-Identifier": self.identifier},
            b"",
            _NEXT_TIMEOUT_S,
        )
        if response.status != 200:
            raise ExtensionError(f"event/next answered {response.status}: {response.body[:200]!r}")
        event: dict[str, object] = json.loads(response.body)
        return event

    def serve(self, event: dict[str, object], *, clock: Callable[[], float] = time.time) -> None:
        """Wait until the invocation of `event` is handed over, then flush (both before its deadline)."""
        settings = runtime.settings
        request_id = event.get("requestId")
        deadline_ms = event.get("deadlineMs")
        if isinstance(deadline_ms, (int, float)):
            deadline_s = float(deadline_ms) / 1000.0
        else:
            deadline_s = clock() + _MAX_INVOCATION_S
        margin_s = settings.flush_safety_margin_ms / 1000.0
        with self._cond:
            while not self._take(request_id):
                wait_s = deadline_s - margin_s - clock()
                if wait_s <= 0:
                    stats.incr("extension_handover_missed")
                    break
                self._cond.wait(wait_s)
        wanted_ms = self._budget_ms or float(settings.flush_timeout_ms)
        budget_ms = min(wanted_ms, (deadline_s - margin_s - clock()) * 1000.0)
        flush(max(budget_ms, 0.0), reason="after_response")

    def _take(self, request_id: object) -> bool:
        handed = self._handed
        for index, value in enumerate(handed):
            if value is None or value == request_id:
                del handed[index]
                return True
        return False


_NEXT_RETRY_DELAYS_S = (0.05, 0.25, 1.0)
_active: list[Extension] = []
_attempted: list[bool] = []


def active() -> Extension | None:
    """The running extension, or None (not started, not on Lambda, or stopped)."""
    if _active and _active[0].running:
        return _active[0]
    return None


def start(settings: Settings | None = None) -> bool:
    """Register the internal extension and start its thread; True when it runs.

    Called at decoration time when ``NEXS_FLUSH_MODE=after_response``. Only the
    first call does anything. Never raises: without the API it logs one line and
    the wrapper keeps flushing on return.
    """
    if _attempted:
        return active() is not None
    _attempted.append(True)
    settings = settings or runtime.settings
    api = settings.env("AWS_LAMBDA_RUNTIME_API")
    try:
        if not api:
            raise ExtensionError("AWS_LAMBDA_RUNTIME_API is not set (not running on Lambda)")
        connection = connect(api)
        try:
            identifier = register(connection)
        except Exception:
            connection.close()
            raise
        extension = Extension(connection, identifier)
        extension.launch()
        _active.append(extension)
    except Exception as exc:
        stats.incr("extension_unavailable")
        guard.warn_once(
            "extension_unavailable",
            "nexs_serverless: NEXS_FLUSH_MODE=after_response needs the Lambda Extensions API (%s); "
            "flushing on return instead",
            exc,
        )
        return False
    try:
        _install_sigterm_handler()
    except Exception as exc:
        guard.report("extension_sigterm", exc)
    try:
        _wrap_runtime_dispatch()
    except Exception as exc:  # hand over from the wrapper, as before
        guard.report("extension_dispatch", exc)
    return True


def hand_over(request_id: str | None, budget_ms: float | None = None) -> bool:
    """Give the ended spans of invocation `request_id` to the extension; False: flush now yourself.

    Called when the wrapper returns. Where the runtime's dispatch is wrapped (see the
    module docstring) the hand-over of a dispatched invocation waits for the post
    instead (True, nothing queued now), and a call the runtime did not dispatch gets
    False: it flushes on return.
    """
    extension = active()
    if extension is None:
        return False
    if _dispatch.wrapped:
        if not _dispatch.active:
            return False
        _dispatch.budget_ms = budget_ms
        return True
    extension.hand_over(request_id, budget_ms)
    return True


class _Dispatch:
    """Whether the runtime's ``handle_event_request`` is wrapped, and the call it is in."""

    __slots__ = ("active", "budget_ms", "wrapped")

    def __init__(self) -> None:
        self.wrapped = False
        self.active = False
        self.budget_ms: float | None = None


_dispatch = _Dispatch()


def _wrap_runtime_dispatch() -> bool:
    """Hand over after the runtime posted each response: wrap its dispatch, when it is our caller.

    Only from inside the runtime's own init: a frame of its bootstrap module (the one that
    holds both the handler loader ``_get_handler`` and ``handle_event_request``) is on the
    stack, loading the handler's module. Anywhere else (tests, another runtime) nothing changes.
    """
    if _dispatch.wrapped:
        return True
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and not _is_runtime_bootstrap(frame.f_globals):
        frame = frame.f_back
    if frame is None:
        return False
    bootstrap = frame.f_globals  # the module's namespace: its loop looks the function up there
    original = bootstrap["handle_event_request"]

    def handle_event_request(*args: object, **kwargs: object) -> object:
        request_id = kwargs.get("invoke_id", args[2] if len(args) > 2 else None)
        _dispatch.active, _dispatch.budget_ms = True, None
        _keep_sigterm_handler()
        try:
            return original(*args, **kwargs)
        finally:
            _dispatch.active = False
            extension = active()
            if extension is not None:  # the result or error is posted: the caller has it
                extension.hand_over(request_id if isinstance(request_id, str) else None, _dispatch.budget_ms)

    handle_event_request.__wrapped__ = original  # type: ignore[attr-defined]
    bootstrap["handle_event_request"] = handle_event_request
    _dispatch.wrapped = True
    return True


def _is_runtime_bootstrap(namespace: dict[str, object]) -> bool:
    """Whether `namespace` is the Python runtime's bootstrap module (`awslambdaric`'s, or an older one)."""
    return callable(namespace.get("handle_event_request")) and callable(namespace.get("_get_handler"))


def register(connection: Connection) -> str:
    """``POST /extension/register`` for INVOKE events; returns the extension identifier."""
    response = connection.request(
        "POST",
        _BASE + "/register",
        {"Lambda-Extension-Name": NAME, "Content-Type": "application/json"},
        b'{"events":["INVOKE"]}',
        _REGISTER_TIMEOUT_S,
    )
    identifier = response.headers.get("lambda-extension-identifier", "")
    if response.status != 200 or not identifier:
        raise ExtensionError(f"register answered {response.status}: {response.body[:200]!r}")
    return identifier


def connect(api: str) -> Connection:
    """A client for the API at ``host:port`` (the value of ``AWS_LAMBDA_RUNTIME_API``)."""
    from .exporters._http import Connection, split_url

    try:
        scheme, host, port, _ = split_url("http://" + api.strip())
    except ValueError:
        raise ExtensionError(f"AWS_LAMBDA_RUNTIME_API={api!r} is not host:port") from None
    return Connection(scheme, host, port)


_sigterm_installed: list[Callable[[int, FrameType | None], None]] = []  # ours, once installed


def _keep_sigterm_handler() -> None:
    """Put our SIGTERM handler back in front when user code replaced it after `start` (main thread).

    A handler the function installs after the decoration (at the end of its module, or in a
    library it imports later) would otherwise replace ours: what is left would not be flushed
    before Lambda's SIGKILL. Ours then runs first and defers to that one, as to any other.
    """
    try:
        if _sigterm_installed and _signal.getsignal(_signal.SIGTERM) is not _sigterm_installed[0]:
            _install_sigterm_handler()
    except Exception as exc:
        guard.report("extension_sigterm", exc)


def _install_sigterm_handler() -> None:
    """Flush on SIGTERM, then do what the previous handler would have done."""
    if threading.current_thread() is not threading.main_thread():
        guard.warn_once(
            "extension_sigterm_thread",
            "nexs_serverless: handler decorated outside the main thread; no SIGTERM flush",
        )
        return
    previous = _signal.getsignal(_signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        try:
            stats.incr("sigterm_flushes")
            shutdown_flush(min(SHUTDOWN_BUDGET_MS, runtime.settings.flush_timeout_ms), reason="sigterm")
        except Exception as exc:
            guard.report("sigterm_flush", exc)
        defer(previous, signum, frame)

    _signal.signal(_signal.SIGTERM, on_sigterm)
    _sigterm_installed[:] = [on_sigterm]


def defer(previous: object, signum: int, frame: FrameType | None) -> None:
    """Run the handler that was installed before ours (the default one terminates the process)."""
    if callable(previous):
        previous(signum, frame)
    elif previous == _signal.SIG_DFL:
        _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)
