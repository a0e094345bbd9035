"""Configuration from the environment, read as a demanding user writes it: lists with a typo, a stray
comma, credentials in a bad value, a huge number, a blank name, and code that names the service."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest

from nexs_serverless import ConfigError, configure, flush, traced_handler, tracer
from nexs_serverless.config import Problem, load
from nexs_serverless.testing import LambdaContext

if TYPE_CHECKING:
    from pathlib import Path

    from support.otlp_receiver import OTLPReceiver


def _lines(caplog: pytest.LogCaptureFixture, variable: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if variable in record.getMessage()]


@pytest.mark.parametrize(
    ("variable", "value", "field", "kept"),
    [
        ("OTEL_TRACES_EXPORTER", "otlp, JAEGER", "exporters", ("otlp",)),
        ("OTEL_PROPAGATORS", "tracecontext,jaeger", "propagators", ("tracecontext",)),
    ],
)
def test_a_typo_in_a_comma_list_drops_that_item_only(
    variable: str, value: str, field: str, kept: tuple[str, ...]
) -> None:
    """An unknown item is named and dropped; the known ones stay (the whole list fell back to the default)."""
    settings, problems = load({variable: value})
    assert getattr(settings, field) == kept
    (problem,) = problems
    assert (problem.variable, problem.value, problem.fallback) == (variable, value, kept)


def test_a_repeated_exporter_sends_each_span_once(tmp_path: Path) -> None:
    """``OTEL_TRACES_EXPORTER=file,file`` builds one exporter: two wrote every span twice."""
    path = tmp_path / "spans.jsonl"
    configure(environ={"OTEL_TRACES_EXPORTER": "file,FILE", "NEXS_FILE_PATH": str(path)})
    with tracer.span("once"):
        pass
    flush()
    names = [json.loads(line)["name"] for line in path.read_text().splitlines()]
    assert names == ["once"]


def test_a_stray_item_in_resource_attributes_keeps_the_other_pairs() -> None:
    """``a=1,oops,b=2`` keeps ``a`` and ``b`` (as OpenTelemetry's SDK does) and names the variable once."""
    settings, problems = load({"OTEL_RESOURCE_ATTRIBUTES": "a=1,oops,b=x%20y"})
    assert settings.resource_attributes == {"a": "1", "b": "x y"}
    (problem,) = problems
    assert problem.variable == "OTEL_RESOURCE_ATTRIBUTES"
    assert "using 'the pairs a, b'" in str(problem)


def test_a_stray_item_in_otlp_headers_keeps_the_api_key_and_never_logs_it(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """The API key still goes out (one stray comma used to drop every header), and the warning names
    the header but never shows its value."""
    environ = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cr3t-k3y,Bearer t0k3n",
    }
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        configure(environ=environ)
        with tracer.span("sent"):
            pass
        flush()
    (request,) = receiver.requests
    assert request.headers["api-key"] == "s3cr3t-k3y"
    (line,) = _lines(caplog, "OTEL_EXPORTER_OTLP_HEADERS")
    assert "api-key=<hidden>" in line
    assert "s3cr3t" not in line
    assert "t0k3n" not in line


@pytest.mark.parametrize(
    ("variable", "value", "secret", "shown"),
    [
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-key=abc\r\nX-Injected: 1", "abc", "x-key=<hidden>"),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "-----BEGIN PRIVATE KEY-----MIIE",
            "MIIE",
            "<31 characters, not shown>",
        ),
    ],
)
def test_a_problem_with_a_credential_variable_never_shows_the_value(
    variable: str, value: str, secret: str, shown: str
) -> None:
    """Any module's problem line for a credential variable shows header names at most, never a value."""
    line = str(Problem(variable, value, "something else", "the default"))
    assert f"invalid {variable}='{shown}'" in line
    assert secret not in line


def test_a_bad_specific_limit_falls_back_to_the_general_one() -> None:
    """A bad ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` counts as unset: ``OTEL_ATTRIBUTE_COUNT_LIMIT`` applies."""
    settings, problems = load({"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "5s", "OTEL_ATTRIBUTE_COUNT_LIMIT": "7"})
    assert settings.limits.attribute_count == 7
    assert [str(problem) for problem in problems] == [
        "invalid OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT='5s' (expected an integer >= 0); using 7"
    ]


@pytest.mark.parametrize(
    ("variable", "minimum"), [("NEXS_EXPORT_BACKOFF_MS", 0), ("OTEL_EXPORTER_OTLP_TIMEOUT", 1)]
)
def test_a_huge_number_is_named_and_the_exporter_still_sends(
    variable: str, minimum: int, receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A 400-digit duration is one clipped problem line and a fallback; it raised OverflowError while the
    exporter was built, so no span was ever sent."""
    environ = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
        variable: "1" + "0" * 400,
    }
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        configure(environ=environ)
        with tracer.span("sent"):
            pass
        flush()
    assert receiver.span_names() == ["sent"]
    (line,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert line.startswith(f"nexs_serverless: invalid {variable}='1000")
    assert f"(expected an integer from {minimum} to 3600000)" in line
    assert len(line) < 400


def test_a_long_bad_value_is_clipped_in_its_line() -> None:
    """An 8 KB typo is shown by its start and its length, not as a page of log."""
    _, (problem,) = load({"OTEL_TRACES_SAMPLER": "x" * 8000})
    line = str(problem)
    assert "... (8000 characters)" in line
    assert len(line) < 500


def test_a_blank_service_name_counts_as_unset_and_one_is_stripped() -> None:
    """``OTEL_SERVICE_NAME`` of spaces falls back to the function name; spaces around a name go."""
    from nexs_serverless.runtime import build_resource_attributes

    lambda_env = {"AWS_LAMBDA_FUNCTION_NAME": "orders"}
    settings, _ = load({**lambda_env, "OTEL_SERVICE_NAME": "   "})
    assert build_resource_attributes(settings)["service.name"] == "orders"
    settings, _ = load({**lambda_env, "OTEL_SERVICE_NAME": " checkout "})
    assert build_resource_attributes(settings)["service.name"] == "checkout"


def test_a_service_name_among_resource_attributes_in_code_beats_the_environment() -> None:
    """Code wins: ``configure(resource_attributes={"service.name": ...})`` over ``OTEL_SERVICE_NAME``."""
    from nexs_serverless.span import state

    configure(resource_attributes={"service.name": "from-code"}, environ={"OTEL_SERVICE_NAME": "from-env"})
    assert state.resource.attributes["service.name"] == "from-code"
    configure(
        service_name="named",
        resource_attributes={"service.name": "from-code"},
        environ={"OTEL_SERVICE_NAME": "from-env"},
    )
    assert state.resource.attributes["service.name"] == "named"


def test_a_blank_service_name_in_code_is_a_config_error() -> None:
    """``configure(service_name="  ")`` is a bug to fix at once, like an empty one."""
    with pytest.raises(ConfigError):
        configure(service_name="  ")


def test_each_bad_platform_value_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A reconfiguration with another bad ``NEXS_PLATFORM`` gets its own line; the same value stays quiet."""

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        for value in ("lambda", "lambda", "cloud-functions"):
            configure(environ={"NEXS_PLATFORM": value, "OTEL_TRACES_EXPORTER": "none"})
            assert handler({}, LambdaContext()) == "ok"
    lines = _lines(caplog, "NEXS_PLATFORM")
    assert [line.split("'")[1] for line in lines] == ["lambda", "cloud-functions"]
