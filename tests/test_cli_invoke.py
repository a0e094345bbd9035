"""``nexs-serverless invoke``: a handler run locally, its trace drawn, its result shown."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nexs_serverless.cli.app import cli
from nexs_serverless.cli.invoke import function_name_of, load_event, platform_environ, run

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "examples" / "hello"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

HANDLERS = """
import asyncio
import os

from nexs_serverless import tracer


def handler(event, context):
    with tracer.span("load-order"):
        with tracer.span("price"):
            pass
    return {"statusCode": 200, "body": "ok", "remaining_ms": context.get_remaining_time_in_millis()}


def failing(event, context):
    with tracer.span("charge"):
        raise ValueError("card declined")


def environment(event, context):
    keys = ("AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "SHOP_MODE")
    return {key: os.environ.get(key) for key in keys} | {"arn": context.invoked_function_arn}


def echo(event, context):
    return event


async def asynchronous(event, context):
    with tracer.span("await-db"):
        await asyncio.sleep(0)
    return "async ok"


def gcp_http(request):
    with tracer.span("parse"):
        body = request.get_json()
    return {"method": request.method, "body": body}


def gcp_event(cloud_event):
    return cloud_event["type"]


def azure_http(req):
    import azure.functions as func

    return func.HttpResponse("hello " + req.params.get("dryRun", ""), status_code=202)


def azure_with_context(req, context):
    return context.function_name
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A folder holding `shop.py` with handlers of every kind."""
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "shop.py").write_text(textwrap.dedent(HANDLERS))
    return folder / "shop.py"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_hello_example_draws_a_waterfall_and_the_result() -> None:
    """The hello example runs with a sample event: a cold-start waterfall, then the handler's result."""
    result = invoke("invoke", str(HELLO), "--event", "api-gateway-v1", "--no-color", "--width", "100")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("init: handler module loaded in ")
    assert re.match(r"── invocation 1/1 · request [0-9a-f-]{36} · cold start · \d+\.\d\d ms ──", lines[1])
    assert re.match(r"trace [0-9a-f]{32} · 3 spans · \d+\.\d\d ms", lines[2])
    root = next(line for line in lines if line.startswith("GET /orders/{id}"))
    assert root.endswith("| cold start")
    assert re.search(r"\|█+\|", root)  # the root spans the whole axis
    assert any(line.startswith("└── load-order") for line in lines)
    assert any(line.startswith("    └── price") for line in lines)
    assert json.loads(result.output.split("result: ", 1)[1])["statusCode"] == 200
    assert not ANSI.search(result.output)


def test_warm_invocations_and_summary(app: Path) -> None:
    """`--times 3`: only the first is a cold start, then a summary of the durations."""
    result = invoke("invoke", str(app), "-n", "3", "--no-color")
    assert result.exit_code == 0, result.output
    headers = [line for line in result.output.splitlines() if line.startswith("── invocation")]
    assert [("cold start" in header) for header in headers] == [True, False, False]
    assert re.search(
        r"summary: 3 invocations · init \d+\.\d\d ms · cold \d+\.\d\d ms · warm median", result.output
    )


def test_context_is_realistic(app: Path) -> None:
    """The handler sees the Lambda variables and a context with ARN and deadline."""
    result = invoke(
        "invoke", f"{app}:environment", "--region", "eu-west-1", "--memory", "512", "-E", "SHOP_MODE=test"
    )
    assert result.exit_code == 0, result.output
    seen = json.loads(result.output.split("result: ", 1)[1])
    assert seen == {
        "AWS_LAMBDA_FUNCTION_NAME": "shop",
        "AWS_REGION": "eu-west-1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "SHOP_MODE": "test",
        "arn": "arn:aws:lambda:eu-west-1:123456789012:function:shop",
    }


def test_environment_is_restored_afterwards(app: Path) -> None:
    """The variables set for the handler are gone once the command returns."""
    before = dict(os.environ)
    invoke("invoke", f"{app}:environment", "-E", "SHOP_MODE=test")
    assert dict(os.environ) == before


def test_deadline_comes_from_timeout(app: Path) -> None:
    """`--timeout-ms` sets the context's deadline."""
    result = invoke("invoke", str(app), "--timeout-ms", "900000")
    remaining = json.loads(result.output.split("result: ", 1)[1])["remaining_ms"]
    assert 800_000 < remaining <= 900_000


def test_failing_handler_is_marked_and_exits_1(app: Path) -> None:
    """An exception marks the spans ERROR, prints the user's traceback and exits 1."""
    result = invoke("invoke", f"{app}:failing", "--event", "sqs", "--no-color")
    assert result.exit_code == 1
    assert "raised ValueError" in result.output
    charge = next(line for line in result.output.splitlines() if "── charge" in line)
    assert charge.endswith("| ERROR ValueError: card declined")
    assert 'File "' + str(app) + '", line' in result.output
    assert "cli/invoke.py" not in result.output  # the CLI's own frame is left out


def test_event_from_file(app: Path, tmp_path: Path) -> None:
    """`--event FILE` passes that JSON to the handler."""
    event_file = tmp_path / "event.json"
    event_file.write_text('{"orderId": 42}')
    result = invoke("invoke", f"{app}:echo", "--event", str(event_file))
    assert json.loads(result.output.split("result: ", 1)[1]) == {"orderId": 42}


def test_module_function_handler(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`module:function` imports from the current directory."""
    monkeypatch.chdir(app.parent)
    monkeypatch.syspath_prepend(str(app.parent))
    result = invoke("invoke", "shop:echo", "--event", "eventbridge")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.split("result: ", 1)[1])["detail-type"] == "OrderPlaced"


def test_async_handler(app: Path) -> None:
    """An `async def` handler is awaited and its spans drawn."""
    result = invoke("invoke", f"{app}:asynchronous", "--no-color")
    assert result.exit_code == 0, result.output
    assert '"async ok"' in result.output
    assert any(line.startswith("└── await-db") for line in result.output.splitlines())


def test_gcp_http_handler_gets_a_flask_request(app: Path) -> None:
    """`--event gcp-http` calls the function with the Flask request functions-framework passes."""
    result = invoke("invoke", f"{app}:gcp_http", "--event", "gcp-http")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.split("result: ", 1)[1]) == {
        "method": "POST",
        "body": {"orderId": "42", "status": "placed"},
    }


def test_gcp_cloudevent_handler(app: Path) -> None:
    """`--event gcp-pubsub` calls the function with a CloudEvent."""
    result = invoke("invoke", f"{app}:gcp_event", "--event", "gcp-pubsub")
    assert 'result: "google.cloud.pubsub.topic.v1.messagePublished"' in result.output


def test_azure_handlers_get_request_and_optional_context(app: Path) -> None:
    """Azure functions get an HttpRequest, and the context only when they declare it."""
    result = invoke("invoke", f"{app}:azure_http", "--event", "azure-http")
    assert "result: HTTP 202 hello false" in result.output
    result = invoke(
        "invoke", f"{app}:azure_with_context", "--event", "azure-http", "--function-name", "orders"
    )
    assert 'result: "orders"' in result.output


def test_console_exporter_also_receives_the_spans(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--exporter console` sends the same spans to the console exporter (it prints to stdout)."""
    invocations, _ = run(str(app), {}, exporters=["console"])
    printed = capsys.readouterr().out
    assert "└── shop [SERVER]" in printed
    assert "└── load-order" in printed
    assert sorted(span.name for span in invocations[0].spans) == ["load-order", "price", "shop"]


def test_unknown_exporter_setting_is_reported(app: Path) -> None:
    """An exporter that cannot be built is a usage error naming it."""
    from nexs_serverless import exporters

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(exporters._FACTORIES, "file", ".not_installed:from_settings")
        result = invoke("invoke", str(app), "--exporter", "file")
    assert result.exit_code == 2
    assert "--exporter file: ModuleNotFoundError" in result.output


def test_details_prints_attributes(app: Path) -> None:
    """`--details` adds the verbose attribute tree."""
    result = invoke("invoke", str(app), "--event", "api-gateway-v2", "--details", "--no-color")
    assert "http.request.method=POST" in result.output


def test_color_only_when_asked(app: Path) -> None:
    """`--color` paints even when piped; the default does not when stdout is not a terminal."""
    assert ANSI.search(invoke("invoke", f"{app}:failing", "--color").output)
    assert not ANSI.search(invoke("invoke", f"{app}:failing").output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["does/not/exist.py"], "no file does/not/exist.py"),
        (["{app}:nothing"], "has no function 'nothing'"),
        (["{app}", "--event", "no-such-event"], "neither a sample event"),
        (["{app}", "-E", "NOEQUALS"], "expected KEY=VALUE"),
        (["a:b:c"], "expected module:function"),
    ],
)
def test_usage_errors_exit_2(app: Path, args: list[str], message: str) -> None:
    """Bad handlers, events and options are usage errors with a precise message."""
    result = invoke("invoke", *[arg.format(app=app) for arg in args])
    assert result.exit_code == 2
    assert message in result.output


def test_import_error_in_handler_module(tmp_path: Path) -> None:
    """A handler module that fails to import is reported, not a traceback."""
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('missing config')\n")
    result = invoke("invoke", str(broken))
    assert result.exit_code == 2
    assert "importing it failed: RuntimeError: missing config" in result.output


def test_function_name_and_event_platform_helpers(tmp_path: Path) -> None:
    """Names come from the handler's folder or file; gcp-/azure- samples select their platform."""
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "handler.py").write_text("")
    assert function_name_of(str(tmp_path / "orders")) == "orders"
    assert function_name_of(str(tmp_path / "orders" / "handler.py") + ":main") == "orders"
    assert function_name_of("pkg.billing:handler") == "billing"
    assert load_event("gcp-pubsub")[0] == "gcp"
    assert load_event("azure-http")[0] == "azure"
    assert load_event("sqs")[0] == "aws"
    assert load_event(None) == (None, {})
    assert platform_environ("gcp", "f", region="r", memory_mb=1, handler_dir="/")["K_SERVICE"] == "f"
    assert (
        platform_environ("azure", "f", region="r", memory_mb=1, handler_dir="/")["WEBSITE_SITE_NAME"] == "f"
    )


def test_real_console_script_on_hello_example() -> None:
    """The installed `nexs-serverless` script runs the hello example in a fresh process."""
    script = Path(sys.executable).with_name("nexs-serverless")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "NEXS_"))}
    done = subprocess.run(
        [str(script), "invoke", "examples/hello", "--event", "api-gateway-v1", "--times", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("── invocation") == 2
    assert "cold start" in done.stdout.split("── invocation 2/2")[0]
    assert "summary: 2 invocations" in done.stdout
    assert '"statusCode": 200' in done.stdout


def test_running_past_the_deadline_is_flagged(app: Path) -> None:
    """A run longer than `--timeout-ms` is flagged and fails the command: locally nothing stops it,
    Lambda would have, and reported the invocation failed."""
    slow = app.parent / "slow.py"
    slow.write_text(
        "import time\n"
        "def handler(event, context):\n"
        "    while context.get_remaining_time_in_millis() > 0:\n"
        "        time.sleep(0.005)\n"
    )
    result = invoke("invoke", str(slow), "--timeout-ms", "50", "--no-color", "-E", "NEXS_TIMEOUT_GUARD_MS=0")
    assert result.exit_code == 1, result.output
    assert "past --timeout-ms 50: Lambda would have stopped it" in result.output


def test_timeout_guard_marks_spans_force_ended(app: Path) -> None:
    """When the timeout guard fires, the waterfall marks the spans it ended."""
    guarded = app.parent / "guarded.py"
    guarded.write_text(
        "import time\n"
        "from nexs_serverless import tracer\n"
        "def handler(event, context):\n"
        "    with tracer.span('wait') as span:\n"
        "        for _ in range(400):  # until the guard ends the span (2 s at most)\n"
        "            if span.force_ended:\n"
        "                break\n"
        "            time.sleep(0.005)\n"
    )
    result = invoke(
        "invoke", str(guarded), "--timeout-ms", "1000", "--no-color", "-E", "NEXS_TIMEOUT_GUARD_MS=950"
    )
    assert result.exit_code == 0, result.output
    assert "force-ended (timeout guard)" in result.output
