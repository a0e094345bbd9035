"""The click commands of ``nexs-serverless``; the work is done in the sibling modules.

    nexs-serverless invoke examples/hello --event api-gateway-v1 --times 3
    nexs-serverless events list
    nexs-serverless events show sqs
    nexs-serverless config check
    nexs-serverless layer build --python 3.12 --arch arm64 --extras grpc
    nexs-serverless bench -- --quick

Exit status: 0 on success; 1 when the handler raised, the configuration has
errors, or a command could not do its work (a layer that cannot be built, a
missing benchmark script); 2 for a usage error click reports (a bad option or
argument, a missing handler or event).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import sys
import traceback

import click

from .. import config
from ..runtime import VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .invoke import Invocation

__all__ = ["cli"]


def _color(option: bool | None) -> bool:
    """The --color/--no-color choice, else colour when stdout is a terminal."""
    if option is not None:
        return option
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="nexs-serverless")
def cli() -> None:
    """Tracing for serverless functions: run handlers locally, check configuration, build the layer."""


# -- invoke -------------------------------------------------------------------------


def _env_pairs(values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--env")
        pairs[key] = value
    return pairs


def _result_text(result: object) -> str:
    """JSON when it is; an HTTP response object (Flask, Azure) as its status and body; else repr."""
    try:
        return json.dumps(result, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        pass
    status = getattr(result, "status_code", None)
    read = getattr(result, "get_body", None) or getattr(result, "get_data", None)
    if isinstance(status, int) and callable(read):
        body = read()
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return f"HTTP {status} {text}"
    return repr(result)


def _echo_invocation(
    invocation: Invocation, total: int, width: int, color: bool, details: bool, timeout_ms: int
) -> None:
    from ..exporters.console import format_trees
    from .waterfall import render

    echo = functools.partial(click.echo, color=color)  # colour kept when asked for, even piped
    marks = ["cold start"] if invocation.cold else []
    if invocation.error is not None:
        marks.append("raised " + type(invocation.error).__name__)
    header = f"invocation {invocation.index + 1}/{total}"
    if invocation.request_id:  # Google's HTTP functions get one only in a header the caller may not send
        header += f" · request {invocation.request_id}"
    header += "".join(f" · {mark}" for mark in marks) + f" · {invocation.duration_ms:.2f} ms"
    echo(click.style(f"── {header} ──", bold=True) if color else f"── {header} ──")
    echo(render(invocation.spans, width=width, color=color), nl=False)
    if details and invocation.spans:
        echo(format_trees(invocation.spans, verbose=True, color=color), nl=False)
    if invocation.error is not None:
        error = invocation.error  # its first frame is this CLI's call: leave it out
        tb = error.__traceback__.tb_next if error.__traceback__ is not None else None
        text = "".join(traceback.format_exception(type(error), error, tb)).rstrip()
        echo(click.style(text, fg="red") if color else text)
    else:
        echo("result: " + _result_text(invocation.result))
    if invocation.duration_ms > timeout_ms:  # a local run is not stopped at the deadline; Lambda's would be
        late = (
            f"warning: ran {invocation.duration_ms:.0f} ms, past --timeout-ms {timeout_ms}:"
            " Lambda would have stopped it"
        )
        echo(click.style(late, fg="yellow") if color else late)


def _summary(invocations: list[Invocation], init_ms: float) -> str:
    cold = [inv.duration_ms for inv in invocations if inv.cold]
    warm = [inv.duration_ms for inv in invocations if not inv.cold]
    parts = [f"{len(invocations)} invocations", f"init {init_ms:.2f} ms"]
    if cold:
        parts.append(f"cold {cold[0]:.2f} ms")
    if warm:
        parts.append(
            f"warm median {statistics.median(warm):.2f} ms (min {min(warm):.2f}, max {max(warm):.2f})"
        )
    failed = sum(inv.error is not None for inv in invocations)
    if failed:
        parts.append(f"{failed} raised")
    return "summary: " + " · ".join(parts)


@cli.command()
@click.argument("handler")
@click.option(
    "-e",
    "--event",
    "event_spec",
    metavar="NAME|FILE",
    help="A sample event (see `events list`) or a JSON file; default {}.",
)
@click.option(
    "-n",
    "--times",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Invocations; the first is a cold start.",
)
@click.option(
    "-x",
    "--exporter",
    "exporters",
    multiple=True,
    type=click.Choice([name for name in config.EXPORTER_NAMES if name != "none"]),
    help="Also send the spans to this OTEL_TRACES_EXPORTER back end (repeatable).",
)
@click.option(
    "--platform",
    type=click.Choice(["aws", "gcp", "azure"]),
    help="Platform to simulate (default: from the event's name, else aws).",
)
@click.option("--function-name", help="Function name in the environment and context (default: from HANDLER).")
@click.option("--region", default="us-east-1", show_default=True)
@click.option(
    "--memory",
    "memory_mb",
    type=click.IntRange(min=128, max=10240),
    default=128,
    show_default=True,
    help="Memory size, MB.",
)
@click.option(
    "--timeout-ms",
    type=click.IntRange(min=1),
    default=3000,
    show_default=True,
    help="Each invocation's deadline.",
)
@click.option(
    "-E",
    "--env",
    "env",
    multiple=True,
    metavar="KEY=VALUE",
    help="Environment variable for the function (repeatable).",
)
@click.option("--details", is_flag=True, help="Also print every span's attributes.")
@click.option("--color/--no-color", default=None, help="ANSI colours (default: when stdout is a terminal).")
@click.option(
    "--width", type=click.IntRange(min=40), default=None, help="Output width (default: the terminal's)."
)
def invoke(
    handler: str,
    event_spec: str | None,
    times: int,
    exporters: tuple[str, ...],
    platform: str | None,
    function_name: str | None,
    region: str,
    memory_mb: int,
    timeout_ms: int,
    env: tuple[str, ...],
    details: bool,
    color: bool | None,
    width: int | None,
) -> None:
    """Run HANDLER locally with a realistic context and event, and draw its trace.

    HANDLER is path/to/file.py[:function], a folder holding handler.py, or
    module:function (the function defaults to `handler`). Exits 1 when an
    invocation raised or ran past --timeout-ms (Lambda would have failed it).
    """
    from .invoke import InvokeError, load_event, run

    use_color = _color(color)
    columns = width or shutil.get_terminal_size((100, 24)).columns
    try:
        implied, event = load_event(event_spec)
        invocations, init_ms = run(
            handler,
            event,
            platform=platform or implied or "aws",
            times=times,
            function_name=function_name,
            region=region,
            memory_mb=memory_mb,
            timeout_ms=timeout_ms,
            environ=_env_pairs(env),
            exporters=exporters,
            # printed as they happen, so that what the handler prints stays next to its invocation
            on_init=lambda ms: click.echo(f"init: handler module loaded in {ms:.2f} ms"),
            on_invocation=lambda done: _echo_invocation(done, times, columns, use_color, details, timeout_ms),
        )
    except InvokeError as exc:
        raise click.UsageError(str(exc)) from exc
    if len(invocations) > 1:
        click.echo(_summary(invocations, init_ms))
    # Lambda fails an invocation that runs past its timeout: a local run is not stopped, but
    # exits 1 as a failed one does, so a script or CI step relying on the status notices.
    if any(inv.error is not None or inv.duration_ms > timeout_ms for inv in invocations):
        sys.exit(1)


# -- events -------------------------------------------------------------------------


@cli.group()
def events() -> None:
    """The sample events (nexs_serverless/events/) that `invoke --event` and the testing kit use."""


@events.command("list")
def events_list() -> None:
    """List the sample events with the trigger each one stands for."""
    from ..testing._fixtures import load, names

    samples = names()
    width = max((len(name) for name in samples), default=0)
    for name in samples:
        click.echo(f"{name:<{width}}  {_summarise(load(name))}")


def _summarise(event: dict[str, object]) -> str:
    """One line saying what the event is (first matching field)."""
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        source = first.get("eventSource") or first.get("EventSource") or "records"
        return f"{source} · {len(records)} record(s)"
    if "specversion" in event:
        return f"CloudEvent {event.get('type')}"
    if "detail-type" in event:
        return f"EventBridge {event.get('source')} {event.get('detail-type')}"
    context = event.get("requestContext")
    if isinstance(context, dict):
        http = context.get("http")
        if isinstance(http, dict):
            return f"HTTP {http.get('method')} {http.get('path')} (payload 2.0)"
        return f"HTTP {event.get('httpMethod')} {event.get('path')}"
    if "method" in event:
        return f"HTTP {event.get('method')} {event.get('path') or event.get('url')}"
    for field, kind in (
        ("pop_receipt", "Azure Storage queue message"),
        ("message_id", "Azure Service Bus message"),
        ("partition_key", "Azure Event Hubs event"),
        ("StateMachine", "Step Functions state"),
    ):
        if field in event:
            return kind
    return "event"


@events.command("show")
@click.argument("name")
def events_show(name: str) -> None:
    """Print sample event NAME as JSON (pipe it to a file to edit it)."""
    from ..testing._fixtures import source

    try:
        click.echo(source(name), nl=False)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from exc


# -- config -------------------------------------------------------------------------


@cli.group(name="config")
def config_group() -> None:
    """The layer's configuration."""


@config_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--color/--no-color", default=None, help="ANSI colours (default: when stdout is a terminal).")
def config_check(as_json: bool, color: bool | None) -> None:
    """Read the environment as the layer would; print the effective configuration and every problem.

    Exits 1 when there is an error (an invalid value, a back end that cannot be built).
    """
    from .config_check import check, render

    report = check(dict(os.environ))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        use_color = _color(color)
        click.echo(render(report, color=use_color), nl=False, color=use_color)
    if report.errors:
        sys.exit(1)


# -- layer and bench ----------------------------------------------------------------


@cli.group()
def layer() -> None:
    """The Lambda layer."""


@layer.command("build")
@click.option("--python", "python_version", help="Target runtime, 3.10 to 3.13 (default: the script's).")
@click.option("--arch", type=click.Choice(["x86_64", "arm64"]), help="Target architecture.")
@click.option("--extras", help="Comma list of back ends to bundle (grpc, gcp, azure, otel).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: dist/).")
@click.option("--precompile/--no-precompile", default=None, help="Ship bytecode for the target Python.")
def layer_build(
    python_version: str | None,
    arch: str | None,
    extras: str | None,
    out_dir: str | None,
    precompile: bool | None,
) -> None:
    """Build the layer zip (scripts/build_layer.py) and print its path and size."""
    from pathlib import Path

    from .scripts import ScriptError, build_layer

    try:
        path = build_layer(
            python_version=python_version,
            arch=arch,
            extras=None if extras is None else tuple(x.strip() for x in extras.split(",") if x.strip()),
            out_dir=None if out_dir is None else Path(out_dir),
            precompile=precompile,
        )
    except ScriptError as exc:
        raise click.ClickException(str(exc)) from exc
    size = path.stat().st_size
    click.echo(f"{path}  {size:,d} bytes ({size / 1024 / 1024:.2f} MiB)")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Run the benchmark suite (scripts/bench.py); ARGS are passed to it.

    All but --help, which shows this text: `bench -- --help` shows the suite's own options.
    """
    from .scripts import ScriptError, run_bench

    try:
        status = run_bench(args)
    except ScriptError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(status)
