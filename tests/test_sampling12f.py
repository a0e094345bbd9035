"""Review 12, sampling and tenancy: tail-sampling rules that broke every flush or the stage, typed
attribute matching, and tenant settings that were used wrongly or ignored without a word."""

from __future__ import annotations

import json
import logging

import pytest
from support.tail_spans import FakeSpan

from nexs_serverless import ConfigError, baggage, config, flush, propagation, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.sampling.rules import parse
from nexs_serverless.sampling.tail import TailSampler
from nexs_serverless.tenancy import route_exporters
from nexs_serverless.testing import LambdaContext, reset

HTTP = {"requestContext": {"http": {"method": "GET", "path": "/"}}}
_UNUSABLE_RULES = [
    ([{"when": ["error"]}], "rules[0].when"),
    ([{"when": {"kind": "error"}}], "rules[0].when"),
    ([{"when": "attribute", "key": "k", "matches": "a{4294967296}"}], "rules[0].matches"),
    ([{"when": "attribute", "key": "k", "matches": "(" * 5000 + ")" * 5000}], "rules[0].matches"),
]


def _root(trace_id: int, **attributes: object) -> FakeSpan:
    return FakeSpan(trace_id, trace_id, attributes={"faas.trigger": "other", **attributes})


@pytest.mark.parametrize(("document", "place"), _UNUSABLE_RULES)
def test_an_unusable_when_or_regex_is_a_config_error_naming_its_place(document: object, place: str) -> None:
    """A list or object as ``when`` (unhashable) and a regex that overflows or recurses are ConfigErrors."""
    with pytest.raises(ConfigError, match=place.replace("[", r"\[")):
        parse(document)


@pytest.mark.parametrize(("document", "place"), _UNUSABLE_RULES)
def test_unusable_rules_keep_every_span_and_name_the_variable(
    document: object, place: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Such rules turn tail sampling off with one warning; they failed every flush, losing its spans."""
    memory = InMemoryExporter()
    reset(environ={"NEXS_TAIL_SAMPLING_RULES": json.dumps(document)}, exporters=[memory])
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        for _ in range(2):
            with tracer.span("invocation", parent=tracer.ROOT, attributes={"faas.trigger": "other"}):
                pass
            flush()
    assert len(memory.get_finished_spans()) == 2
    (message,) = [r.getMessage() for r in caplog.records if "NEXS_TAIL_SAMPLING_RULES" in r.getMessage()]
    assert place in message


def test_above_and_below_compare_integers_beyond_a_floats_range() -> None:
    """10**400 is above 5 and -10**400 below it: the comparison raised OverflowError and failed the stage."""
    stage = TailSampler.from_document(
        {
            "rules": [
                {"when": "attribute", "key": "n", "above": 5, "name": "big"},
                {"when": "attribute", "key": "n", "below": -5, "name": "small"},
            ]
        }
    )
    huge, tiny, plain = _root(11, n=10**400), _root(12, n=-(10**400)), _root(13, n=1)
    kept = stage([huge, tiny, plain])  # type: ignore[list-item]
    assert kept == [huge, tiny]
    assert [span.attributes["sampling.rule"] for span in kept] == ["big", "small"]


@pytest.mark.parametrize(
    ("test", "matching", "look_alike"),
    [
        ({"equals": True}, True, 1),
        ({"equals": 1}, 1.0, True),
        ({"equals": False}, False, 0),
        ({"in": [0, "off"]}, 0, False),
        ({"in": [True]}, True, 1),
    ],
)
def test_equals_and_in_tell_booleans_from_numbers(
    test: dict[str, object], matching: object, look_alike: object
) -> None:
    """``equals: true`` keeps a true attribute, not a 1 (in Python ``True == 1``); 1 still equals 1.0."""
    policy, _ = parse([{"when": "attribute", "key": "k", **test}])
    kept = _root(21, k=matching)
    other = _root(22, k=look_alike)
    assert policy.decide(kept, [kept]) == ("attribute", 1.0)
    assert policy.decide(other, [other]) is None


@pytest.mark.parametrize("raw", ["x" * 129, "acme\x07", "acme\nbeta"])
def test_an_unusable_default_tenant_is_named_in_a_warning(raw: str, caplog: pytest.LogCaptureFixture) -> None:
    """``NEXS_TENANT_DEFAULT`` too long or with control characters: one warning naming it, and no tenant."""
    memory = InMemoryExporter()
    reset(environ={"NEXS_TENANT_DEFAULT": raw}, exporters=[memory])

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        handler(HTTP, LambdaContext())
        handler(HTTP, LambdaContext())
    (message,) = [r.getMessage() for r in caplog.records if "NEXS_TENANT_DEFAULT" in r.getMessage()]
    assert "no default tenant" in message
    assert [span.attributes.get("tenant.id") for span in memory.get_finished_spans()] == [None, None]


def test_a_tenant_env_value_that_is_not_text_is_refused_not_made_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``"env": {"OTEL_EXPORTER_OTLP_ENDPOINT": null}`` became the endpoint "None", which fell back to
    localhost:4318 (in Lambda, the operator's collector extension): the tenant's exporter is now not built."""
    table = {
        "acme": {"exporter": "otlp", "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": None}},
        "beta": {
            "exporter": "otlp",
            "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://beta.example", "X": ["a"]},
        },
        "gamma": {
            "exporter": "otlp",
            "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gamma.example", "N": 5},
        },
    }
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        (router,) = route_exporters([], config.from_env({"NEXS_TENANT_EXPORTERS": json.dumps(table)}))
    assert [len(router.routes[tenant]) for tenant in ("acme", "beta", "gamma")] == [0, 0, 1]  # type: ignore[attr-defined]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "env OTEL_EXPORTER_OTLP_ENDPOINT: expected a string" in messages
    assert "env X: expected a string" in messages
    assert "localhost" not in messages


def test_a_tenant_endpoint_does_not_inherit_the_operators_insecure_setting() -> None:
    """The operator's OTEL_EXPORTER_OTLP_INSECURE (for its local collector) made a tenant's scheme-less
    gRPC endpoint plain text; a tenant naming its endpoint now uses TLS unless its env says otherwise."""
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "NEXS_TENANT_EXPORTERS": json.dumps(
            {
                "acme": {
                    "exporter": "otlp_proto_grpc",
                    "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "acme.example:4317"},
                },
                "lab": {
                    "exporter": "otlp_proto_grpc",
                    "env": {
                        "OTEL_EXPORTER_OTLP_ENDPOINT": "lab.internal:4317",
                        "OTEL_EXPORTER_OTLP_INSECURE": "true",
                    },
                },
                "same": "otlp_proto_grpc",
            }
        ),
    }
    (router,) = route_exporters([], config.from_env(environ))
    acme, lab, same = (router.routes[t][0].inner for t in ("acme", "lab", "same"))  # type: ignore[attr-defined]
    assert (acme.target, acme.secure) == ("acme.example:4317", True)
    assert (lab.target, lab.secure) == ("lab.internal:4317", False)
    assert (same.target, same.secure) == ("localhost:4317", False)  # no env: the function's own exporter


def test_a_value_utf8_cannot_carry_does_not_cost_the_whole_baggage_header() -> None:
    """A lone surrogate (``json.loads('"\\ud800"')``) becomes U+FFFD: it made the header unencodable,
    and every outgoing call lost all its baggage."""
    try:
        baggage.set("user", json.loads('"a\\ud800b"'))
        baggage.set("region", "eu")
        headers: dict[str, str] = {}
        with tracer.span("call", parent=tracer.ROOT):
            propagation.inject(headers)
        assert headers["baggage"] == "user=a%EF%BF%BDb,region=eu"
        assert baggage.get("user") == "a\ufffdb"
    finally:
        baggage.clear()  # the context variable outlives the test: the suite's reset does not clear it
