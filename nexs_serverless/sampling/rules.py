"""Tail-sampling rules and policies, and the parser that validates them from JSON.

A policy is evaluated once per finished invocation: its rules in order (the
first that matches keeps the invocation and names the decision), otherwise a
fixed ratio or an adaptive target. The configuration document:

    {
      "rules": [
        {"when": "error"},
        {"when": "duration", "above_ms": 1000, "name": "slow"},
        {"when": "cold_start", "ratio": 0.5},
        {"when": "attribute", "key": "http.route", "equals": "/checkout"}
      ],
      "ratio": 0.1,
      "tenants": {"acme": {"ratio": 1.0}, "free-tier": {"target_per_minute": 30}}
    }

A bare list is the same as ``{"rules": [...]}``. Rules:

- ``error``: a span of the invocation (``"span": "root"``: the root only) has status ERROR.
- ``duration``: the root lasted more than ``above_ms``.
- ``cold_start``: the root has ``faas.coldstart`` true.
- ``attribute``: the root's (``"span": "any"``: any span's) attribute ``key``
  satisfies one of ``equals``, ``in`` (a list), ``matches`` (a regex, searched),
  ``above``/``below`` (numbers) or ``exists``.

Every rule takes an optional ``name`` (recorded as ``sampling.rule``) and
``ratio`` (keep that fraction of the matches; the rest go on to later rules).
The fallback is ``ratio`` (default 0.0: like the OpenTelemetry Collector's tail
sampler, an invocation no rule keeps is dropped) or, instead, an adaptive
``target_per_second`` / ``target_per_minute`` (see `adaptive`). ``tenants``
maps a ``tenant.id`` to a whole policy of its own (no nested tenants). With an
adaptive target, errors are always kept (an implicit last ``error`` rule).

Ratios are decided from the trace id (`draw`), so every function of a trace
configured alike keeps or drops the same traces.
"""

from __future__ import annotations

import re
import time

from ..config import ConfigError
from ..model import StatusCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..typing import ReadableSpan
    from .adaptive import AdaptiveRatio

__all__ = ["Policy", "Rule", "draw", "parse"]

_MASK64 = (1 << 64) - 1
_ERROR = StatusCode.ERROR
_RULE_KEYS = {
    "error": {"span"},
    "duration": {"above_ms"},
    "cold_start": set(),
    "attribute": {"key", "equals", "in", "matches", "above", "below", "exists", "span"},
}
_TESTS = ("equals", "in", "matches", "above", "below", "exists")
_POLICY_KEYS = {"rules", "ratio", "target_per_second", "target_per_minute", "tenants"}


def draw(trace_id: int) -> float:
    """A uniform number in [0, 1) that depends only on the trace id.

    The id's two halves are folded and mixed (SplitMix64's finaliser) so the
    result is independent of the head sampler's test on the low 64 bits: head
    ratio a and tail ratio b keep a*b of traces, not min(a, b). X-Ray ids, whose
    high bits are a timestamp, mix as well as random ones.
    """
    z = ((trace_id >> 64) ^ trace_id) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return z / 18446744073709551616.0


class Rule:
    """One keep condition; `test` is called with the root and the invocation's spans."""

    __slots__ = ("name", "ratio", "test")

    def __init__(
        self,
        name: str,
        test: Callable[[ReadableSpan, Sequence[ReadableSpan]], bool],
        ratio: float = 1.0,
    ) -> None:
        self.name = name
        self.test = test
        self.ratio = ratio


class Policy:
    """Rules in order, then a ratio or an adaptive target.

    Args:
        rules: evaluated in order; the first match (within its ratio) keeps.
        ratio: fraction of the other invocations kept (ignored with `adaptive`).
        adaptive: keeps a target rate instead of a fixed ratio.
    """

    __slots__ = ("adaptive", "ratio", "rules")

    def __init__(
        self, rules: Sequence[Rule], ratio: float = 0.0, adaptive: AdaptiveRatio | None = None
    ) -> None:
        self.rules = tuple(rules)
        self.ratio = ratio
        self.adaptive = adaptive

    def decide(self, root: ReadableSpan, members: Sequence[ReadableSpan]) -> tuple[str, float] | None:
        """``(rule name, its ratio)`` when the invocation is kept, None when dropped."""
        u = draw(root.trace_id)
        for rule in self.rules:
            if rule.test(root, members) and u < rule.ratio:
                if self.adaptive is not None:
                    self.adaptive.note_forced()
                return rule.name, rule.ratio
        if self.adaptive is not None:
            ratio = self.adaptive.offer(u)
            return ("adaptive", ratio) if ratio else None
        return ("ratio", self.ratio) if u < self.ratio else None


# -- parsing -----------------------------------------------------------------------


def parse(
    document: object, *, clock: Callable[[], float] = time.monotonic
) -> tuple[Policy, dict[str, Policy]]:
    """The default policy and the per-tenant ones, from a parsed JSON document.

    Raises:
        ConfigError: naming the place (``rules[2].above_ms``) and what is accepted.
    """
    if isinstance(document, list):
        document = {"rules": document}
    if not isinstance(document, dict):
        raise ConfigError("tail sampling rules: expected an object or a list of rules")
    tenants_doc = document.get("tenants", {})
    if not isinstance(tenants_doc, dict):
        raise ConfigError("tenants: expected an object mapping tenant ids to policies")
    policy = _policy(document, "", clock, allow_tenants=True)
    tenants = {
        str(tenant): _policy(sub, f"tenants.{tenant}.", clock, allow_tenants=False, label=str(tenant))
        for tenant, sub in tenants_doc.items()
    }
    return policy, tenants


def _policy(
    doc: object, where: str, clock: Callable[[], float], *, allow_tenants: bool, label: str = ""
) -> Policy:
    if isinstance(doc, list):
        doc = {"rules": doc}
    if not isinstance(doc, dict):
        raise ConfigError(f"{where or 'policy'}: expected an object")
    allowed = _POLICY_KEYS if allow_tenants else _POLICY_KEYS - {"tenants"}
    _no_unknown(doc, allowed, where.rstrip(".") or "policy")
    rules_doc = doc.get("rules", [])
    if not isinstance(rules_doc, list):
        raise ConfigError(f"{where}rules: expected a list")
    rules = [_rule(item, f"{where}rules[{i}]") for i, item in enumerate(rules_doc)]
    targets = [key for key in ("target_per_second", "target_per_minute") if key in doc]
    if len(targets) > 1 or (targets and "ratio" in doc):
        raise ConfigError(f"{where or 'policy'}: give one of ratio, target_per_second, target_per_minute")
    adaptive = None
    if targets:
        per_s = _number(doc[targets[0]], f"{where}{targets[0]}", minimum=0.0, maximum=1e6)
        if targets[0] == "target_per_minute":
            per_s /= 60.0
        from .adaptive import AdaptiveRatio

        adaptive = AdaptiveRatio(per_s, clock=clock, label=label)
        # An adaptive target never costs an error: errors no earlier rule kept are kept here.
        rules.append(Rule("error", _any_error))
    ratio = _number(doc.get("ratio", 0.0), f"{where}ratio", minimum=0.0, maximum=1.0)
    return Policy(rules, ratio, adaptive)


def _rule(doc: object, where: str) -> Rule:
    if not isinstance(doc, dict):
        raise ConfigError(f'{where}: expected an object such as {{"when": "error"}}')
    when = doc.get("when")
    if not isinstance(when, str) or when not in _RULE_KEYS:  # a list or object is unhashable
        raise ConfigError(f"{where}.when: {when!r} is not one of {', '.join(_RULE_KEYS)}")
    _no_unknown(doc, _RULE_KEYS[when] | {"when", "name", "ratio"}, where)
    ratio = _number(doc.get("ratio", 1.0), f"{where}.ratio", minimum=0.0, maximum=1.0)
    name = doc.get("name", when)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: expected a non-empty string")
    any_span = _scope(doc, where, default="any" if when == "error" else "root")
    test: Callable[[ReadableSpan, Sequence[ReadableSpan]], bool]
    if when == "error":
        test = _any_error if any_span else _root_error
    elif when == "duration":
        if "above_ms" not in doc:
            raise ConfigError(f"{where}.above_ms: required for a duration rule")
        bound_ns = int(_number(doc["above_ms"], f"{where}.above_ms", minimum=0.0, maximum=1e9) * 1e6)
        test = lambda root, members: root.end_ns - root.start_ns > bound_ns  # noqa: E731
    elif when == "cold_start":
        test = _cold_start
    else:
        test = _attribute_test(doc, where, any_span)
    return Rule(name, test, ratio)


def _attribute_test(
    doc: dict[str, object], where: str, any_span: bool
) -> Callable[[ReadableSpan, Sequence[ReadableSpan]], bool]:
    key = doc.get("key")
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}.key: expected an attribute key")
    tests = [name for name in _TESTS if name in doc]
    if len(tests) != 1:
        raise ConfigError(f"{where}: give exactly one of {', '.join(_TESTS)}")
    kind = tests[0]
    expected = doc[kind]
    check: Callable[[object], bool]
    if kind == "equals":
        if not isinstance(expected, (str, int, float, bool)):
            raise ConfigError(f"{where}.equals: expected a string, number or boolean")
        check = lambda value: _same(value, expected)  # noqa: E731
    elif kind == "in":
        if not isinstance(expected, list) or not expected:
            raise ConfigError(f"{where}.in: expected a non-empty list")
        allowed = list(expected)
        check = lambda value: any(_same(value, item) for item in allowed)  # noqa: E731
    elif kind == "matches":
        if not isinstance(expected, str):
            raise ConfigError(f"{where}.matches: expected a regular expression")
        try:
            pattern = re.compile(expected)
        # "a{4294967296}" overflows, "((((...": recursion; either escaped the parser and broke every flush
        except (re.error, OverflowError, RecursionError) as exc:
            raise ConfigError(f"{where}.matches: invalid regular expression ({exc})") from None
        check = lambda value: type(value) is str and pattern.search(value) is not None  # noqa: E731
    elif kind in ("above", "below"):
        bound = _number(expected, f"{where}.{kind}", minimum=float("-inf"), maximum=float("inf"))
        # Compared, never subtracted: an int past a float's range (10**400) compares exactly, while
        # `value - bound` raised OverflowError and failed the stage for the whole batch.
        above = kind == "above"
        check = lambda value: (  # noqa: E731
            type(value) in (int, float) and (value > bound if above else value < bound)  # type: ignore[operator]
        )
    else:
        if expected is not True:
            raise ConfigError(f"{where}.exists: only true is accepted")
        check = lambda value: True  # noqa: E731
    missing = object()

    def test(root: ReadableSpan, members: Sequence[ReadableSpan]) -> bool:
        for span in members if any_span else (root,):
            value = span.attributes.get(key, missing)
            if value is not missing and check(value):
                return True
        return False

    return test


def _same(value: object, expected: object) -> bool:
    """Equal, and both booleans or neither: in Python ``True == 1``, in JSON and in attributes not."""
    return value == expected and (type(value) is bool) is (type(expected) is bool)


def _any_error(root: ReadableSpan, members: Sequence[ReadableSpan]) -> bool:
    return any(span.status_code == _ERROR for span in members)


def _root_error(root: ReadableSpan, members: Sequence[ReadableSpan]) -> bool:
    return root.status_code == _ERROR


def _cold_start(root: ReadableSpan, members: Sequence[ReadableSpan]) -> bool:
    return root.attributes.get("faas.coldstart") is True


def _scope(doc: dict[str, object], where: str, default: str) -> bool:
    scope = doc.get("span", default)
    if scope not in ("root", "any"):
        raise ConfigError(f"{where}.span: {scope!r} is not root or any")
    return scope == "any"


def _number(value: object, where: str, *, minimum: float, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value <= maximum:
        bounds = f" from {minimum:g} to {maximum:g}" if minimum > float("-inf") else ""
        raise ConfigError(f"{where}: expected a number{bounds}, got {value!r}")
    return float(value)


def _no_unknown(doc: dict[str, object], allowed: set[str], where: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(sorted(allowed))}"
        )
