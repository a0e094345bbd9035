"""Redaction, second review: leaks, slow inputs and inconsistencies found and fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nexs_serverless import flush, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.redaction import Redactor, is_secret_key
from nexs_serverless.redaction_capture import redact_structure
from nexs_serverless.testing import LambdaContext, reset

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpM"


def _redact(value: object, redactor: Redactor | None = None) -> object:
    attributes: dict[str, Any] = {"v": value}
    (redactor or Redactor()).redact_attributes(attributes)
    return attributes.get("v", "<dropped>")


def test_jwt_detector_reads_a_long_base64_run_once() -> None:
    """A megabyte of "eyJeyJ..." is read in one pass (was quadratic: 25 s per 100 KB); a JWT is found."""
    text = "eyJ" * 350_000 + " then " + JWT
    out = _redact(text)
    assert isinstance(out, str)
    assert out.endswith(" then [REDACTED:jwt]")
    assert JWT not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"query": "page=1&password=hunter2"}', '{"query": "page=1&password=[REDACTED:assignment]"}'),
        (
            '{"redirect":"https://app/cb?access_token=abc123"}',
            '{"redirect":"https://app/cb?access_token=[REDACTED:assignment]"}',
        ),
        ("next=/login?token=abc123&x=1", "next=/login?token=[REDACTED:assignment]&x=1"),
        ("x=password=hunter2", "x=password=[REDACTED:assignment]"),
        ("note='see token=abcdefgh'", "note='see token=[REDACTED:assignment]'"),
    ],
)
def test_a_secret_inside_another_keys_value_is_masked(text: str, expected: str) -> None:
    """An assignment nested in the value of a key that names no secret is found (the outer value hid it)."""
    assert _redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{\\"password\\":\\"hunter2\\"}', '{\\"password\\":\\"[REDACTED:assignment]\\"}'),
        (
            '{"Type": "Notification", "Message": "{\\"user\\": \\"ada\\", \\"api_key\\": \\"k-123\\"}"}',
            '{"Type": "Notification", "Message": '
            '"{\\"user\\": \\"ada\\", \\"api_key\\": \\"[REDACTED:assignment]\\"}"}',
        ),
    ],
)
def test_json_escaped_inside_a_json_string_is_read(text: str, expected: str) -> None:
    """JSON quoted inside a string (an SNS message in an SQS body) has its secret values masked."""
    assert _redact(text) == expected


def test_sns_message_in_a_captured_sqs_event_is_masked(exporter: InMemoryExporter) -> None:
    """A captured SQS event whose body carries an SNS envelope exports no secret from the inner message."""
    reset(environ={"NEXS_CAPTURE_EVENT": "true"}, exporters=[exporter])
    inner = json.dumps({"order": 7, "password": "hunter2-inner"})
    body = json.dumps({"Type": "Notification", "Message": inner})
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "m-1", "body": body}]}

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    handler(event, LambdaContext())
    text = repr([dict(span.attributes) for span in exporter.get_finished_spans()])
    assert "hunter2-inner" not in text
    assert "[REDACTED:assignment]" in text


def test_values_cut_by_the_attribute_length_limit_do_not_leak(exporter: InMemoryExporter) -> None:
    """A JSON password or a JWT cut by OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (before this stage) is masked."""
    reset(environ={"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "40"}, exporters=[exporter])
    body = '{"user": "ada", "password": "hunter2-is-my-long-password"}'
    with tracer.span("op", parent=tracer.ROOT, attributes={"http.request.body": body, "note": f"jwt {JWT}"}):
        pass
    flush()
    attributes = exporter.get_finished_spans()[0].attributes
    assert attributes["http.request.body"] == '{"user": "ada", "password": "[REDACTED:assignment]'
    assert attributes["note"] == "jwt [REDACTED:jwt]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token=abc", "token=[REDACTED:assignment]"),
        ("pwd=abc12", "pwd=[REDACTED:assignment]"),
        ("run --password=hunter2", "run --password=[REDACTED:assignment]"),
    ],
)
def test_short_values_and_command_line_flags_are_read(text: str, expected: str) -> None:
    """Values under 10 characters and ``--password=`` flags are not skipped."""
    assert _redact(text) == expected
    assert _redact([text, "ok"]) == (expected, "ok")


def test_a_hash_from_the_capture_is_not_hashed_again() -> None:
    """A value hashed in a captured event keeps its hash as the nexs.event attribute, so it still joins."""
    redactor = Redactor(detectors={"url_password": "hash"})
    dsn = "postgres://app:pw123456@db/orders"
    captured = json.dumps(redact_structure(redactor, {"dsn": dsn}))
    attributes: dict[str, Any] = {"nexs.event": captured, "db.connection": dsn}
    redactor.redact_attributes(attributes)
    direct = attributes["db.connection"]
    assert direct.startswith("postgres://app:hmac:")
    assert direct.removeprefix("postgres://app:").removesuffix("@db/orders") in attributes["nexs.event"]
    assert attributes["nexs.event"] == captured


def test_a_password_that_only_starts_like_a_mask_is_masked() -> None:
    """Only this stage's exact output shapes are skipped: ``hmac:`` plus a password is still a password."""
    assert _redact("password=hmac:hunter2") == "password=[REDACTED:assignment]"
    assert _redact("postgres://app:[REDACTED]x@db/o") == "postgres://app:[REDACTED:url_password]@db/o"
    assert _redact("password=[REDACTED:assignment]&q=1") == "password=[REDACTED:assignment]&q=1"


def test_capture_paths_and_attribute_keys_are_judged_apart() -> None:
    """A dotted text's verdict does not depend on whether it was first met as a captured path or as a key."""
    redactor = Redactor()
    assert redact_structure(redactor, {"tokenType": {"value": "Bearer"}}) == {
        "tokenType": {"value": "Bearer"}
    }
    assert _redact_key(redactor, "tokenType.value", "s3cr3t-literal-token") == "[REDACTED]"

    redactor = Redactor()
    assert _redact_key(redactor, "passwordPolicy.min", "x") == "[REDACTED]"
    assert redact_structure(redactor, {"passwordPolicy": {"min": 8}}) == {"passwordPolicy": {"min": 8}}


def _redact_key(redactor: Redactor, key: str, value: str) -> object:
    attributes: dict[str, Any] = {key: value}
    redactor.redact_attributes(attributes)
    return attributes[key]


def test_event_names_are_redacted(exporter: InMemoryExporter) -> None:
    """An event name holding a credential is masked, as span names are; its attributes still are."""
    reset(exporters=[exporter])
    with tracer.span("op", parent=tracer.ROOT) as span:
        span.add_event("login password=hunter2 failed", {"retry": 1})
        span.add_event(f"got {JWT}")
        span.add_event("cache miss")
    flush()
    names = [event.name for event in exporter.get_finished_spans()[0].events]
    assert names == ["login password=[REDACTED:assignment] failed", "got [REDACTED:jwt]", "cache miss"]
    assert exporter.get_finished_spans()[0].events[0].attributes == {"retry": 1}


@pytest.mark.parametrize("key", ["x-functions-key", "Ocp-Apim-Subscription-Key", "sig"])
def test_azure_key_names_are_credentials(key: str) -> None:
    """Azure's function key header, API Management subscription key and SAS signature are credentials."""
    assert is_secret_key(key)


def test_azure_credentials_in_captured_headers_and_sas_urls() -> None:
    """A captured Azure request's function key and a SAS URL's signature are masked."""
    redactor = Redactor()
    captured = redact_structure(redactor, {"headers": {"x-functions-key": "abcDEF123==", "accept": "*/*"}})
    assert captured == {"headers": {"x-functions-key": "[REDACTED]", "accept": "*/*"}}
    url = "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=abcDEF%2Bxyz%3D"
    assert (
        _redact(url) == "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=[REDACTED:assignment]"
    )


@pytest.mark.parametrize(
    "text",
    [
        "550e8400-e29b-41d4-a716-446655440000",
        "0123456789abcdef0123456789abcdef01234567",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "2024-01-15T10:30:00.123Z",
        "token_type=Bearer&expires_in=3600",
        '{"tokenType": "Bearer", "max_tokens": 100, "design": "signal=on"}',
        "version=1.2.3.4 sort_key=abc cache_key=abc123",
        "eyJ",
    ],
)
def test_ids_and_descriptions_of_secrets_are_left_alone(text: str) -> None:
    """Ids, hashes, ARNs, timestamps and keys that describe a secret pass through unchanged."""
    assert _redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "a=" * 150_000 + "token",
        "password=" * 35_000,
        'password="' * 30_000,
        '\\"password\\":\\"' * 20_000,
        'k=\\"' * 75_000 + "token",
    ],
)
def test_assignment_scan_stays_linear(text: str) -> None:
    """Nested and unterminated assignments over 300 KB finish (a rescan of each value would be quadratic)."""
    out = _redact(text)
    assert isinstance(out, str)
    assert len(out) < 2 * len(text)


def test_a_hash_key_that_is_not_utf8_is_used_as_its_bytes(exporter: InMemoryExporter) -> None:
    """A hash key with a byte that is not UTF-8 keys the HMAC with its own bytes (it failed every flush)."""
    import hmac

    environ = {"NEXS_REDACTION_HASH_KEY": "abcdefghijklmnop\udcff", "NEXS_REDACTION_KEYS": "user.id:hash"}
    reset(environ=environ, exporters=[exporter])
    with tracer.span("op", parent=tracer.ROOT, attributes={"user.id": "42", "db.password": "hunter2"}):
        pass
    flush()
    attributes = exporter.get_finished_spans()[0].attributes
    assert attributes["user.id"] == "hmac:" + hmac.digest(b"abcdefghijklmnop\xff", b"42", "sha256")[:8].hex()
    assert attributes["db.password"] == "[REDACTED]"


def test_a_base64_encoded_body_is_redacted_as_the_text_it_encodes(exporter: InMemoryExporter) -> None:
    """A captured isBase64Encoded JSON body exports no password; a binary body is left as it was."""
    import base64

    reset(environ={"NEXS_CAPTURE_EVENT": "true"}, exporters=[exporter])
    body = base64.b64encode(json.dumps({"user": "ada", "password": "hunter2"}).encode()).decode()
    image = base64.b64encode(bytes(range(256))).decode()

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    handler({"body": body, "isBase64Encoded": True, "rawPath": "/login"}, LambdaContext())
    handler({"body": image, "isBase64Encoded": True, "rawPath": "/upload"}, LambdaContext())
    captured = [
        json.loads(str(span.attributes["nexs.event"]))
        for span in exporter.get_finished_spans()
        if "nexs.event" in span.attributes
    ]
    assert len(captured) == 2
    assert (
        base64.b64decode(captured[0]["body"]).decode()
        == '{"user": "ada", "password": "[REDACTED:assignment]"}'
    )
    assert captured[1]["body"] == image


class _Recording(Redactor):
    """A real redactor that notes the length of each text it is asked to scan."""

    __slots__ = ("lengths",)

    def __init__(self) -> None:
        super().__init__()
        self.lengths: list[int] = []

    def redact_text(self, text: str) -> str | None:
        self.lengths.append(len(text))
        return super().redact_text(text)


def test_a_long_captured_string_is_scanned_only_up_to_the_capture_limit() -> None:
    """A 6 MB string costs a scan of the limit and a margin (was 0.5 s per event); a cut secret is masked."""
    redactor = _Recording()
    body = "a " * 2_000 + "password=" + "s" * 3_000_000
    out = redact_structure(redactor, {"path": "/x", "body": body}, budget=4096)
    assert isinstance(out, dict)
    assert max(redactor.lengths) <= 4096 + 1024
    assert out["body"] == "a " * 2_000 + "password=[REDACTED:assignment]"
    assert out["path"] == "/x"
