"""Outgoing calls carry the trace: AWS SDK, urllib3/requests, httpx; plus trace ids in logs.

    import nexs_serverless.instrumentation as instrumentation

    instrumentation.instrument()                    # everything importable
    instrumentation.instrument("botocore", "httpx") # or some

Automatically, at the first invocation, the instrumentations whose library
is already imported are installed (``botocore`` when boto3 was imported,
``urllib3``, ``httpx``), plus ``logging``, and the OpenTelemetry bridge when
``opentelemetry.trace`` is imported; nothing is imported for this, so a
function that does not use a library pays nothing for it. ``botocore`` and
``urllib3`` are installed in two steps: the first invocation puts stand-ins
on the methods they wrap, and the first call through one loads the
instrumentation (three modules) and hands over. A cold start whose first
invocation makes no AWS or HTTP call does not load them at all. Names in
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` are skipped (automatically only;
an explicit `instrument` call installs what it is asked for), and so are the
names `uninstrument` took out (all of them after ``uninstrument()``): calling it
at import, before the first invocation, opts out for the rest of the process,
until `instrument` names them again.

=================  ==============================================  ===================
name               what                                            module
=================  ==============================================  ===================
``botocore``       AWS SDK: span per call, context into messages   `botocore_hooks`
``urllib3``        urllib3 and requests: span per request          `urllib3_client`
``httpx``          httpx (sync and async): span per request        `httpx_client`
``logging``        ``trace_id``/``span_id`` on log records         `logs`
``opentelemetry``  OpenTelemetry API spans land in our buffer      `nexs_serverless.otel`
=================  ==============================================  ===================
"""

from __future__ import annotations

import importlib
import sys
import threading

from .. import _guard as guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..config import Settings

__all__ = ["auto_install", "instrument", "uninstrument"]

# name -> (module implementing it, module whose presence in sys.modules triggers auto-install)
_INSTRUMENTATIONS: dict[str, tuple[str, str | None]] = {
    "botocore": ("nexs_serverless.instrumentation.botocore_hooks", "botocore.client"),
    "urllib3": ("nexs_serverless.instrumentation.urllib3_client", "urllib3.connectionpool"),
    "httpx": ("nexs_serverless.instrumentation.httpx_client", "httpx"),
    "logging": ("nexs_serverless.instrumentation.logs", None),
    "opentelemetry": ("nexs_serverless.otel", "opentelemetry.trace"),
}

# Installed on first use by `auto_install`: name -> the (module, class, method) its install wraps; the
# first call through any of them installs. A module not loaded is skipped (s3transfer, without boto3).
_ON_FIRST_CALL: dict[str, tuple[tuple[str, str, str], ...]] = {
    "botocore": (
        ("botocore.client", "BaseClient", "_make_api_call"),
        # upload_file/download_file submit their worker tasks before any call is made: the first
        # transfer's tasks need the context too (see `botocore_hooks._patch_transfers`).
        ("s3transfer.futures", "BoundedExecutor", "submit"),
    ),
    "urllib3": (("urllib3.connectionpool", "HTTPConnectionPool", "urlopen"),),
}
# name -> [(owner class, method name, the library's own method, our stand-in)], while stand-ins wait.
_standing_in: dict[str, list[tuple[object, str, object, object]]] = {}
_stand_in_lock = threading.Lock()
_STAND_IN_MARK = "__nexs_stand_in__"  # on each stand-in, holding it: `_client.Patch.original`'s mark
_LEFT_ON_TOP = "_nexs_left_on_top"  # on a stand-in that was the class's method when it was removed
# What `uninstrument` took out and `auto_install` leaves alone: a user who removes one at import
# means it for the process, not until the first invocation. `instrument` takes names back out.
_opted_out: set[str] = set()


def instrument(*names: str) -> list[str]:
    """Install the named instrumentations (default: all whose library can be imported).

    It also withdraws an earlier `uninstrument` of those names (of every name
    when none is given), so the first invocation's automatic instrumentation
    takes them again.

    Returns:
        The names installed; a library that is not installed is skipped.

    Raises:
        ValueError: for an unknown name.
    """
    chosen = _known(names)
    _opted_out.difference_update(chosen)
    return [name for name in chosen if _install(name)]


def _known(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names`, or every name when there are none; a name we do not know is a mistake in code."""
    unknown = [name for name in names if name not in _INSTRUMENTATIONS]
    if unknown:
        raise ValueError(f"unknown instrumentation(s) {unknown}; known: {sorted(_INSTRUMENTATIONS)}")
    return names or tuple(_INSTRUMENTATIONS)


def _install(name: str) -> bool:
    if name not in _ON_FIRST_CALL:  # never has a stand-in: nothing to wait for
        return _install_over_stand_ins(name)
    with _stand_in_lock:
        return _install_over_stand_ins(name)


def _install_over_stand_ins(name: str) -> bool:
    """Install `name`, its wrappers taking the place of its waiting stand-ins in one step each.

    The stand-ins stay on the class while the instrumentation loads (three
    modules): a call made meanwhile, in another thread, waits in its stand-in
    for the lock held here, then takes the installed wrapper. Putting the
    originals back first let such a call through untraced, without context.
    The installs see the original under a stand-in (`_client.Patch.original`).
    Runs under `_stand_in_lock` for a name that has stand-ins.
    """
    waiting = _standing_in.pop(name, [])
    on_top = [entry for entry in waiting if getattr(entry[0], entry[1]) is entry[3]]
    for entry in on_top:
        setattr(entry[3], _LEFT_ON_TOP, True)
    try:
        return bool(importlib.import_module(_INSTRUMENTATIONS[name][0]).install())
    except ImportError:  # the library is not installed
        return False
    finally:
        for owner, method, original, stand_in in on_top:
            if getattr(owner, method) is stand_in:  # the install failed or did not wrap this one
                setattr(owner, method, original)


def _stand_in(name: str) -> None:
    """Put stand-ins on the methods `name`'s install wraps; the first call through one installs it."""
    if name in _standing_in:
        return  # waiting already
    placed: list[tuple[object, str, object, object]] = []
    for index, (module_name, class_name, method) in enumerate(_ON_FIRST_CALL[name]):
        owner = getattr(sys.modules.get(module_name), class_name, None)
        if owner is None:
            continue
        original = getattr(owner, method)
        if getattr(original, "__nexs_traced__", False):  # `_client.Patch`'s mark
            if index == 0:
                return  # installed already (`instrument` before the first invocation)
            continue
        placed.append((owner, method, original, _make_stand_in(name, owner, method, original)))
    _standing_in[name] = placed
    for owner, method, _, stand_in in placed:
        setattr(owner, method, stand_in)


def _make_stand_in(name: str, owner: object, method: str, original: Any) -> Callable[..., object]:
    """One of `name`'s stand-ins: its first call installs `name` for real and takes the new path."""

    def stand_in(self: object, *args: object, **kwargs: object) -> object:
        with _stand_in_lock:
            entries = _standing_in.get(name, ())
            if any(entry[3] is stand_in for entry in entries):  # the first call: install for real
                try:
                    _install_over_stand_ins(name)
                except Exception as exc:
                    guard.report(f"instrument:{name}", exc)
        # Calls that reach the stand-in after it left the class (threads that entered it while the
        # first call installed, a reference taken earlier) take the class's method too: when the
        # stand-in was on top, nothing under that method leads back here. They went to the
        # original, untraced: a cold start fanning out to threads sent messages without context.
        if getattr(stand_in, _LEFT_ON_TOP, False):  # our wrapper, installed, around the original
            return getattr(owner, method)(self, *args, **kwargs)
        # Another library wrapped the stand-in after we put it there (the X-Ray SDK's patch, a
        # wrapt wrapper): our wrapper now sits above theirs, which calls this; going back to the
        # method on the class would go round that loop for ever.
        return original(self, *args, **kwargs)

    stand_in.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(stand_in, _STAND_IN_MARK, stand_in)  # itself: a copy of the mark marks nothing else
    return stand_in


def _remove_stand_in(name: str) -> None:
    """Give the library its own methods back where our stand-ins still hold their place."""
    for owner, method, original, stand_in in _standing_in.pop(name, ()):
        if getattr(owner, method) is stand_in:
            setattr(stand_in, _LEFT_ON_TOP, True)
            setattr(owner, method, original)


def uninstrument(*names: str) -> None:
    """Remove the named instrumentations (default: all), restoring the libraries' own code.

    The removal sticks: the first invocation's automatic instrumentation skips
    these names for the rest of the process, as it skips those in
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``, so calling this at import keeps
    them out from the start. An `instrument` call naming them (or naming none)
    withdraws the opt-out. The testing kit's resets forget opt-outs
    (`nexs_serverless.testing.reset`).

    Raises:
        ValueError: for an unknown name.
    """
    chosen = _known(names)
    _opted_out.update(chosen)
    for name in chosen:
        _remove(name)


def _remove(name: str) -> None:
    """Take `name` out, whether it waits as a stand-in or is installed; loads nothing to do it."""
    _remove_stand_in(name)
    module = sys.modules.get(_INSTRUMENTATIONS[name][0])
    if module is not None:
        module.uninstall()


def _forget() -> None:
    """Remove every instrumentation and forget every opt-out: the testing kit's fresh process.

    Not `uninstrument()`, whose opt-out would stop the next test's first
    invocation from instrumenting.
    """
    _opted_out.clear()
    for name in _INSTRUMENTATIONS:
        _remove(name)


def auto_install(settings: Settings) -> list[str]:
    """What the first invocation installs: the instrumentations whose library is already loaded.

    Names in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` and names `uninstrument`
    took out are skipped.

    Returns:
        The names installed, or waiting as a stand-in for their first call.
    """
    from ..propagation.options import current

    disabled = current(settings).disabled_instrumentations
    done: list[str] = []
    for name, (module_name, trigger) in _INSTRUMENTATIONS.items():
        if name in disabled or name in _opted_out or (trigger is not None and trigger not in sys.modules):
            continue
        try:
            if name in _ON_FIRST_CALL:
                _stand_in(name)
                done.append(name)
            elif importlib.import_module(module_name).install():
                done.append(name)
        except Exception as exc:
            guard.report(f"instrument:{name}", exc)
    return done
