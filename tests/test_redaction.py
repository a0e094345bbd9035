"""Redaction: detectors (hits, misses, near-misses), key rules, actions, captures, configuration."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexs_serverless import ConfigError, redaction_keys, stats, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.redaction import (
    CREDENTIALS,
    Redactor,
    from_settings,
    is_secret_key,
    may_hold_credentials,
)
from nexs_serverless.redaction_capture import redact_capture
from nexs_serverless.redaction_detectors import build, luhn_valid
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import LambdaContext, reset

ALL_OPT_IN = {"email": "redact", "phone": "redact", "credit_card": "redact", "ip": "redact"}

# detector -> (texts it must mask, with the masked part; texts it must leave alone)
CASES: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    "jwt": (
        [
            (
                "auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpM done",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpM",
            )
        ],
        ["eyJhbGciOiJIUzI1NiJ9 alone is a header, not a token", "hey, eyJ."],
    ),
    "aws_access_key": (
        [
            ("key=AKIAIOSFODNN7EXAMPLE;", "AKIAIOSFODNN7EXAMPLE"),
            ("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
        ],
        ["AKIAIOSFODNN7EXAMPL", "XAKIAIOSFODNN7EXAMPLE9", "AIDAJQABLZS4A3QDU576Q is a user id"],
    ),
    "bearer": (
        [
            ("Authorization: Bearer abcdef123456.xyz", "abcdef123456.xyz"),
            ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
            # Auth schemes are case-insensitive (RFC 9110 11.1), and any whitespace may follow.
            ("AUTHORIZATION: BEARER abcdef123456.xyz", "abcdef123456.xyz"),
            ("authorization: bearer\tabcdef123456.xyz", "abcdef123456.xyz"),
            ("BASIC dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ],
        ["the bearer of bad news", "Bearer short", "basic idea", "BASICALLY fine", "a nearer wearer"],
    ),
    "url_password": (
        [
            ("postgres://app:s3cr3t-pw@db.example.com:5432/orders", "s3cr3t-pw"),
            ("redis://:hunter2secret@cache:6379/0", "hunter2secret"),
            ("error connecting to https://admin:hunter2@api.example.com/x", "hunter2"),
        ],
        [
            "mailto:bob@example.com",
            "https://bob@example.com/x",
            "user@host:22",
            "https://example.com/@me",
            "https://REDACTED:REDACTED@api.example.com/x",  # url.full as the HTTP conventions mask it
        ],
    ),
    "private_key": (
        [
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            )
        ],
        ["-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----"],
    ),
    "assignment": (
        [
            ("page=2&password=hunter2&sort=asc", "hunter2"),
            ('{"api_key": "k-123 456", "x": 1}', "k-123 456"),
            ("X-Amz-Date=20260101T000000Z&X-Amz-Signature=fe5f80f77d5fa3be", "fe5f80f77d5fa3be"),
            ("https://api.example.com/v1?api_key=abc123&page=2", "abc123"),
            ("{'password': 'pw'}", "pw"),
        ],
        [
            "token_type=bearer",
            "passwordless=true",
            "page=2&sort=asc",
            "secret_name=prod/db",
            "https://token.example.com:8443/auth?x=1",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db=x",
            "the password: hunter2 (an unquoted key inside a line is not read)",
        ],
    ),
    "email": (
        [
            ("mail alice@example.com now", "alice@example.com"),
            ("bob.smith+tag@mail.example.co.uk", "bob.smith+tag@mail.example.co.uk"),
        ],
        ["user@localhost", "pkg@1.2.3", "@mention", "git@ 1.2", "a@b"],
    ),
    "phone": (
        [
            ("call +44 20 7946 0958 today", "+44 20 7946 0958"),
            ("+1-202-555-0143", "+1-202-555-0143"),
            ("(202) 555-0143", "(202) 555-0143"),
            ("tel 202.555.0143", "202.555.0143"),
        ],
        ["2024-01-15", "ORD-202-555-0143", "1700000000000", "v1.2.3", "+1.5 points", "10.0.0.1", "+12 34"],
    ),
    "credit_card": (
        [
            ("card 4111 1111 1111 1111 exp", "4111 1111 1111 1111"),
            ("4111-1111-1111-1111", "4111-1111-1111-1111"),
            ("amex 378282246310005", "378282246310005"),
            ("5555555555554444", "5555555555554444"),
        ],
        [
            "4111111111111112",  # Luhn-invalid
            "order 1234567890123452",  # Luhn-valid, but no card network starts with 1
            "1700000000000",  # a millisecond timestamp
            "4111-11-1111111111",  # card digits, id-like grouping
            "ORD-4111111111111111",  # part of an id
        ],
    ),
    "ipv4": (
        [("from 10.0.0.1.", "10.0.0.1"), ("client=203.0.113.9", "203.0.113.9")],
        ["version 1.2.3", "v1.2.3.4", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "3.11.4"],
    ),
    "ipv6": (
        [
            ("peer 2001:db8::1 up", "2001:db8::1"),
            ("::1", "::1"),
            ("fe80::1ff:fe23:4567:890a", "fe80::1ff:fe23:4567:890a"),
        ],
        ["12:30:45", "00:1A:2B:3C:4D:5E", "std::vector", "a:b"],
    ),
}


def _redactor(name: str) -> Redactor:
    """A redactor with this one detector only."""
    return Redactor(credentials=False, detectors={name: "redact"})


@pytest.mark.parametrize(
    ("name", "text", "secret"), [(n, t, s) for n, (hits, _) in CASES.items() for t, s in hits]
)
def test_detector_masks_what_it_should(name: str, text: str, secret: str) -> None:
    """Each detector replaces exactly the sensitive part and keeps the rest of the text."""
    redactor = _redactor(name)
    attributes: dict[str, Any] = {"note": text}
    redactor.redact_attributes(attributes)
    assert attributes["note"] == text.replace(secret, f"[REDACTED:{name}]")


@pytest.mark.parametrize(("name", "text"), [(n, t) for n, (_, misses) in CASES.items() for t in misses])
def test_detector_leaves_near_misses_alone(name: str, text: str) -> None:
    """Look-alikes (Luhn-invalid cards, order ids, versions, dates, times, MACs) are not masked."""
    attributes: dict[str, Any] = {"note": text}
    _redactor(name).redact_attributes(attributes)
    assert attributes["note"] == text


def test_luhn_checksum() -> None:
    """The Luhn check accepts real test card numbers and rejects a one-digit change."""
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def test_credential_precheck_covers_every_credential_trigger() -> None:
    """The unrolled fast path lets through every trigger of the default detectors, and nothing else."""
    triggers = {t for name in CREDENTIALS for d in build(name, is_secret_key) for t in d.triggers}
    assert all(may_hold_credentials(f"x{t}x") for t in triggers)
    assert not may_hold_credentials("arn:aws:lambda:us-east-1:123456789012:function:orders")


def test_every_secret_key_contains_a_key_hint() -> None:
    """The assignment detector's shortcut (skip text without a hint) cannot miss a secret key name."""
    words = redaction_keys._SECRET_WORDS | {"auth"} | {a + b for a, b in redaction_keys._SECRET_PAIRS}
    assert all(any(hint in word for hint in redaction_keys.KEY_HINTS) for word in words)
    keys = ["X-Api-Key", "apiKey", "PRIVATE_KEY", "basic_auth", "db.Passwd", "X-Amz-Security-Token"]
    assert all(is_secret_key(k) and any(h in k.lower() for h in redaction_keys.KEY_HINTS) for k in keys)


def _judged_word_by_word(key: str) -> bool:
    """`is_secret_key` without its hint shortcut: the word-by-word rules alone."""
    import itertools
    import re

    words = [word.lower() for word in re.findall(redaction_keys._WORD_PATTERN, key)]
    if not words or words[-1] in redaction_keys._DESCRIBING:
        return False
    if words[-1] == "auth" or not redaction_keys._SECRET_WORDS.isdisjoint(words):
        return True
    if not redaction_keys._SECRET_JOINED.isdisjoint(words):
        return True
    if any(word.endswith(redaction_keys._SECRET_ENDINGS) for word in words):
        return True
    return any(pair in redaction_keys._SECRET_PAIRS for pair in itertools.pairwise(words))


_KEY_PARTS = sorted(
    redaction_keys._SECRET_WORDS
    | redaction_keys._DESCRIBING
    | {"auth", "api", "key", "access", "private", "Key", "API", "Token", "x", "db", "http", "9"}
)


@given(
    st.lists(
        st.one_of(st.sampled_from(_KEY_PARTS), st.text(alphabet="aAkKeEyY-_.0", max_size=4)), max_size=5
    ),
    st.sampled_from(["", ".", "-", "_"]),
)
@settings(max_examples=300, deadline=None)
def test_the_hint_shortcut_never_changes_a_verdict(parts: list[str], separator: str) -> None:
    """Keys without a hint are answered before the word split; the answer is the split's answer."""
    key = separator.join(parts)
    assert is_secret_key(key) == _judged_word_by_word(key)


@pytest.mark.parametrize(
    "key",
    [
        "http.request.header.authorization",
        "Authorization",
        "http.response.header.set-cookie",
        "cookies",
        "x-api-key",
        "apiKey",
        "aws_secret_access_key",
        "client_secret",
        "db.password",
        "X-Amz-Security-Token",
        "access_token",
        "private_key",
        "basic_auth",
        "X-Amz-Signature",
        "headers.Authorization",
        "authtoken",
        "accesstoken",
        "refreshtoken",
        "clientsecret",
        "secretkey",
        "accesskey",
        "passWord",
        "dbpassword",
    ],
)
def test_credential_key_names(key: str) -> None:
    """Keys naming a credential are recognised across spellings (dots, dashes, camelCase, headers)."""
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "token_type",
        "gen_ai.usage.input_tokens",
        "aws.secretsmanager.secret.arn",
        "aws_access_key_id",
        "passwordless",
        "requestContext.authorizer",
        "requestContext.authorizationType",
        "author",
        "cookie_count",
        "http.route",
        "cachekey",
        "passwordPolicy",
        "tokenValidity",
        "max_tokens",
    ],
)
def test_keys_that_only_describe_a_secret_are_not_credentials(key: str) -> None:
    """Keys that describe a secret (its type, id, ARN, count) or merely resemble one are left alone."""
    assert not is_secret_key(key)


def test_default_rules_mask_credentials_keep_the_rest_and_preserve_types() -> None:
    """By default: credential keys become [REDACTED] (sequences stay sequences), PII is untouched."""
    attributes: dict[str, Any] = {
        "http.request.header.authorization": ("Bearer abc.def",),
        "db.password": "hunter2",
        "url.query": "q=shoes&access_token=xyz",
        "user.email": "alice@example.com",
        "http.response.status_code": 200,
        "client.address": "203.0.113.9",
    }
    Redactor().redact_attributes(attributes)
    assert attributes == {
        "http.request.header.authorization": ("[REDACTED]",),
        "db.password": "[REDACTED]",
        "url.query": "q=shoes&access_token=[REDACTED:assignment]",
        "user.email": "alice@example.com",
        "http.response.status_code": 200,
        "client.address": "203.0.113.9",
    }


def test_hash_is_a_keyed_hmac_so_values_stay_joinable() -> None:
    """hash gives hmac:<first 16 hex of HMAC-SHA256>: equal inputs match, other keys differ."""
    key = b"0123456789abcdef-test-key"
    first = Redactor(detectors={"email": "hash"}, keys={"user.id": "hash"}, hash_key=key)
    attributes: dict[str, Any] = {"note": "from alice@example.com", "user.id": "alice@example.com"}
    first.redact_attributes(attributes)
    expected = "hmac:" + hmac.new(key, b"alice@example.com", hashlib.sha256).hexdigest()[:16]
    assert attributes == {"note": f"from {expected}", "user.id": expected}
    other: dict[str, Any] = {"user.id": "alice@example.com"}
    Redactor(keys={"user.id": "hash"}, hash_key=b"another-key-of-16+bytes").redact_attributes(other)
    assert other["user.id"] != expected


def test_drop_removes_the_attribute_and_counts_it() -> None:
    """drop removes matching attributes (by key or by detector) and counts them."""
    attributes: dict[str, Any] = {"debug.dump": "x", "note": "card 4111 1111 1111 1111", "ok": "fine"}
    Redactor(keys={"debug.*": "drop"}, detectors={"credit_card": "drop"}).redact_attributes(attributes)
    assert attributes == {"ok": "fine"}
    assert stats()["redaction_dropped"] == 2


def test_key_rules_come_first_and_keep_exempts_from_detectors() -> None:
    """User patterns win over built-in names; keep exempts a key from every detector."""
    attributes: dict[str, Any] = {
        "client.address": "203.0.113.9",
        "peer": "203.0.113.9",
        "x-csrf-token": "abc",
    }
    Redactor(detectors={"ip": "redact"}, keys={"client.*": "keep", "*csrf*": "hash"}).redact_attributes(
        attributes
    )
    assert attributes["client.address"] == "203.0.113.9"
    assert attributes["peer"] == "[REDACTED:ipv4]"
    assert attributes["x-csrf-token"].startswith("hmac:")


def test_tenant_id_is_exempt_from_detectors() -> None:
    """tenant.id is never rewritten by a detector (tenant routing reads it after redaction)."""
    attributes: dict[str, Any] = {"tenant.id": "alice@example.com"}
    Redactor(detectors={"email": "redact"}).redact_attributes(attributes)
    assert attributes["tenant.id"] == "alice@example.com"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"detectors": {"ssn": "redact"}}, "unknown detector"),
        ({"detectors": {"email": "mask"}}, "not redact, hash, drop or off"),
        ({"keys": {"x": "erase"}}, "is not one of"),
        ({"hash_key": b"short"}, "at least 16 bytes"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, Any], message: str) -> None:
    """Unknown detectors or actions and short hash keys fail at construction."""
    with pytest.raises(ConfigError, match=message):
        Redactor(**kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user[password]=hunter2&user[name]=bob", "user[password]=[REDACTED:assignment]&user[name]=bob"),
        ('{"password" : "hunter2"}', '{"password" : "[REDACTED:assignment]"}'),
        ("accesstoken=abcdef123456", "accesstoken=[REDACTED:assignment]"),
    ],
)
def test_form_fields_and_pretty_printed_json_are_read_as_assignments(text: str, expected: str) -> None:
    """Rails/PHP form fields (``user[password]=``) and Jackson's ``"key" : value`` hold secrets too."""
    attributes = {"http.request.body": text}
    Redactor().redact_attributes(attributes)
    assert attributes == {"http.request.body": expected}


def test_an_odd_span_name_or_description_does_not_stop_the_redaction(exporter: InMemoryExporter) -> None:
    """An Enum as a span name, an exception as a status description: the batch is still redacted.

    Before, the stage raised on the first such span, the flush caught it, and every span
    after it in the batch was exported with its secrets.
    """
    import enum

    from nexs_serverless import StatusCode

    class Operation(enum.Enum):
        CHARGE = "charge"

    reset(exporters=[exporter])

    @traced_handler
    def handler(event: object, context: object) -> None:
        with tracer.span(Operation.CHARGE):  # type: ignore[arg-type]
            pass
        with tracer.span("other") as span:
            span.set_status(StatusCode.ERROR, ValueError("password=hunter2"))  # type: ignore[arg-type]
        with tracer.span(
            "db", attributes={"db.password": "hunter2", "url.full": "https://x/?api_key=abc123"}
        ):
            pass

    handler({}, LambdaContext())
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert spans["db"].attributes["db.password"] == "[REDACTED]"
    assert spans["db"].attributes["url.full"] == "https://x/?api_key=[REDACTED:assignment]"
    assert spans["other"].status_description == "password=[REDACTED:assignment]"
    assert "Operation.CHARGE" in spans


def test_long_clean_values_are_not_remembered() -> None:
    """The set of values found clean keeps short ones only: 2048 values of 100 KB would be 200 MB."""
    redactor = Redactor()
    for i in range(50):
        redactor.redact_attributes({"payload": f"{i:04d}" + "x=1 " * 25_000})
    assert redactor._clean == set()
    redactor.redact_attributes({"payload": "x=1 short and clean"})
    assert redactor._clean == {"x=1 short and clean"}


def test_capture_judges_each_key_by_its_own_name() -> None:
    """Children of a key that describes a secret (``passwordPolicy``) keep their values and types;
    a key that holds one (``credentials``) is still redacted whole."""
    event = {
        "passwordPolicy": {"minimumLength": 8, "requireSymbols": True},
        "credentials": {"user": "bob", "pass": "hunter2"},
    }
    captured = redact_capture(event, runtime.settings)
    assert isinstance(captured, dict)
    assert captured["passwordPolicy"] == {"minimumLength": 8, "requireSymbols": True}
    assert captured["credentials"] == "[REDACTED]"


def test_key_and_clean_value_caches_are_bounded() -> None:
    """However many distinct keys and values pass, the caches stay within their bounds."""
    redactor = Redactor()
    for i in range(10_000):
        redactor.redact_attributes({f"key.{i}": f"value=number-{i}"})
    assert len(redactor._cache) <= 4096
    assert len(redactor._clean) <= 2048


def test_capture_applies_key_rules_to_json_paths_before_truncation() -> None:
    """A captured event is walked: headers by key, bodies by detector, then serialised and truncated."""
    reset(environ={"NEXS_REDACTION_KEYS": "user.email:hash", "NEXS_REDACTION_HASH_KEY": "k" * 16})
    event = {
        "headers": {"Authorization": "Bearer abcdefghijkl", "Accept": "*/*"},
        "cookies": ["session=abc"],
        "body": json.dumps({"password": "hunter2", "item": 3}),
        "user": {"email": "alice@example.com"},
    }
    out = redact_capture(event, runtime.settings)
    assert out["headers"] == {"Authorization": "[REDACTED]", "Accept": "*/*"}  # type: ignore[index]
    assert list(out["cookies"]) == ["[REDACTED]"]  # type: ignore[index]
    assert json.loads(out["body"]) == {"password": "[REDACTED:assignment]", "item": 3}  # type: ignore[index]
    assert out["user"]["email"].startswith("hmac:")  # type: ignore[index]
    assert event["headers"]["Authorization"] == "Bearer abcdefghijkl"  # type: ignore[index]  # the original is untouched


def test_capture_walk_is_bounded_for_huge_events() -> None:
    """A multi-megabyte event is walked only as far as the capture limit reaches."""
    reset(environ={"NEXS_CAPTURE_MAX_LENGTH": "64"})
    event = {"records": [{"id": i, "data": "x" * 100} for i in range(50_000)]}
    out = redact_capture(event, runtime.settings)
    assert len(json.dumps(out)) < 2_000


def test_captured_secret_cut_by_truncation_never_leaks(exporter: InMemoryExporter) -> None:
    """Redaction runs before truncation, so a key straddling the limit is not half exported."""
    reset(environ={"NEXS_CAPTURE_EVENT": "true", "NEXS_CAPTURE_MAX_LENGTH": "30"}, exporters=[exporter])

    @traced_handler
    def handler(event: object, context: object) -> None:
        return None

    handler({"pad": "xxxxxxxxxx", "note": "AKIAIOSFODNN7EXAMPLE"}, LambdaContext())
    captured = next(s for s in exporter.get_finished_spans() if "nexs.event" in s.attributes).attributes[
        "nexs.event"
    ]
    assert "AKIA" not in captured
    assert captured.startswith('{"pad":"xxxxxxxxxx","note":"[R')


def test_redaction_is_on_by_default_end_to_end(exporter: InMemoryExporter) -> None:
    """Through @traced_handler: attributes, events, status and captures are masked before export."""
    reset(environ={"NEXS_CAPTURE_EVENT": "true", "NEXS_CAPTURE_RESPONSE": "true"}, exporters=[exporter])
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpM"

    @traced_handler
    def handler(event: dict[str, Any], context: object) -> dict[str, str]:
        with tracer.span(
            "call", attributes={"http.request.header.cookie": "sid=1", "url.full": "https://x/?api_key=abc"}
        ):
            pass
        if event.get("fail"):
            raise PermissionError(f"rejected token {jwt}")
        return {"access_token": "t0ken", "ok": "yes"}

    handler({"headers": {"Authorization": f"Bearer {jwt}"}}, LambdaContext())
    with pytest.raises(PermissionError):
        handler({"fail": True}, LambdaContext())
    spans = exporter.get_finished_spans()
    text = repr(
        [
            (s.name, dict(s.attributes), s.status_description, [dict(e.attributes) for e in s.events])
            for s in spans
        ]
    )
    for secret in (jwt, "sid=1", "api_key=abc", "t0ken"):
        assert secret not in text, (secret, text)
    call = next(s for s in spans if s.name == "call")
    assert call.attributes["http.request.header.cookie"] == "[REDACTED]"
    failed = next(s for s in spans if s.status_description)
    assert failed.status_description == "PermissionError: rejected token [REDACTED:jwt]"
    assert failed.events[0].attributes["exception.message"] == "rejected token [REDACTED:jwt]"


def test_environment_configuration_and_its_problems(caplog: pytest.LogCaptureFixture) -> None:
    """Detectors add with name:action and remove with -name; bad items log one line each and are skipped."""
    reset(
        environ={
            "NEXS_REDACTION_DETECTORS": "email:hash, -assignment, ssn, phone:mask",
            "NEXS_REDACTION_KEYS": "user.*:drop,*custom:tenant:keep,plain",
            "NEXS_REDACTION_HASH_KEY": "short",
        }
    )
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        redactor = from_settings(runtime.settings)
    assert redactor is not None
    problems = [r.getMessage() for r in caplog.records]
    assert sum("'ssn'" in p for p in problems) == 1
    assert sum("'phone:mask'" in p for p in problems) == 1
    assert sum("NEXS_REDACTION_HASH_KEY" in p for p in problems) == 1
    attributes: dict[str, Any] = {
        "q": "password=x",
        "note": "alice@example.com",
        "user.name": "al",
        "claims.custom:tenant": "alice@example.com",
        "plain": "v",
    }
    redactor.redact_attributes(attributes)
    assert attributes["q"] == "password=x"  # assignment detector removed
    assert attributes["note"].startswith("hmac:")
    assert "user.name" not in attributes
    assert attributes["claims.custom:tenant"] == "alice@example.com"
    assert attributes["plain"] == "[REDACTED]"


def test_redaction_can_be_turned_off(exporter: InMemoryExporter) -> None:
    """NEXS_REDACTION_ENABLED=false exports values exactly as recorded."""
    reset(environ={"NEXS_REDACTION_ENABLED": "false"}, exporters=[exporter])
    with tracer.span("s", parent=tracer.ROOT, attributes={"password": "hunter2"}):
        pass
    from nexs_serverless import flush

    flush()
    assert exporter.get_finished_spans()[0].attributes["password"] == "hunter2"


_LAZY_DETECTORS = """
import json, sys
from nexs_serverless.redaction import Redactor
from nexs_serverless.span import Span

def span_with(**attributes):
    span = Span()
    span.name = "op"
    span.status_description = None
    span.attributes.update(attributes)
    return span

redactor = Redactor()
clean = span_with(**{"http.route": "/orders/{id}", "order.items": 3, "cloud.region": "eu-west-1"})
redactor([clean])
before = "nexs_serverless.redaction_detectors" in sys.modules
secret = span_with(note="header Bearer abcdefghijklmnopqrstuvwxyz0123456789")
redactor([secret])
print(json.dumps({
    "before": before,
    "after": "nexs_serverless.redaction_detectors" in sys.modules,
    "clean": clean.attributes,
    "note": secret.attributes["note"],
}))
"""


def test_default_detectors_load_at_the_first_value_that_may_hold_a_credential() -> None:
    """Values that pass no trigger test cost no detector module (the first flush stays light)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _LAZY_DETECTORS], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["before"] is False
    assert report["clean"] == {"http.route": "/orders/{id}", "order.items": 3, "cloud.region": "eu-west-1"}
    assert report["after"] is True
    assert "abcdefghijklmnopqrstuvwxyz0123456789" not in report["note"]
    assert "[REDACTED:bearer]" in report["note"]
