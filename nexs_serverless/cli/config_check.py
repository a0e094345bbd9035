"""``nexs-serverless config check``: the configuration the layer would run with, and what is wrong.

It does what a cold start does with the environment, and watches: the core
settings are parsed (`config.load`), then the runtime is configured and
every part that reads settings of its own is built (platform detection and
resource, sampler, pipeline stages, exporters), and one empty invocation is
run with an in-memory exporter (for what is read per invocation: propagation
options, trigger modes, instrumentation). Whatever those parts report
through the ``nexs_serverless`` logger is collected rather than printed:
an invalid value (`config.Problem`) or a part that fails to build is an
error, anything else a warning. It also warns about ``NEXS_*``/``OTEL_*``
variables that no part of the package reads (a typo, or a setting of
another tool): those not in `known_variables`.
"""

from __future__ import annotations

import importlib
import logging

from .. import _guard, config, runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["Report", "check", "known_variables", "render"]

# Setting -> the variables it is read from (for the "from" column); settings
# added to `config.Settings` later are shown without a source.
_SOURCES: dict[str, tuple[str, ...]] = {
    "disabled": ("OTEL_SDK_DISABLED", "NEXS_DISABLED"),
    "service_name": ("OTEL_SERVICE_NAME",),
    "resource_attributes": ("OTEL_RESOURCE_ATTRIBUTES",),
    "exporters": ("OTEL_TRACES_EXPORTER",),
    "sampler": ("OTEL_TRACES_SAMPLER",),
    "sampler_arg": ("OTEL_TRACES_SAMPLER_ARG",),
    "propagators": ("OTEL_PROPAGATORS",),
    "pool_size": ("NEXS_SPAN_POOL_SIZE",),
    "max_buffered_spans": ("NEXS_MAX_BUFFERED_SPANS",),
    "flush_timeout_ms": ("NEXS_FLUSH_TIMEOUT_MS",),
    "flush_safety_margin_ms": ("NEXS_FLUSH_SAFETY_MARGIN_MS",),
    "flush_mode": ("NEXS_FLUSH_MODE",),
    "timeout_guard_ms": ("NEXS_TIMEOUT_GUARD_MS",),
    "proactive_init_ms": ("NEXS_PROACTIVE_INIT_MS",),
    "capture_event": ("NEXS_CAPTURE_EVENT",),
    "capture_response": ("NEXS_CAPTURE_RESPONSE",),
    "capture_max_length": ("NEXS_CAPTURE_MAX_LENGTH",),
}
_LIMIT_SOURCES: dict[str, tuple[str, ...]] = {
    "attribute_count": ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"),
    "attribute_value_length": ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
    "event_count": ("OTEL_SPAN_EVENT_COUNT_LIMIT",),
    "link_count": ("OTEL_SPAN_LINK_COUNT_LIMIT",),
    "event_attribute_count": ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"),
    "link_attribute_count": ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"),
}
# Every NEXS_*/OTEL_* variable the package reads, by name: tests/test_config12x.py holds it to the
# source and to README's configuration table. Any name under a prefix the package uses
# (OTEL_EXPORTER_OTLP_, NEXS_EXPORT_) used to pass, so a misspelt OTLP endpoint got no warning.
_OTLP_SETTINGS = (
    "ENDPOINT HEADERS TIMEOUT COMPRESSION CERTIFICATE CLIENT_CERTIFICATE CLIENT_KEY PROTOCOL INSECURE"
)
_KNOWN = frozenset(
    """
    OTEL_SDK_DISABLED NEXS_DISABLED OTEL_SERVICE_NAME OTEL_RESOURCE_ATTRIBUTES OTEL_TRACES_EXPORTER
    OTEL_TRACES_SAMPLER OTEL_TRACES_SAMPLER_ARG OTEL_PROPAGATORS
    OTEL_ATTRIBUTE_COUNT_LIMIT OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT
    OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT OTEL_SPAN_EVENT_COUNT_LIMIT OTEL_SPAN_LINK_COUNT_LIMIT
    OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT OTEL_LINK_ATTRIBUTE_COUNT_LIMIT
    OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS OTEL_PYTHON_DISABLED_INSTRUMENTATIONS
    NEXS_SPAN_POOL_SIZE NEXS_MAX_BUFFERED_SPANS NEXS_FLUSH_TIMEOUT_MS NEXS_FLUSH_SAFETY_MARGIN_MS
    NEXS_FLUSH_MODE NEXS_TIMEOUT_GUARD_MS NEXS_PROACTIVE_INIT_MS NEXS_CAPTURE_EVENT
    NEXS_CAPTURE_RESPONSE NEXS_CAPTURE_MAX_LENGTH NEXS_PLATFORM NEXS_CONTEXT_PRECEDENCE NEXS_SQS_MODE
    NEXS_PAYLOAD_INJECTION NEXS_STATS_LOG_EVERY NEXS_ORIGINAL_HANDLER
    NEXS_EXPORT_BREAKER_FAILURES NEXS_EXPORT_BREAKER_COOLDOWN_MS NEXS_EXPORT_MAX_RETRIES
    NEXS_EXPORT_BACKOFF_MS NEXS_EXPORT_BACKOFF_MAX_MS NEXS_EXPORT_CARRYOVER_SPANS
    NEXS_EXPORT_MAX_BATCH_SPANS NEXS_OTLP_MAX_REQUEST_BYTES
    NEXS_XRAY_MODE NEXS_XRAY_TRANSPORT NEXS_XRAY_ANNOTATION_KEYS NEXS_XRAY_TIMEOUT_MS NEXS_XRAY_ENDPOINT
    OTEL_EXPORTER_GCP_TRACE_PROJECT_ID NEXS_GCP_TRACE_ENDPOINT NEXS_GCP_TRACE_INSECURE
    NEXS_GCP_TRACE_TIMEOUT_MS NEXS_AZURE_OFFLINE_STORAGE NEXS_AZURE_STORAGE_DIRECTORY
    NEXS_AZURE_TIMEOUT_MS NEXS_FILE_PATH NEXS_FILE_MAX_BYTES NEXS_FILE_BACKUPS
    NEXS_TAIL_SAMPLING_RULES NEXS_TAIL_SAMPLING_FILE NEXS_REDACTION_ENABLED NEXS_REDACTION_DETECTORS
    NEXS_REDACTION_KEYS NEXS_REDACTION_HASH_KEY NEXS_TENANT_ID_FROM NEXS_TENANT_DEFAULT
    NEXS_TENANT_EXPORTERS NEXS_TENANT_COPY_TO_DEFAULT
    """.split()  # noqa: SIM905 - a few names a line, by area; a literal would take one line each
) | {f"OTEL_EXPORTER_OTLP_{signal}{name}" for signal in ("", "TRACES_") for name in _OTLP_SETTINGS.split()}


class Report:
    """The outcome of a check: effective values, errors and warnings."""

    __slots__ = ("errors", "parts", "settings", "variables", "warnings")

    def __init__(self) -> None:
        self.settings: list[tuple[str, str, str]] = []  # (setting, value, where it came from)
        self.parts: list[tuple[str, str]] = []  # (part, what was built)
        self.variables: list[tuple[str, str]] = []  # NEXS_*/OTEL_* variables set
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data (``config check --json``)."""
        return {
            "settings": {name: {"value": value, "source": source} for name, value, source in self.settings},
            "parts": dict(self.parts),
            "variables": dict(self.variables),
            "errors": self.errors,
            "warnings": self.warnings,
        }


class _Collector(logging.Handler):
    """Keeps the records the package logs while the runtime is built."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def known_variables() -> frozenset[str]:
    """Every ``NEXS_*``/``OTEL_*`` variable some part of the package reads."""
    return _KNOWN


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "(unset)"
    if isinstance(value, (tuple, list)):
        return ",".join(str(item) for item in value) or "(none)"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return str(value)


def _source(sources: tuple[str, ...], environ: Mapping[str, str], invalid: set[str], value: object) -> str:
    """Where `value` came from: the first valid variable set (after invalid ones), else the default.

    An invalid comma list still gives its valid items (``otlp,jaegr`` exports to otlp), so its
    variable, not the default, is the source of what they make up.
    """
    found = [variable for variable in sources if environ.get(variable, "").strip()]
    for index, variable in enumerate(found):
        if variable not in invalid:  # a bad specific limit falls back to the general one
            return f"from {variable}" + (f" ({', '.join(found[:index])} invalid)" if index else "")
    if not found:
        return "default" if sources else ""
    items = {item.strip().lower() for variable in found for item in environ[variable].split(",")}
    if (isinstance(value, dict) and value) or (isinstance(value, tuple) and value and set(value) <= items):
        return f"from {', '.join(found)} (its invalid items dropped)"
    return f"default ({', '.join(found)} invalid)"


def _settings_rows(settings: config.Settings, environ: Mapping[str, str]) -> Iterator[tuple[str, str, str]]:
    invalid = {problem.variable for problem in config.load(environ)[1]}
    for name in settings.__slots__:
        if name == "environ":
            continue
        value = getattr(settings, name)
        if name == "limits":
            for field in getattr(value, "__slots__", ()):
                limit = getattr(value, field)
                source = _source(_LIMIT_SOURCES.get(field, ()), environ, invalid, limit)
                yield f"limits.{field}", _show(limit), source
            continue
        yield name, _show(value), _source(_SOURCES.get(name, ()), environ, invalid, value)


def _describe(part: object) -> str:
    """A built object's class, following wrappers (breaker, retry) to what they wrap."""
    names = [type(part).__name__]
    for _ in range(4):
        inner = next(
            (
                getattr(part, attr)
                for attr in ("exporter", "inner", "_exporter", "_inner")
                if getattr(part, attr, None) is not None
            ),
            None,
        )
        if inner is None or inner is part:
            break
        part = inner
        names.append(type(part).__name__)
    return " -> ".join(names)


def _build(report: Report) -> None:
    """Build every part of the runtime as the first invocation would, recording what came out."""
    from ..platforms import detect

    rt = runtime.runtime
    detected = detect(rt.settings)
    rt.platform_module()
    report.parts.append(("platform", detected or f"none detected ({rt.platform} assumed)"))
    resource = runtime.build_resource_attributes(rt.settings)
    report.parts.append(("resource", _show({k: resource[k] for k in sorted(resource)})))
    sampler = rt.sampler
    description = getattr(sampler, "description", None) or type(sampler).__name__
    report.parts.append(("sampler", "parentbased_always_on" if sampler is None else str(description)))
    stages = rt.stages()
    report.parts.append(("stages", ", ".join(_describe(stage) for stage in stages) or "(none)"))
    exporters = rt.exporters()
    report.parts.append(("exporters", ", ".join(_describe(item) for item in exporters) or "(none)"))
    report.parts.append(("attribute check", _attribute_check()))


def _attribute_check() -> str:
    """Whether spans check their attributes with the compiled function here.

    An arm64 layer built on x86_64, or an install without a C compiler, runs the
    Python loop instead: the same spans, a little slower.
    """
    try:  # as `tracing` loads it (through sys.modules, not the package's attribute)
        speedups = importlib.import_module("nexs_serverless._speedups")
    except (ImportError, OSError):
        return "pure Python (nexs_serverless/_speedups is not built for this interpreter)"
    return f"compiled ({speedups.__file__})"


def _dry_run(report: Report, environ: Mapping[str, str]) -> None:
    """One invocation of an empty handler, as the first invocation would run, exporting nowhere.

    Parts that read their settings per invocation (propagation options,
    trigger modes, instrumentation) report their problems here; the spans go
    to an in-memory exporter, so nothing leaves the machine.
    """
    from ..exporters.memory import InMemoryExporter
    from ..handler import process, traced_handler
    from ..testing.context import LambdaContext

    memory = InMemoryExporter()
    runtime.configure(environ=environ, exporters=[memory])
    process.reset()
    traced_handler(lambda event, context: None)({}, LambdaContext(function_name="config-check"))
    spans = memory.get_finished_spans()
    report.parts.append(("invocation", f"{len(spans)} span(s) recorded by a dry run" if spans else "no span"))


def _classify(report: Report, records: list[logging.LogRecord]) -> None:
    for record in records:
        if record.levelno < logging.WARNING:
            continue
        message = record.getMessage().removeprefix("nexs_serverless: ")
        problem = record.args[0] if isinstance(record.args, tuple) and record.args else None
        target = report.errors if isinstance(problem, config.Problem) or record.exc_info else report.warnings
        if message not in target:  # several parts may read the same variable
            target.append(message)


def check(environ: Mapping[str, str]) -> Report:
    """Check `environ` as a cold start would read it; configures the process's runtime from it."""
    report = Report()
    logger = logging.getLogger("nexs_serverless")
    collector = _Collector()
    previous = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    _guard.forget()
    try:
        runtime.configure(environ=environ, exporters=None)
        try:
            _build(report)
            _dry_run(report, environ)
        except Exception as exc:  # a part that cannot even be built is an error, not a crash
            report.errors.append(f"building the runtime failed: {type(exc).__name__}: {exc}")
        finally:
            runtime.configure(environ=environ, exporters=None)
    finally:
        logger.removeHandler(collector)
        logger.propagate = previous
    settings = runtime.runtime.settings
    report.settings.extend(_settings_rows(settings, environ))
    _classify(report, collector.records)
    for variable in sorted(environ):
        if not variable.startswith(("NEXS_", "OTEL_")):
            continue
        report.variables.append((variable, _shown(variable, environ[variable])))
        if variable not in _KNOWN:
            report.warnings.append(f"{variable} is not read by nexs_serverless (a typo, or another tool's?)")
    if settings.disabled:
        report.warnings.append("tracing is disabled (OTEL_SDK_DISABLED or NEXS_DISABLED): no spans at all")
    elif set(settings.exporters) <= {"none"}:
        report.warnings.append("OTEL_TRACES_EXPORTER=none: spans are recorded but never exported")
    if settings.sampler == "always_off":
        report.warnings.append("OTEL_TRACES_SAMPLER=always_off: no trace is sampled")
    return report


# Variables whose values are credentials (API keys in headers, the redaction hash key) or may hold
# some (tenant exporter settings): a report printed in a CI log must not show them.
_SECRET_VALUES = ("_HEADERS", "_CLIENT_KEY", "NEXS_REDACTION_HASH_KEY", "NEXS_TENANT_EXPORTERS")


def _shown(variable: str, value: str) -> str:
    """`value` as the report shows it: masked for a variable that holds credentials."""
    from ..redaction_keys import is_secret_key

    if variable.endswith(_SECRET_VALUES) or is_secret_key(variable):
        return f"<{len(value)} characters, not shown>"
    return value


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def render(report: Report, *, color: bool = False) -> str:
    """The report as text: settings, built parts, variables, then errors and warnings."""
    lines = [_paint("settings", "1", color)]
    width = max((len(name) for name, _, _ in report.settings), default=0)
    value_width = min(40, max((len(value) for _, value, _ in report.settings), default=0))
    for name, value, source in report.settings:
        lines.append(f"  {name:<{width}}  {value:<{value_width}}  {_paint(source, '2', color)}".rstrip())
    lines.append("")
    lines.append(_paint("built from them", "1", color))
    part_width = max((len(name) for name, _ in report.parts), default=0)
    lines.extend(f"  {name:<{part_width}}  {value}" for name, value in report.parts)
    lines.append("")
    lines.append(_paint("variables set", "1", color))
    lines.extend(f"  {name}={value}" for name, value in report.variables)
    if not report.variables:
        lines.append("  (no NEXS_* or OTEL_* variable: every setting is its default)")
    lines.append("")
    lines.append(_paint(f"errors ({len(report.errors)})", "1;31" if report.errors else "1", color))
    lines.extend(_paint(f"  ✗ {error}", "31", color) for error in report.errors)
    lines.append(_paint(f"warnings ({len(report.warnings)})", "1;33" if report.warnings else "1", color))
    lines.extend(_paint(f"  ! {warning}", "33", color) for warning in report.warnings)
    return "\n".join(lines) + "\n"
