"""`uninstrument` before the first invocation is an opt-out the automatic instrumentation honours,
and the testing kit's resets forget it, without leaving one of their own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from support.clouds import client
from support.memory import finish

from nexs_serverless import instrumentation, traced_handler
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import LambdaContext, capture_spans, reset
from nexs_serverless.testing.state import forget_instrumentation


def sqs_function(moto_url: str) -> Callable[[dict[str, Any], object], str]:
    """A traced function whose SQS client is made at import time, as a Lambda module makes it."""
    sqs = client("sqs", moto_url)

    @traced_handler
    def handler(event: dict[str, Any], context: object) -> str:
        sqs.list_queues()
        return "ok"

    return handler


def aws_spans(exporter: InMemoryExporter) -> list[str]:
    """The names of the AWS SDK client spans `exporter` holds."""
    return [span.name for span in finish(exporter) if span.attributes.get("rpc.system") == "aws-api"]


def test_uninstrument_before_the_first_invocation_keeps_the_sdk_untraced(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """`uninstrument("botocore")` at import: neither the cold nor a warm invocation traces an SDK call."""
    import botocore.client

    handler = sqs_function(moto_url)
    instrumentation.uninstrument("botocore")
    original = botocore.client.BaseClient._make_api_call
    handler({}, LambdaContext())
    handler({}, LambdaContext())
    assert aws_spans(spans) == []
    assert botocore.client.BaseClient._make_api_call is original  # no stand-in was put there


def test_uninstrument_with_no_name_opts_out_of_everything(moto_url: str, spans: InMemoryExporter) -> None:
    """`uninstrument()` at import: the first invocation installs nothing, not even the log hook."""
    handler = sqs_function(moto_url)
    factory = logging.getLogRecordFactory()
    instrumentation.uninstrument()
    handler({}, LambdaContext())
    (root,) = finish(spans)  # the invocation's span alone: no AWS, no HTTP span
    assert root.name == LambdaContext().function_name
    assert logging.getLogRecordFactory() is factory


def test_instrument_again_traces_the_sdk(moto_url: str, spans: InMemoryExporter) -> None:
    """`instrument("botocore")` after the opt-out: the next invocation's SDK call is traced."""
    handler = sqs_function(moto_url)
    instrumentation.uninstrument("botocore")
    handler({}, LambdaContext())
    assert aws_spans(spans) == []
    instrumentation.instrument("botocore")
    handler({}, LambdaContext())
    assert aws_spans(spans) == ["SQS.ListQueues"]


def test_instrument_clears_the_opt_out(spans: InMemoryExporter) -> None:
    """After `uninstrument` then `instrument`, automatic instrumentation takes the name again."""
    import botocore.client  # noqa: F401  (what makes `auto_install` take botocore)

    instrumentation.uninstrument("botocore", "urllib3")
    assert "botocore" not in instrumentation.auto_install(runtime.settings)
    instrumentation.instrument("botocore")
    assert "botocore" in instrumentation.auto_install(runtime.settings)
    assert "urllib3" not in instrumentation.auto_install(runtime.settings)


def test_uninstrument_rejects_an_unknown_name() -> None:
    """A misspelt name fails at once, as `instrument` does, and opts nothing out."""
    import botocore.client  # noqa: F401

    with pytest.raises(ValueError, match="botocor"):
        instrumentation.uninstrument("botocore", "botocor")
    assert "botocore" in instrumentation.auto_install(runtime.settings)


def test_forget_instrumentation_clears_the_opt_out(moto_url: str, spans: InMemoryExporter) -> None:
    """The suite's reset between tests: an opt-out made by one test is gone for the next."""
    handler = sqs_function(moto_url)
    instrumentation.uninstrument("botocore")
    forget_instrumentation()
    handler({}, LambdaContext())
    assert aws_spans(spans) == ["SQS.ListQueues"]


def test_reset_clears_the_opt_out(moto_url: str) -> None:
    """`testing.reset()` forgets an opt-out too: a test that uninstruments must not leak into the next."""
    handler = sqs_function(moto_url)
    instrumentation.uninstrument("botocore")
    memory = InMemoryExporter()
    reset(exporters=[memory])
    handler({}, LambdaContext())
    assert aws_spans(memory) == ["SQS.ListQueues"]


def test_capture_spans_forgets_an_opt_out_made_inside_it(moto_url: str) -> None:
    """A block that uninstruments leaves no opt-out: the next block's first invocation traces the SDK."""
    handler = sqs_function(moto_url)
    with capture_spans() as first:
        instrumentation.uninstrument("botocore")
        handler({}, LambdaContext())
    assert aws_spans(first) == []
    with capture_spans() as second:
        handler({}, LambdaContext())
    assert aws_spans(second) == ["SQS.ListQueues"]


def test_capture_spans_keeps_an_opt_out_made_before_it(moto_url: str) -> None:
    """`uninstrument` then a block: the block's first invocation honours it, as a cold start does."""
    handler = sqs_function(moto_url)
    instrumentation.uninstrument("botocore")
    with capture_spans() as recorder:
        handler({}, LambdaContext())
    assert aws_spans(recorder) == []


def test_the_kit_cleanup_leaves_no_opt_out_of_its_own(moto_url: str) -> None:
    """The kit removes what a block's first invocation installed without opting out: the next block
    (the next test under the ``nexs_spans`` fixture) installs it again at its first invocation."""
    handler = sqs_function(moto_url)
    with capture_spans() as first:
        handler({}, LambdaContext())
    with capture_spans() as second:
        handler({}, LambdaContext())
    assert aws_spans(first) == aws_spans(second) == ["SQS.ListQueues"]


def test_forget_instrumentation_leaves_no_opt_out_of_its_own(moto_url: str, spans: InMemoryExporter) -> None:
    """The suite's teardown removes the first invocation's instrumentation; the next cold start redoes it."""
    handler = sqs_function(moto_url)
    handler({}, LambdaContext())
    forget_instrumentation()
    reset(exporters=[spans])
    handler({}, LambdaContext())
    assert aws_spans(spans) == ["SQS.ListQueues", "SQS.ListQueues"]
