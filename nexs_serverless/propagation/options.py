"""Context-propagation settings beyond ``OTEL_PROPAGATORS``, read from the settings' snapshot.

- ``NEXS_CONTEXT_PRECEDENCE`` (``headers,host,xray,derived``): which source
  gives an invocation its parent when several carry a context.

  * ``headers``: what the event itself carries, read with ``OTEL_PROPAGATORS``
    (HTTP headers, SQS/SNS message attributes, a Lambda client context,
    CloudEvent and Pub/Sub attributes, Service Bus / Event Hubs properties, the
    ``_nexs`` carrier we add to EventBridge, Kinesis and Step Functions payloads).
  * ``host``: what the platform's host hands over: Azure Functions'
    ``context.trace_context``; on Google Cloud, ``X-Cloud-Trace-Context`` set by
    the front end when no configured format found a context.
  * ``xray``: AWS's own X-Ray header: SQS's ``AWSTraceHeader`` system attribute
    and Lambda's ``_X_AMZN_TRACE_ID``, each only when sampled: Lambda fills its
    variable with an unsampled id even when X-Ray tracing is off, and AWS SDKs
    copy that variable into every request they send (botocore's recursion
    detection), which SQS keeps as the message's ``AWSTraceHeader``.
  * ``derived``: a context computed from the Step Functions execution ARN, so
    the functions of one execution share a trace when nothing else travels.

  Sources not listed are never used (``headers`` alone ignores X-Ray).
- ``NEXS_SQS_MODE`` (``links``): ``links`` puts a link to every message's
  context on the invocation span; ``per_message`` adds one ``process`` span per
  message instead (OpenTelemetry's "SQS Message" span), linked to its message.
- ``NEXS_PAYLOAD_INJECTION`` (true): also carry the context inside payloads
  that have no attributes (EventBridge ``Detail``, Kinesis ``Data``, Step
  Functions ``input``), as a ``_nexs`` key, when the payload is a JSON object.
- ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` (empty): comma list of
  instrumentations not to install automatically (``botocore``, ``urllib3``,
  ``httpx``, ``logging``, ``opentelemetry``), as OpenTelemetry names it;
  ``requests`` counts as ``urllib3``, which instruments it. Other names are
  ignored with one warning line, as for any bad value.
"""

from __future__ import annotations

from ..config import Problem, Reader, report

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["SOURCES", "PropagationOptions", "current"]

SOURCES = ("headers", "host", "xray", "derived")
SQS_MODES = ("links", "per_message")
INSTRUMENTATIONS = ("botocore", "urllib3", "httpx", "logging", "opentelemetry")
_INSTRUMENTATION_ALIASES = {"requests": "urllib3"}  # OpenTelemetry's name; our urllib3 one covers it
PAYLOAD_KEY = "_nexs"


class PropagationOptions:
    """The parsed values (see the module docstring)."""

    __slots__ = ("disabled_instrumentations", "payload_injection", "precedence", "sqs_mode")

    def __init__(self, settings: Settings) -> None:
        reader = Reader(settings.environ)
        self.precedence: tuple[str, ...] = reader.names(
            "NEXS_CONTEXT_PRECEDENCE", default=SOURCES, choices=SOURCES
        )
        self.sqs_mode = reader.choice("NEXS_SQS_MODE", default="links", choices=SQS_MODES)
        self.payload_injection = reader.boolean("NEXS_PAYLOAD_INJECTION", default=True)
        self.disabled_instrumentations = _disabled(settings, reader.problems)
        report(reader.problems)


def _disabled(settings: Settings, problems: list[Problem]) -> frozenset[str]:
    """The instrumentations ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names; unknown names are a problem."""
    variable = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
    raw = settings.environ.get(variable, "")
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    resolved = [_INSTRUMENTATION_ALIASES.get(name, name) for name in names]
    known = frozenset(name for name in resolved if name in INSTRUMENTATIONS)
    unknown = [name for name in resolved if name not in INSTRUMENTATIONS]
    if unknown:
        expected = "a comma list of " + ", ".join(INSTRUMENTATIONS) + " (requests for urllib3)"
        problems.append(Problem(variable, raw, expected, ",".join(sorted(known)) or "none disabled"))
    return known


_cache: list[tuple[object, PropagationOptions | None]] = [(None, None)]


def current(settings: Settings | None = None) -> PropagationOptions:
    """The options of `settings` (default: the runtime's), parsed once per settings object."""
    if settings is None:
        from ..runtime import runtime

        settings = runtime.settings
    cached_settings, cached = _cache[0]
    if cached is not None and cached_settings is settings:
        return cached
    options = PropagationOptions(settings)
    _cache[0] = (settings, options)
    return options
