"""Configuration: precedence, bad values named and replaced by defaults, errors in code."""

from __future__ import annotations

import logging

import pytest

from nexs_serverless import ConfigError, configure, flush, traced_handler, tracer
from nexs_serverless.config import load
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import LambdaContext


def test_defaults_without_environment() -> None:
    """With no variables set, every setting has its documented default."""
    settings, problems = load({})
    assert problems == []
    assert settings.exporters == ("console",)
    assert settings.sampler == "parentbased_always_on"
    assert settings.propagators == ("tracecontext", "baggage", "xray")
    assert settings.pool_size == 32
    assert settings.flush_timeout_ms == 1000
    assert settings.limits.attribute_count == 128
    assert settings.limits.attribute_value_length is None
    assert not settings.disabled


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NEXS_FLUSH_TIMEOUT_MS", "soon", "an integer from 1 to 3600000"),
        ("NEXS_FLUSH_TIMEOUT_MS", "10000000000000", "an integer from 1 to 3600000"),
        ("NEXS_SPAN_POOL_SIZE", "-3", "an integer >= 0"),
        ("OTEL_SDK_DISABLED", "maybe", "true or false"),
        ("OTEL_TRACES_SAMPLER", "sometimes", "one of always_on"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5", "a number from 0.0 to 1.0"),
        ("OTEL_TRACES_EXPORTER", "carrier-pigeon", "a comma list of console"),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue", "comma-separated key=value pairs"),
    ],
)
def test_bad_environment_value_is_named_and_falls_back(variable: str, value: str, expected: str) -> None:
    """A bad value yields one problem naming the variable, the value and what is accepted."""
    settings, problems = load({variable: value})
    (problem,) = problems
    assert problem.variable == variable
    assert problem.value == value
    assert expected in str(problem)
    defaults, _ = load({})
    field = {
        "NEXS_FLUSH_TIMEOUT_MS": "flush_timeout_ms",
        "NEXS_SPAN_POOL_SIZE": "pool_size",
        "OTEL_SDK_DISABLED": "disabled",
        "OTEL_TRACES_SAMPLER": "sampler",
        "OTEL_TRACES_SAMPLER_ARG": "sampler_arg",
        "OTEL_TRACES_EXPORTER": "exporters",
        "OTEL_RESOURCE_ATTRIBUTES": "resource_attributes",
    }[variable]
    assert getattr(settings, field) == getattr(defaults, field)


def test_both_switches_are_read_when_one_already_disables() -> None:
    """A bad ``NEXS_DISABLED`` is reported even when ``OTEL_SDK_DISABLED=true`` already disables."""
    settings, problems = load({"OTEL_SDK_DISABLED": "true", "NEXS_DISABLED": "bogus"})
    assert settings.disabled
    assert [problem.variable for problem in problems] == ["NEXS_DISABLED"]
    settings, problems = load({"OTEL_SDK_DISABLED": "false", "NEXS_DISABLED": "on"})
    assert settings.disabled
    assert problems == []


def test_flush_budget_past_what_a_lock_can_wait_is_bounded(exporter: InMemoryExporter) -> None:
    """`flush` with a budget past `threading.TIMEOUT_MAX` still exports (it used to raise OverflowError)."""
    configure(exporters=[exporter])
    with tracer.span("one"):
        pass
    assert flush(1e20) == 1
    assert [span.name for span in exporter.get_finished_spans()] == ["one"]


def test_bad_environment_is_logged_and_the_handler_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    """configure() from a bad environment logs one line per problem; invocations work."""
    memory = InMemoryExporter()
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        configure(exporters=[memory], environ={"NEXS_FLUSH_TIMEOUT_MS": "soon"})
    (record,) = [r for r in caplog.records if "NEXS_FLUSH_TIMEOUT_MS" in r.getMessage()]
    assert (
        "invalid NEXS_FLUSH_TIMEOUT_MS='soon' (expected an integer from 1 to 3600000); using 1000"
        in record.getMessage()
    )

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    assert handler({}, LambdaContext()) == "ok"
    assert len(memory.get_finished_spans()) == 1


def test_code_beats_environment_beats_default() -> None:
    """An argument to configure() wins over the variable, which wins over the default."""
    configure(environ={"OTEL_SERVICE_NAME": "from-env", "NEXS_FLUSH_TIMEOUT_MS": "300"})
    assert runtime.settings.service_name == "from-env"
    assert runtime.settings.flush_timeout_ms == 300
    configure(service_name="from-code", environ={"OTEL_SERVICE_NAME": "from-env"})
    assert runtime.settings.service_name == "from-code"
    assert runtime.settings.flush_timeout_ms == 1000


def test_resource_attributes_merge_environment_and_code() -> None:
    """OTEL_RESOURCE_ATTRIBUTES are percent-decoded and merged with those given in code."""
    configure(
        resource_attributes={"team": "payments"},
        environ={"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,owner=a%20b"},
    )
    from nexs_serverless.span import state

    attrs = state.resource.attributes
    assert attrs["deployment.environment"] == "prod"
    assert attrs["owner"] == "a b"
    assert attrs["team"] == "payments"
    assert attrs["service.name"] == "unknown_service"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"flush_timeout_ms": 0},
        {"pool_size": -1},
        {"sampler": "sometimes"},
        {"sampler_arg": 2.0},
        {"capture_event": "yes"},
        {"service_name": ""},
        {"exporters": "console"},
        {"exporters": [object()]},
    ],
)
def test_bad_arguments_in_code_raise_config_error(kwargs: dict[str, object]) -> None:
    """Invalid configure() arguments raise ConfigError (a ValueError) at once."""
    with pytest.raises(ConfigError):
        configure(**kwargs)  # type: ignore[arg-type]
    assert issubclass(ConfigError, ValueError)


def test_environment_is_not_mutated() -> None:
    """Loading configuration reads the environment and never writes it."""
    import os

    before = dict(os.environ)
    configure(service_name="x")
    assert dict(os.environ) == before


@pytest.mark.parametrize(
    ("value", "disabled", "problem"),
    [
        ("botocore, HTTPX", {"botocore", "httpx"}, False),
        ("requests", {"urllib3"}, False),  # OpenTelemetry's name; our urllib3 instrumentation covers it
        ("boto3,logging", {"logging"}, True),
        ("flask", set(), True),
    ],
)
def test_disabled_instrumentations_are_read_and_unknown_names_are_named(
    value: str, disabled: set[str], problem: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS: known names disable, an unknown one gets a line."""
    from nexs_serverless.propagation.options import PropagationOptions

    settings = load({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": value})[0]
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        options = PropagationOptions(settings)
    assert options.disabled_instrumentations == disabled
    lines = [record.getMessage() for record in caplog.records]
    if problem:
        assert len(lines) == 1
        assert f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS={value!r}" in lines[0]
        assert "botocore, urllib3, httpx, logging, opentelemetry" in lines[0]
    else:
        assert lines == []


def test_the_environment_snapshot_is_what_os_environ_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-pass snapshot of the process environment equals ``dict(os.environ)``, also for values
    set after start, non-ASCII ones and bytes that are not UTF-8 (kept as surrogate escapes)."""
    import os

    from nexs_serverless.config import _environ_snapshot

    monkeypatch.setenv("NEXS_TEST_SNAPSHOT", "größe ✓")
    monkeypatch.setitem(os.environ, "NEXS_TEST_SURROGATE", b"\xff\xfe".decode("utf-8", "surrogateescape"))
    snapshot = _environ_snapshot()
    assert snapshot == dict(os.environ)
    assert snapshot["NEXS_TEST_SNAPSHOT"] == "größe ✓"
    assert load()[0].environ == snapshot


def test_configure_reads_an_exporter_generator_once_and_refuses_odd_arguments() -> None:
    """A generator of exporters is kept (its items were used up by the check before); resource
    attributes, environ and durations are checked as the environment's are."""
    memory = InMemoryExporter()
    configure(exporters=(exporter for exporter in [memory]))
    assert runtime.exporters()[0].inner is memory  # type: ignore[attr-defined]
    for bad in (
        {"resource_attributes": {"k": object()}},
        {"resource_attributes": {1: "v"}},
        {"environ": {"OTEL_SERVICE_NAME": 1}},
        {"sampler_arg": True},
        {"flush_timeout_ms": 10**20},
        {"timeout_guard_ms": 10**20},
    ):
        with pytest.raises(ConfigError):
            configure(**bad)  # type: ignore[arg-type]
