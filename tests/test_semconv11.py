"""FaaS semantic conventions on triggers: ``faas.document.*``, timers, and a Lambda@Edge replica's name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nexs_serverless import config, platforms, traced_handler
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.testing import AzureContext, LambdaContext, events, native, reset

LAMBDA_ENV = {"AWS_LAMBDA_FUNCTION_NAME": "orders-fn", "AWS_REGION": "us-east-1"}
EDGE_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "us-east-1.edge-auth",
    "AWS_REGION": "eu-west-1",
    "AWS_LAMBDA_FUNCTION_VERSION": "3",
}
GCP_ENV = {"K_SERVICE": "orders-fn", "FUNCTION_TARGET": "handle", "GOOGLE_CLOUD_PROJECT": "my-project"}
AZURE_ENV = {"FUNCTIONS_WORKER_RUNTIME": "python", "WEBSITE_SITE_NAME": "orders-app"}


def root_of(environ: dict[str, str], call: Any) -> FinishedSpan:
    """Run `call` with an in-memory exporter and `environ`, and return the one span exported."""
    exporter = InMemoryExporter()
    reset(exporters=[exporter], environ=environ)
    call()
    (root,) = exporter.get_finished_spans()
    return root


def documents(root: FinishedSpan) -> dict[str, object]:
    return {key: value for key, value in root.attributes.items() if key.startswith("faas.document.")}


@traced_handler
def lambda_handler(event: object, context: object) -> None:
    return None


@traced_handler
def cloud_event_function(cloud_event: object) -> None:
    return None


@traced_handler
def background_function(data: object, context: object) -> None:
    return None


@traced_handler
def blob_function(blob: object, context: object) -> None:
    return None


# -- AWS datasources (already described; pinned here beside the other clouds) --------------------


def test_s3_notification_sets_every_document_attribute() -> None:
    """An S3 notification names the bucket, decoded key, operation and event time."""
    root = root_of(LAMBDA_ENV, lambda: lambda_handler(events.load("s3"), LambdaContext()))
    assert root.attributes["faas.trigger"] == "datasource"
    assert documents(root) == {
        "faas.document.collection": "orders-bucket",
        "faas.document.name": "uploads/order-42.json",
        "faas.document.operation": "insert",
        "faas.document.time": "2026-11-28T10:00:00.000Z",
    }


def test_dynamodb_batch_keeps_only_what_every_record_shares() -> None:
    """Records of one table with INSERT and REMOVE: the table is set, no operation is claimed."""
    event = events.load("dynamodb")
    removed = json.loads(json.dumps(event["Records"][0]))
    removed["eventName"] = "REMOVE"
    event["Records"].append(removed)
    root = root_of(LAMBDA_ENV, lambda: lambda_handler(event, LambdaContext()))
    assert root.attributes["faas.document.collection"] == "orders"
    assert "faas.document.operation" not in root.attributes
    assert root.attributes["nexs.batch.record_count"] == 2


def test_s3_event_through_eventbridge_is_a_datasource() -> None:
    """S3's ``Object Deleted`` sent to EventBridge is a delete of the bucket's decoded key."""
    event = events.load("eventbridge")
    event.update(
        {
            "source": "aws.s3",
            "detail-type": "Object Deleted",
            "detail": {"bucket": {"name": "orders-bucket"}, "object": {"key": "old/order+41.json"}},
        }
    )
    root = root_of(LAMBDA_ENV, lambda: lambda_handler(event, LambdaContext()))
    assert root.attributes["faas.trigger"] == "datasource"
    assert documents(root) == {
        "faas.document.collection": "orders-bucket",
        "faas.document.name": "old/order 41.json",
        "faas.document.operation": "delete",
        "faas.document.time": "2026-11-28T10:00:00Z",
    }


# -- Google Cloud Storage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "operation"),
    [("finalized", "insert"), ("deleted", "delete"), ("archived", "edit"), ("metadataUpdated", "edit")],
)
def test_cloud_storage_cloud_event_sets_document_attributes(action: str, operation: str) -> None:
    """A Cloud Storage CloudEvent names the bucket, object, operation and event time."""
    event = events.load("gcp-storage")
    event["type"] = f"google.cloud.storage.object.v1.{action}"
    root = root_of(GCP_ENV, lambda: cloud_event_function(native.cloud_event(event)))
    assert root.attributes["faas.trigger"] == "datasource"
    assert documents(root) == {
        "faas.document.collection": "orders-bucket",
        "faas.document.name": "uploads/order-42.json",
        "faas.document.operation": operation,
        "faas.document.time": "2026-11-28T10:00:00.000Z",
    }


def test_cloud_storage_background_event_sets_document_attributes() -> None:
    """A 1st-gen background function's storage event is described as its CloudEvent form is."""
    from google.cloud.functions_v1.context import Context

    data = events.load("gcp-storage")["data"]
    context = Context(
        eventId="7418395520412345",
        timestamp="2026-11-28T10:00:00.000Z",
        eventType="google.storage.object.delete",
        resource={"service": "storage.googleapis.com", "name": "projects/_/buckets/orders-bucket"},
    )
    root = root_of(GCP_ENV, lambda: background_function(data, context))
    assert root.attributes["faas.trigger"] == "datasource"
    assert documents(root) == {
        "faas.document.collection": "orders-bucket",
        "faas.document.name": "uploads/order-42.json",
        "faas.document.operation": "delete",
        "faas.document.time": "2026-11-28T10:00:00.000Z",
    }


# -- Azure blob trigger --------------------------------------------------------------------


def test_azure_blob_trigger_names_container_and_blob() -> None:
    """A blob's ``InputStream`` gives the container and the blob's path; no operation is guessed."""
    from azure.functions.blob import InputStream

    uri = "https://account.blob.core.windows.net/orders/2026/o.json"
    blob = InputStream(data=b"{}", name="orders/2026/o.json", uri=uri, length=2)
    root = root_of(AZURE_ENV, lambda: blob_function(blob=blob, context=AzureContext()))
    assert root.attributes["faas.trigger"] == "datasource"
    assert documents(root) == {"faas.document.collection": "orders", "faas.document.name": "2026/o.json"}


# -- Cloud Scheduler -----------------------------------------------------------------------


def test_cloud_scheduler_cloud_event_is_a_timer() -> None:
    """A Cloud Scheduler job's CloudEvent is ``timer`` with the event time and the job, no cron."""
    event = events.load("gcp-scheduler")
    root = root_of(GCP_ENV, lambda: cloud_event_function(native.cloud_event(event)))
    assert root.attributes["faas.trigger"] == "timer"
    assert root.attributes["faas.time"] == "2026-11-28T03:00:00.000Z"
    job = "projects/my-project/locations/us-central1/jobs/nightly-report"
    assert root.attributes["nexs.schedule.rule"] == job
    assert "faas.cron" not in root.attributes


def test_pubsub_message_from_a_scheduler_topic_stays_pubsub() -> None:
    """A scheduler job publishing to a topic cannot be told from any publisher: still ``pubsub``."""
    root = root_of(GCP_ENV, lambda: cloud_event_function(native.cloud_event(events.load("gcp-pubsub"))))
    assert root.attributes["faas.trigger"] == "pubsub"


# -- Lambda@Edge ---------------------------------------------------------------------------


def test_lambda_edge_replica_name_drops_the_home_region_prefix() -> None:
    """In a replica, ``faas.name`` is the deployed function's; the region is where the replica runs."""
    context = LambdaContext(function_name="us-east-1.edge-auth", region="eu-west-1", function_version="3")
    root = root_of(EDGE_ENV, lambda: lambda_handler({}, context))
    assert root.attributes["faas.name"] == "edge-auth"
    assert root.name == "edge-auth"
    assert root.attributes["cloud.region"] == "eu-west-1"
    replica_arn = "arn:aws:lambda:eu-west-1:123456789012:function:us-east-1.edge-auth"
    assert root.attributes["cloud.resource_id"] == f"{replica_arn}:3"


def test_lambda_edge_resource_and_service_name_drop_the_prefix() -> None:
    """The resource's ``faas.name``, and so the default ``service.name``, are the deployed function's."""
    from nexs_serverless.runtime import build_resource_attributes

    settings = config.load(EDGE_ENV)[0]
    assert platforms.resource_attributes(settings)["faas.name"] == "edge-auth"
    assert build_resource_attributes(settings)["service.name"] == "edge-auth"


def test_plain_lambda_function_name_is_unchanged() -> None:
    """Outside Lambda@Edge the function name is taken as it is."""
    root = root_of(LAMBDA_ENV, lambda: lambda_handler({}, LambdaContext(function_name="orders-fn")))
    assert root.attributes["faas.name"] == "orders-fn"
