"""Breaker, retries and carry-over against a flaky back end: ``python examples/error-handling/run.py``.

Starts a misbehaving OTLP/HTTP endpoint on 127.0.0.1, configures the layer
through the environment exactly as a Lambda function would be configured,
then invokes the handler once per step while the back end is healthy, fails
once, is down, hangs and throttles. Each line shows what the handler
returned, how long the invocation took and which counters of
``nexs_serverless.stats()`` moved; the end shows that every span arrived
once and every result was the handler's own. Exits 1 if not.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from flaky_backend import FlakyBackend

# What the back end does at each step, and how long to wait before it (cool-downs pass).
STEPS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("healthy", ("ok",), 0.0),
    ("503 once, then healthy", ("503", "ok"), 0.0),
    ("down: 503 to everything", ("503",), 0.0),
    ("down", ("503",), 0.0),
    ("down (3rd failed flush in a row)", ("503",), 0.0),
    ("down, breaker open", ("503",), 0.0),
    ("healthy again, cool-down over", ("ok",), 1.05),
    ("hangs: reads, never answers", ("hang",), 0.0),
    ("healthy", ("ok",), 0.0),
    ("429 with Retry-After: 1", ("429",), 0.0),
    ("healthy, Retry-After not over", ("ok",), 0.0),
    ("healthy, Retry-After over", ("ok",), 1.05),
)
WATCHED = (
    "export_spans_sent",
    "export_retries",
    "export_errors_server",
    "export_errors_timeout",
    "export_errors_throttled",
    "export_spans_carried_over",
    "export_spans_resent",
    "export_skipped_breaker_open",
    "export_deferred_retry_after",
    "breaker_opened",
    "breaker_half_opened",
    "breaker_closed",
    "breaker_reopened",
)


def main() -> int:
    """Play the steps; 0 when every result and every span came through."""
    backend = FlakyBackend()
    try:
        os.environ.update(
            {
                "OTEL_SERVICE_NAME": "checkout",
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": backend.url,
                "NEXS_FLUSH_TIMEOUT_MS": "300",  # the most a flush may hold an invocation
                "NEXS_EXPORT_BREAKER_FAILURES": "3",  # failed flushes in a row that open the breaker
                "NEXS_EXPORT_BREAKER_COOLDOWN_MS": "1000",  # then skip the back end this long
                "NEXS_EXPORT_MAX_RETRIES": "2",  # retries within one flush
                "NEXS_EXPORT_BACKOFF_MS": "20",  # first backoff cap (doubles, full jitter)
            }
        )
        return play(backend)
    finally:
        backend.close()


def play(backend: FlakyBackend) -> int:
    """Invoke once per step and print what changed."""
    from handler import handler

    import nexs_serverless
    from nexs_serverless.testing import LambdaContext

    print(f"OTLP endpoint {backend.url}: flush budget 300 ms, breaker after 3 failed flushes, cool-down 1 s")
    unchanged = 0
    for number, (what, script, wait_s) in enumerate(STEPS, start=1):
        time.sleep(wait_s)
        backend.behave(*script)
        before, requests = nexs_serverless.stats(), backend.requests
        started = time.perf_counter()
        result = handler({"order": f"A-{number}"}, LambdaContext(function_name="checkout"))
        took_ms = (time.perf_counter() - started) * 1000
        after = nexs_serverless.stats()
        expected = {"statusCode": 200, "body": f'{{"order": "A-{number}", "charged": 19.99}}'}
        unchanged += result == expected
        moved = [
            f"{key} +{after.get(key, 0) - before.get(key, 0):g}"
            for key in WATCHED
            if after.get(key, 0) != before.get(key, 0)
        ]
        print(f"\n#{number:<2} back end: {what}")
        print(f"    handler returned {result['statusCode']} {result['body']} in {took_ms:.0f} ms")
        print(f"    requests that reached the back end: {backend.requests - requests}")
        print("    stats: " + (", ".join(moved) or "no change"))
    return summary(backend, unchanged)


def summary(backend: FlakyBackend, unchanged: int) -> int:
    """Print the final counters and the two promises; 1 when one is broken."""
    import nexs_serverless

    stats = nexs_serverless.stats()
    print("\n== stats() at the end")
    for key in sorted(stats):
        if key.startswith(("export_", "breaker_", "spans_", "flushes_")) and not key.endswith("_max"):
            print(f"  {key:34} {stats[key]:g}")
    created = 2 * len(STEPS)
    delivered = len(set(backend.span_ids))
    duplicates = len(backend.span_ids) - delivered
    print("\n== promises")
    print(f"handler results unchanged: {unchanged} of {len(STEPS)}")
    lost = created - delivered
    print(f"spans created: {created}, delivered: {delivered}, delivered twice: {duplicates}, lost: {lost}")
    ok = unchanged == len(STEPS) and delivered == created and duplicates == 0
    print("OK: the back end's failures never reached the handler, and no span was lost" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
