"""The waterfall drawing of `nexs-serverless invoke`, on spans with fixed times."""

from __future__ import annotations

from nexs_serverless import StatusCode, tracer
from nexs_serverless.cli.waterfall import render
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.testing import capture_spans

T0 = 1_800_000_000_000_000_000
MS = 1_000_000


def trace(*, fail_child: bool = False, cold: bool = False) -> list[FinishedSpan]:
    """root 0-100 ms, child 25-75 ms, grandchild 50-60 ms, second child 80-100 ms."""
    with capture_spans() as recorder:
        root = tracer.span("root", start_ns=T0, attributes={"faas.coldstart": cold})
        child = tracer.span("child", start_ns=T0 + 25 * MS, parent=root)
        grandchild = tracer.span("grandchild", start_ns=T0 + 50 * MS, parent=child)
        grandchild.end(T0 + 60 * MS)
        if fail_child:
            child.set_status(StatusCode.ERROR, "TimeoutError: bank")
        child.end(T0 + 75 * MS)
        second = tracer.span("second", start_ns=T0 + 80 * MS, parent=root)
        second.end(T0 + 100 * MS)
        root.end(T0 + 100 * MS)
        return recorder.collect()


def test_bars_sit_on_the_time_axis() -> None:
    """Each bar starts and ends where the span does, in tree order."""
    spans = trace()
    # labels 18 wide ("│   └── grandchild"), durations 9 ("100.00 ms"): bar = 71 - 18 - 9 - 24 = 20 columns
    lines = render(spans, width=71).splitlines()
    assert lines[0] == f"trace {spans[0].trace_id:032x} · 4 spans · 100.00 ms"
    assert lines[1] == " " * 30 + "0 ms".ljust(20 - 9) + "100.00 ms"
    assert lines[2:] == [
        "root               100.00 ms |████████████████████|",
        "├── child           50.00 ms |     ██████████     |",
        "│   └── grandchild  10.00 ms |          ██        |",
        "└── second          20.00 ms |                ████|",
    ]


def test_errors_and_cold_start_are_marked() -> None:
    """A failed span says ERROR with its description; the cold-start root says so."""
    lines = render(trace(fail_child=True, cold=True), width=71).splitlines()
    assert lines[2].endswith("| cold start")
    assert lines[3].endswith("| ERROR TimeoutError: bank")
    assert "\x1b[" not in "\n".join(lines)


def test_color_only_when_asked() -> None:
    """ANSI colours appear with `color=True`: red for errors."""
    painted = render(trace(fail_child=True), width=71, color=True)
    assert "\x1b[31m" in painted
    assert "\x1b[32m" in painted


def test_narrow_terminals_keep_a_minimum_bar_and_cut_long_names() -> None:
    """Bars never get narrower than 16 columns; names beyond 44 characters are cut with an ellipsis."""
    with capture_spans() as recorder:
        long = tracer.span("x" * 60, start_ns=T0)
        long.end(T0 + MS)
        spans = recorder.collect()
    line = render(spans, width=20).splitlines()[2]
    assert line.startswith("x" * 43 + "… ")
    assert line.endswith("|" + "█" * 16 + "|")


def test_one_block_per_trace() -> None:
    """Spans of two traces are drawn as two blocks."""
    spans = trace() + trace()
    assert render(spans, width=71).count("trace ") == 2


def test_no_spans() -> None:
    """Nothing to draw says so."""
    assert render([]) == "(no spans)\n"
