"""Redaction, third review: leaks and slow inputs found and fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nexs_serverless import StatusCode, flush, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.redaction import Redactor
from nexs_serverless.redaction_capture import redact_structure
from nexs_serverless.testing import reset

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpM"
MB = 1 << 20


def _redact(value: object, redactor: Redactor | None = None) -> object:
    attributes: dict[str, Any] = {"v": value}
    (redactor or Redactor()).redact_attributes(attributes)
    return attributes.get("v", "<dropped>")


# -- slow inputs: a megabyte took from half a minute to hours; each now costs one pass ---------


def test_a_megabyte_of_backslashes_before_a_key_is_read_once() -> None:
    """A long backslash run is not rescanned from each of its backslashes (was 5 s per 20 KB)."""
    out = _redact("\\" * MB + '"password": "hunter2"')
    assert isinstance(out, str)
    assert out.endswith('"password": "[REDACTED:assignment]"')


def test_a_megabyte_of_backslashes_after_an_escaped_quote_is_read_once() -> None:
    """A value quoted with a long run of backslashes no longer costs the run's length per character."""
    half = MB // 2
    out = _redact('"password":' + "\\" * half + '"' + "\\" * half + " then password=hunter2")
    assert isinstance(out, str)
    assert out.endswith(" then password=[REDACTED:assignment]")


def test_a_megabyte_of_plus_and_digit_runs_is_read_once_by_the_phone_detector() -> None:
    """Digit runs after "+" are not split every possible way (was 2 s per 100 KB); a phone is still found."""
    redactor = Redactor(detectors={"phone": "redact"})
    out = _redact(("+" + "1" * 25 + " ") * (MB // 27) + "call +44 20 7946 0958", redactor)
    assert isinstance(out, str)
    assert out.endswith("call [REDACTED:phone]")
    assert out.count("[REDACTED") == 1


# -- URL passwords ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://app:p@ss@db/orders", "postgres://app:[REDACTED:url_password]@db/orders"),
        (
            "smtp://me@mail.example:app-pw@smtp.example:587",
            "smtp://me@mail.example:[REDACTED:url_password]@smtp.example:587",
        ),
        (
            "mongodb://u:pw@h1:27017,h2:27017/db",
            "mongodb://u:[REDACTED:url_password]@h1:27017,h2:27017/db",
        ),
    ],
)
def test_a_url_password_holding_an_at_sign_is_masked_whole(text: str, expected: str) -> None:
    """The password runs to the authority's last "@", as URL parsers read it (``p@ss`` leaked ``ss``)."""
    assert _redact(text) == expected


def test_a_url_cut_inside_its_password_by_the_length_limit_is_masked(exporter: InMemoryExporter) -> None:
    """OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT cutting before the "@" left the whole password readable."""
    reset(environ={"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "40"}, exporters=[exporter])
    with tracer.span("op", parent=tracer.ROOT) as span:
        span.set_attribute("db.error", "connect postgres://app:VerySecretPassword123@db.example.com/x")
    flush()
    assert exporter.get_finished_spans()[0].attributes["db.error"] == (
        "connect postgres://app:[REDACTED:url_password]"
    )


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com:8443",
        "mongodb://db1:27017,db2:27017",
        "http://[::1]:8080",
        "https://bob@example.com:8443/x",
        "see https://example.com/a:b",
    ],
)
def test_urls_ending_in_a_port_or_a_host_list_are_left_alone(text: str) -> None:
    """A URL ending in its authority is read as cut only when no port or host list follows the colon."""
    assert _redact(text) == text


# -- private keys, header lines, quoted values, key names ------------------------------------


def test_an_openpgp_private_key_block_is_masked() -> None:
    """``-----BEGIN PGP PRIVATE KEY BLOCK-----`` armour is a private key too (it passed unmasked)."""
    block = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGX\n-----END PGP PRIVATE KEY BLOCK-----"
    assert _redact(f"key:\n{block}\nend") == "key:\n[REDACTED:private_key]\nend"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Token ghp_abcdefghijklmnop", "Authorization: Token [REDACTED:assignment]"),
        (
            "GET / HTTP/1.1\r\nHost: api\r\nAuthorization: Digest username=a, response=9f86d0\r\n",
            "GET / HTTP/1.1\r\nHost: api\r\nAuthorization: Digest [REDACTED:assignment]\r\n",
        ),
        ("> X-Api-Key: k-123456\n> Accept: */*", "> X-Api-Key: [REDACTED:assignment]\n> Accept: */*"),
        ("Cookie: sid=abc; theme=dark", "Cookie: [REDACTED:assignment]"),
        ("< Set-Cookie: sessionid=abc; Path=/", "< Set-Cookie: [REDACTED:assignment]"),
        (
            "user: ada\npassword: hunter2\nport: 5432",
            "user: ada\npassword: [REDACTED:assignment]\nport: 5432",
        ),
        ("Authorization: Bearer abcdefghijkl", "Authorization: Bearer [REDACTED:bearer]"),
    ],
)
def test_a_header_line_naming_a_secret_has_its_value_masked(text: str, expected: str) -> None:
    """``Name: value`` at a line start (a header dump, YAML) is read by the key rules; a scheme stays."""
    assert _redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "cache token:42",
        "token:42",
        "KeyError: 'password'",
        "ValueError: the password: is too short",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
        "Content-Type: application/json\nX-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736",
    ],
)
def test_lines_that_name_no_secret_before_their_colon_are_left_alone(text: str) -> None:
    """Cache keys, exception lines, ARNs and other headers keep their text."""
    assert _redact(text) == text


def test_a_header_line_in_an_exception_is_masked_end_to_end(exporter: InMemoryExporter) -> None:
    """An exception quoting a request's headers exports no token: message, stack trace and status."""
    token = "tok-" + "0123456789"  # not on the raising line: the stack trace quotes that line
    with tracer.span("call", parent=tracer.ROOT) as span:
        try:
            raise RuntimeError(f"upstream refused\nAuthorization: Token {token}")
        except RuntimeError as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, str(exc))
    flush()
    exported = exporter.get_finished_spans()[0]
    text = repr((exported.status_description, [dict(e.attributes) for e in exported.events]))
    assert "tok-0123456789" not in text
    masked = "upstream refused\nAuthorization: Token [REDACTED:assignment]"
    assert exported.events[0].attributes["exception.message"] == masked
    assert exported.status_description == masked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"password": "abc\\\ndef", "x": 1}', '{"password": "[REDACTED:assignment]", "x": 1}'),
        ("password='it\\'s-secret' next", "password='[REDACTED:assignment]' next"),
    ],
)
def test_quoted_values_with_escapes_are_masked_whole(text: str, expected: str) -> None:
    """An escaped newline hid a double-quoted value; an escaped quote cut a single-quoted one short."""
    assert _redact(text) == expected


def test_an_azure_storage_connection_string_has_its_account_key_masked() -> None:
    """``AccountKey=`` (Storage, Cosmos DB) is a credential; the account name stays."""
    text = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc123def456==;EndpointSuffix=core"
    assert _redact(text) == (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[REDACTED:assignment];EndpointSuffix=core"
    )


def test_a_card_number_in_a_list_of_integers_is_masked() -> None:
    """A list of ints is scanned as a lone int is; the list stays one type (text)."""
    redactor = Redactor(detectors={"credit_card": "redact"})
    assert _redact([4111111111111111, 7], redactor) == ("[REDACTED:credit_card]", "7")
    assert _redact([12, 7], redactor) == [12, 7]


def test_a_captured_key_holding_a_token_is_masked() -> None:
    """API Gateway reads ``?<jwt>`` as a query key: the key is scanned as text is."""
    out = redact_structure(Redactor(), {"queryStringParameters": {JWT: "", "page": "2"}})
    assert json.dumps(out) == '{"queryStringParameters": {"[REDACTED:jwt]": "", "page": "2"}}'
