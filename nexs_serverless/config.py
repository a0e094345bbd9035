"""Settings: the only module that reads `os.environ`.

The environment is parsed once into a `Settings` object (slotted, immutable
by convention, replaced as a whole by `configure`). Precedence is code, then
environment, then default. A bad environment value never stops the function:
it is reported as one line naming the variable, the value and what is
accepted, and that setting falls back, as if the variable were unset (the
general ``OTEL_ATTRIBUTE_COUNT_LIMIT`` behind a bad span-specific one, else
the default). In a comma list, only the bad items are dropped: a typo in
``OTEL_TRACES_EXPORTER=otlp,jaegr`` must not cost the ``otlp`` export. Values
of credential variables (``*_HEADERS``, keys, tokens) are never shown.
Bad values passed in code raise `ConfigError` at once, because that is a
bug the developer can fix.

Environment variables (OpenTelemetry's names where the meaning is the same;
README's configuration table gives each one's meaning):

- ``OTEL_SDK_DISABLED`` / ``NEXS_DISABLED`` (false): kill switch.
- ``OTEL_SERVICE_NAME`` (the function name), ``OTEL_RESOURCE_ATTRIBUTES``.
- ``OTEL_TRACES_EXPORTER`` (console), ``OTEL_TRACES_SAMPLER`` (parentbased_always_on)
  and ``OTEL_TRACES_SAMPLER_ARG`` (1.0), ``OTEL_PROPAGATORS`` (tracecontext,baggage,xray).
- ``OTEL_[SPAN_]ATTRIBUTE_COUNT_LIMIT``, ``OTEL_[SPAN_]ATTRIBUTE_VALUE_LENGTH_LIMIT``,
  ``OTEL_SPAN_EVENT_COUNT_LIMIT``, ``OTEL_SPAN_LINK_COUNT_LIMIT``,
  ``OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT``, ``OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`` (128; length unlimited;
  ``OTEL_ATTRIBUTE_COUNT_LIMIT`` stands in for the span, event and link attribute counts).
- ``NEXS_SPAN_POOL_SIZE`` (32, at most 65536), ``NEXS_MAX_BUFFERED_SPANS`` (4096),
  ``NEXS_FLUSH_TIMEOUT_MS`` (1000), ``NEXS_FLUSH_SAFETY_MARGIN_MS`` (50),
  ``NEXS_TIMEOUT_GUARD_MS`` (250), ``NEXS_PROACTIVE_INIT_MS`` (10000),
  ``NEXS_CAPTURE_EVENT`` / ``NEXS_CAPTURE_RESPONSE`` (false), ``NEXS_CAPTURE_MAX_LENGTH`` (4096).
- ``NEXS_FLUSH_MODE`` (return): ``after_response`` exports after Lambda has the response
  (an internal extension, see `nexs_serverless.extension`).
"""

from __future__ import annotations

import os
import sys

from .attributes import SpanLimits

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["ConfigError", "Problem", "Reader", "Settings", "from_env", "load", "report"]


class ConfigError(ValueError):
    """A configuration value passed in code is invalid."""


class Problem:
    """One environment value that could not be used, and what was used instead."""

    __slots__ = ("expected", "fallback", "value", "variable")

    def __init__(self, variable: str, value: str, expected: str, fallback: object) -> None:
        self.variable = variable
        self.value = value
        self.expected = expected
        self.fallback = fallback

    def __str__(self) -> str:
        shown = _shown(self.variable, self.value)
        return f"invalid {self.variable}={shown!r} (expected {self.expected}); using {self.fallback!r}"


# Variables whose values are credentials or may hold some (an API key in a header): a problem
# shows their header names at most. NEXS_TENANT_EXPORTERS and NEXS_REDACTION_HASH_KEY mask their own.
_SECRET_SUFFIXES = (
    "_HEADERS",
    "_CLIENT_KEY",
    "_API_KEY",
    "_CONNECTION_STRING",
    "_TOKEN",
    "_SECRET",
    "_PASSWORD",
    "_CREDENTIALS",
)
_SHOWN_CHARACTERS = 200  # of a value in a problem line: an 8 KB typo is one short line, not a page


def _shown(variable: str, value: str) -> str:
    """`value` as a problem line may show it: masked for a credential variable, else clipped."""
    if variable.endswith(_SECRET_SUFFIXES):
        if not variable.endswith("_HEADERS"):
            return f"<{len(value)} characters, not shown>"
        # Header names say which header is wrong; a value, or an item without "=", may be a key.
        items = (item.partition("=") for item in value.split(","))
        value = ",".join(f"{name.strip()}=<hidden>" if sep else "<hidden>" for name, sep, _ in items)
    if len(value) > _SHOWN_CHARACTERS:
        return f"{value[:_SHOWN_CHARACTERS]}... ({len(value)} characters)"
    return value


class Settings:
    """Every setting of the layer, parsed once. Build with `load`, change with `replace`."""

    __slots__ = (
        "capture_event",
        "capture_max_length",
        "capture_response",
        "disabled",
        "environ",
        "exporters",
        "flush_mode",
        "flush_safety_margin_ms",
        "flush_timeout_ms",
        "limits",
        "max_buffered_spans",
        "pool_size",
        "proactive_init_ms",
        "propagators",
        "resource_attributes",
        "sampler",
        "sampler_arg",
        "service_name",
        "timeout_guard_ms",
    )

    disabled: bool
    service_name: str | None
    resource_attributes: dict[str, str]
    exporters: tuple[str, ...]
    sampler: str
    sampler_arg: float
    propagators: tuple[str, ...]
    limits: SpanLimits
    pool_size: int
    max_buffered_spans: int
    flush_timeout_ms: int
    flush_safety_margin_ms: int
    flush_mode: str
    timeout_guard_ms: int
    proactive_init_ms: int
    capture_event: bool
    capture_response: bool
    capture_max_length: int
    environ: Mapping[str, str]

    def __init__(self, **values: object) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def replace(self, **changes: object) -> Settings:
        """A copy with `changes` applied; unknown names raise `ConfigError`."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return Settings(**values)

    def env(self, name: str, default: str = "") -> str:
        """A raw environment value captured at load time (platform facts such as AWS_REGION)."""
        return self.environ.get(name, default)


class Reader:
    """Reads typed values from one environment snapshot and collects problems.

    Areas with settings of their own (exporters, sampling, redaction) parse
    them with a `Reader` over `Settings.environ` (the snapshot, never
    `os.environ`), then pass `problems` to `report`.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[Problem] = []

    def _raw(self, *names: str) -> tuple[str, str] | None:
        for name in names:
            value = self.environ.get(name)
            if value is not None and value.strip() != "":
                return name, value.strip()
        return None

    def _problem(self, name: str, raw: str, expected: str, fallback: object) -> None:
        # A variable read for several settings (OTEL_ATTRIBUTE_COUNT_LIMIT) is reported once.
        if not any(problem.variable == name for problem in self.problems):
            self.problems.append(Problem(name, raw, expected, fallback))

    def _parse(
        self, names: tuple[str, ...], default: object, expected: str, parse: Callable[[str], object]
    ) -> object:
        """The first of `names` set to a usable value, else `default`; each bad one a problem.

        A bad value counts as unset, as OpenTelemetry's configuration spec
        asks: the next name (the general ``OTEL_ATTRIBUTE_COUNT_LIMIT`` behind
        ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``) still applies.
        """
        bad: list[tuple[str, str, str]] = []
        value = default
        for name in names:
            raw = self.environ.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                value = parse(raw.strip())
                break
            except (ValueError, TypeError) as exc:
                bad.append((name, raw.strip(), exc.expected if isinstance(exc, _RangeError) else expected))
        for name, raw, wanted in bad:
            self._problem(name, raw, wanted, value)
        return value

    def boolean(self, *names: str, default: bool) -> bool:
        """The first set variable of `names` as true/false/1/0/yes/no/on/off."""

        def parse(raw: str) -> bool:
            lowered = raw.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(raw)

        return bool(self._parse(names, default, "true or false", parse))

    def integer(self, *names: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        """The first set variable of `names` as an integer >= `minimum` (and <= `maximum`, if given).

        Without a `maximum`, `LARGEST_INTEGER` bounds the value.
        """

        def parse(raw: str) -> int:
            value = int(raw) if maximum is not None else _bounded(int(raw), minimum)
            if value < minimum or (maximum is not None and value > maximum):
                raise ValueError(raw)
            return value

        expected = f"an integer >= {minimum}"
        if maximum is not None:
            expected = f"an integer from {minimum} to {maximum}"
        value: int = self._parse(names, default, expected, parse)  # type: ignore[assignment]
        return value

    def optional_integer(self, *names: str, minimum: int = 0) -> int | None:
        """Like `integer`, with None when no variable is set."""

        def parse(raw: str) -> int:
            value = _bounded(int(raw), minimum)
            if value < minimum:
                raise ValueError(raw)
            return value

        result = self._parse(names, None, f"an integer >= {minimum}", parse)
        return None if result is None else int(result)  # type: ignore[call-overload]

    def number(self, *names: str, default: float, minimum: float, maximum: float) -> float:
        """The first set variable of `names` as a float within [`minimum`, `maximum`]."""

        def parse(raw: str) -> float:
            value = float(raw)
            if not minimum <= value <= maximum:
                raise ValueError(raw)
            return value

        return float(self._parse(names, default, f"a number from {minimum} to {maximum}", parse))  # type: ignore[arg-type]

    def choice(self, *names: str, default: str, choices: tuple[str, ...]) -> str:
        """The first set variable of `names`, lower-cased, one of `choices`."""

        def parse(raw: str) -> str:
            lowered = raw.lower()
            if lowered not in choices:
                raise ValueError(raw)
            return lowered

        return str(self._parse(names, default, "one of " + ", ".join(choices), parse))

    def names(self, *names: str, default: tuple[str, ...], choices: tuple[str, ...]) -> tuple[str, ...]:
        """The first set variable of `names` as a comma list of `choices`, lower-cased, each once.

        An unknown item is reported and dropped, the others kept; `default` only
        when none is left. A repeated item counts once: ``otlp,otlp`` built two
        exporters, and every span went out twice.
        """
        found = self._raw(*names)
        if found is None:
            return default
        name, raw = found
        items = tuple(dict.fromkeys(item.strip().lower() for item in raw.split(",") if item.strip()))
        known = tuple(item for item in items if item in choices) or default
        if len(known) != len(items) or known is default:
            self._problem(name, raw, "a comma list of " + ", ".join(choices), known)
        return known

    def key_values(self, *names: str) -> dict[str, str]:
        """``k=v,k2=v2`` pairs, percent-decoded (the ``OTEL_RESOURCE_ATTRIBUTES`` format).

        An item that is not a pair is reported and skipped, the other pairs
        kept (as OpenTelemetry's SDK does): one stray comma must not drop every
        resource attribute, or the API key among the OTLP headers.
        """
        found = self._raw(*names)
        if found is None:
            return {}
        from urllib.parse import unquote

        name, raw = found
        out: dict[str, str] = {}
        bad = False
        for item in raw.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                bad = True
                continue
            out[unquote(key.strip())] = unquote(value.strip())
        if bad:
            # The names only: the values may be credentials (OTEL_EXPORTER_OTLP_HEADERS).
            kept = "the pairs " + ", ".join(out) if out else "none"
            self._problem(name, raw, "comma-separated key=value pairs", kept)
        return out


class _RangeError(ValueError):
    """A value that parses but is out of range, with what is accepted instead."""

    def __init__(self, raw: str, expected: str) -> None:
        super().__init__(raw)
        self.expected = expected


# No setting needs an integer above a trillion (31 years in milliseconds, a terabyte in bytes):
# such a value is a typo. It also keeps every duration in seconds below what a lock or socket
# can wait, and 10**400 ms made `/ 1000` raise OverflowError, so the exporter was never built.
LARGEST_INTEGER = 10**12


def _bounded(value: int, minimum: int) -> int:
    if value > LARGEST_INTEGER:
        raise _RangeError(str(value), f"an integer from {minimum} to {LARGEST_INTEGER}")
    return value


EXPORTER_NAMES = (
    "console",
    "otlp",
    "otlp_proto_http",
    "otlp_proto_grpc",
    "xray",
    "gcp_trace",
    "azure_monitor",
    "file",
    "memory",
    "none",
)
SAMPLER_NAMES = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
FLUSH_MODES = ("return", "after_response")
_HOUR_MS = 3_600_000
_DEFAULT_POOL_SIZE = 32
# Span records allocated at import, at most: 16 times the default buffer bound, about 0.4 s and 16 MB.
MAX_POOL_SIZE = 65_536
PROPAGATOR_NAMES = (
    "tracecontext",
    "baggage",
    "xray",
    "xray-lambda",
    "b3",
    "b3multi",
    "cloud_trace",
    "gcp",
    "request_id",
    "none",
)


def load(environ: Mapping[str, str] | None = None) -> tuple[Settings, list[Problem]]:
    """Parse `environ` (default `os.environ`) into settings plus the problems found."""
    env = _environ_snapshot() if environ is None else dict(environ)
    r = Reader(env)
    limits = SpanLimits(
        attribute_count=r.integer(
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT", default=128
        ),
        event_count=r.integer("OTEL_SPAN_EVENT_COUNT_LIMIT", default=128),
        link_count=r.integer("OTEL_SPAN_LINK_COUNT_LIMIT", default=128),
        attribute_value_length=r.optional_integer(
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", minimum=1
        ),
        # The general limit applies to events' and links' attributes too, as in OpenTelemetry's SDK.
        event_attribute_count=r.integer(
            "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT", default=128
        ),
        link_attribute_count=r.integer(
            "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT", default=128
        ),
    )
    # Both read, so that a bad value of either is reported even when the other disables.
    disabled = r.boolean("OTEL_SDK_DISABLED", default=False)
    disabled = r.boolean("NEXS_DISABLED", default=False) or disabled
    settings = Settings(
        disabled=disabled,
        service_name=env.get("OTEL_SERVICE_NAME", "").strip() or None,  # blank is unset
        resource_attributes=r.key_values("OTEL_RESOURCE_ATTRIBUTES"),
        exporters=r.names("OTEL_TRACES_EXPORTER", default=("console",), choices=EXPORTER_NAMES),
        sampler=r.choice("OTEL_TRACES_SAMPLER", default="parentbased_always_on", choices=SAMPLER_NAMES),
        sampler_arg=r.number("OTEL_TRACES_SAMPLER_ARG", default=1.0, minimum=0.0, maximum=1.0),
        propagators=r.names(
            "OTEL_PROPAGATORS", default=("tracecontext", "baggage", "xray"), choices=PROPAGATOR_NAMES
        ),
        limits=limits,
        pool_size=_pool_size(r),
        max_buffered_spans=r.integer("NEXS_MAX_BUFFERED_SPANS", default=4096, minimum=1),
        # An hour at most: longer than any platform lets an invocation run (Lambda 15 min, Cloud
        # Functions 60 min); a larger value is a typo, and past ~292 years `Lock.acquire` overflows.
        flush_timeout_ms=r.integer("NEXS_FLUSH_TIMEOUT_MS", default=1000, minimum=1, maximum=_HOUR_MS),
        flush_safety_margin_ms=r.integer("NEXS_FLUSH_SAFETY_MARGIN_MS", default=50, maximum=_HOUR_MS),
        flush_mode=r.choice("NEXS_FLUSH_MODE", default="return", choices=FLUSH_MODES),
        timeout_guard_ms=r.integer("NEXS_TIMEOUT_GUARD_MS", default=250, maximum=_HOUR_MS),
        proactive_init_ms=r.integer("NEXS_PROACTIVE_INIT_MS", default=10_000, minimum=1),
        capture_event=r.boolean("NEXS_CAPTURE_EVENT", default=False),
        capture_response=r.boolean("NEXS_CAPTURE_RESPONSE", default=False),
        capture_max_length=r.integer("NEXS_CAPTURE_MAX_LENGTH", default=4096, minimum=16),
        environ=env,
    )
    return settings, r.problems


def _pool_size(r: Reader) -> int:
    """``NEXS_SPAN_POOL_SIZE``, at most `MAX_POOL_SIZE`.

    The pool is allocated at import: a typo such as a million records took
    8 s and 270 MB before the function's own code ran. Checked apart from
    `Reader.integer` so that a negative value keeps its own message.
    """
    raw = r.environ.get("NEXS_SPAN_POOL_SIZE", "").strip()
    too_large = False
    if raw:  # even past `LARGEST_INTEGER`, the pool's own limit is the one to name
        try:
            too_large = int(raw) > MAX_POOL_SIZE
        except ValueError:  # not an integer: `Reader.integer` tells
            pass
    if too_large:
        expected = f"an integer from 0 to {MAX_POOL_SIZE}"
        r.problems.append(Problem("NEXS_SPAN_POOL_SIZE", raw, expected, _DEFAULT_POOL_SIZE))
        return _DEFAULT_POOL_SIZE
    return r.integer("NEXS_SPAN_POOL_SIZE", default=_DEFAULT_POOL_SIZE)


def report(problems: list[Problem]) -> None:
    """Log each problem as one warning line naming the variable, the value and the fallback.

    Once per process for each variable and value (`_guard.warn_once`): every
    `configure()` reads the environment again, and repeated the same lines.
    ``config check`` forgets what was logged, so it sees every problem.
    """
    if not problems:
        return
    # Only with something to say: outside Lambda's runtime, `logging` (which `_guard` imports)
    # costs ~10 ms.
    from . import _guard as guard

    for problem in problems:
        guard.warn_once(f"config:{problem.variable}={problem.value}", "nexs_serverless: %s", problem)


def _environ_snapshot() -> dict[str, str]:
    """`dict(os.environ)`, decoded in one pass where CPython keeps the raw bytes.

    ``dict(os.environ)`` runs four Python-level calls per variable (its iterator,
    ``__getitem__`` and two decodes); a Lambda environment has about 40, and this
    runs at every cold start. The bytes mapping behind `os.environ` on POSIX
    decodes the same way (the file-system encoding, ``surrogateescape``).
    """
    data = getattr(os.environ, "_data", None)
    if os.name != "posix" or type(data) is not dict:
        return dict(os.environ)
    encoding = sys.getfilesystemencoding()
    return {
        key.decode(encoding, "surrogateescape"): value.decode(encoding, "surrogateescape")
        for key, value in data.items()
    }


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Like `load`, but each problem is logged as one warning line."""
    settings, problems = load(environ)
    report(problems)
    return settings


def read_env(name: str) -> str:
    """The live value of a per-invocation variable (``_X_AMZN_TRACE_ID``), or ''.

    Lambda's runtime rewrites some variables for every invocation, so they
    cannot come from the snapshot taken at load time.
    """
    return os.environ.get(name, "")
