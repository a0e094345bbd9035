"""Step Functions tasks that receive the context object (``Execution``, ``State``, ``StateMachine``).

Pass the context object to the Lambda task, e.g. ``"Payload": {"Execution.$":
"$$.Execution", "State.$": "$$.State", "StateMachine.$": "$$.StateMachine"}``
(or ``"Payload.$": "$$"``). Sources of the parent, by ``NEXS_CONTEXT_PRECEDENCE``:

- ``headers``: the ``_nexs`` carrier our instrumentation puts into the
  execution's input on ``StartExecution`` (``Execution.Input``);
- ``xray``: with X-Ray tracing on the state machine, ``_X_AMZN_TRACE_ID``
  (``StartExecution``'s ``traceHeader``), added by the platform;
- ``derived``: when nothing travels, a context computed from the execution
  ARN: trace id = the first 16 bytes of SHA-256(ARN), parent span id = 8
  bytes of SHA-256("span:" + ARN). Every function of one execution computes
  the same, so they share one trace (as siblings under a parent that is never
  exported). Its sampled flag is the configured sampler's decision for that
  trace id, identical in every function (``traceidratio`` decides from the id).
"""

from __future__ import annotations

from ..model import SpanContext, SpanKind
from . import Trigger
from ._messages import message_incoming, payload_carrier

__all__ = ["derived_context", "describe"]


def derived_context(execution_arn: str) -> SpanContext:
    """The context every function of execution `execution_arn` derives when nothing travels."""
    from hashlib import sha256

    trace_id = int.from_bytes(sha256(execution_arn.encode("utf-8")).digest()[:16], "big") or 1
    span_id = int.from_bytes(sha256(b"span:" + execution_arn.encode("utf-8")).digest()[:8], "big") or 1
    from ..runtime import runtime

    sampler = runtime.sampler
    root = getattr(sampler, "root", sampler)  # a parent-based sampler decides a root trace with its root
    flags = 1 if root is None or root.should_sample(trace_id, None) else 0
    return SpanContext(trace_id, span_id, flags, (), True)


def describe(event: dict[str, object]) -> Trigger:
    """State machine attributes and the execution's context."""
    execution: dict[str, object] = event["Execution"]  # type: ignore[assignment]
    arn = str(execution["Id"])
    attrs: dict[str, object] = {"nexs.step_functions.execution.arn": arn}
    machine = event.get("StateMachine")
    if isinstance(machine, dict) and isinstance(machine.get("Id"), str):
        attrs["aws.step_functions.state_machine.arn"] = machine["Id"]
    state = event.get("State")
    state_name = None
    if isinstance(state, dict):
        if isinstance(state.get("Name"), str):
            state_name = attrs["nexs.step_functions.state.name"] = state["Name"]
        retries = state.get("RetryCount")
        if isinstance(retries, int) and not isinstance(retries, bool):
            attrs["nexs.step_functions.state.retry_count"] = retries
    trigger = Trigger(
        "other", SpanKind.SERVER, name=state_name if isinstance(state_name, str) else None, attributes=attrs
    )
    trigger.offer("headers", message_incoming(payload_carrier(execution.get("Input"))))
    from ..propagation.incoming import Incoming

    trigger.offer("derived", Incoming(derived_context(arn)))
    return trigger
