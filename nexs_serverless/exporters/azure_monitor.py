"""`AzureMonitorExporter`: spans to Application Insights through azure-monitor-opentelemetry-exporter.

The Azure SDK's `AzureMonitorTraceExporter` is an OpenTelemetry SDK exporter:
our spans are converted with `otel_sdk.to_readable_span`, and its own mapping
turns them into Application Insights envelopes (requests, dependencies,
exceptions, ...). The envelopes are then sent with the SDK's ingestion client
(``client.track``) rather than its ``export()``, because ``export()`` swallows
the HTTP status the retry and breaker logic needs: here each failure is
classified (401/403 AUTH, 429 THROTTLED with ``Retry-After``, 5xx SERVER,
connection errors NETWORK, read timeouts TIMEOUT), the call gets the time left
in the flush budget, and the Azure pipeline's own retries are switched off
(``retry_total=0``; the resilience layer decides). A partial success (HTTP 206)
counts the spans whose items the service refused for good (400, 402, ...) as
rejected; items it refused with a status the SDK would retry (408, 429, 5xx)
are a failure of that class naming their spans as undelivered, with exactly
those items, so a retry in the flush sends only them (a span carried over to a
later flush is converted again: its accepted items then arrive twice). Items
"Telemetry sampled out." by ingestion sampling were accepted, not refused.
A span kept by tail sampling with ``sampling.probability`` p gives its
trace's items of the batch ``sampleRate`` 100·p (what the SDK reads from
``_MS.sampleRate``), so Application Insights counts each as 1/p items.

A redirect (307/308, which the SDK's pipeline leaves to its caller) is
followed as the SDK's own ``export()`` follows it, between hosts under one of
Azure Monitor's ingestion domains (or to the same endpoint), the new host kept
for later calls; the calls share one budget. Another port on the same host,
or any other host, is not followed (BAD_REQUEST, naming the ``Location``). A
span the SDK's mapping fails on is left out and counted
(``spans_dropped_serialization``), not the batch, and reported as dropped
(`base.Sent`); a failed call names the spans still to send, with their items,
so that a retry neither converts them again nor counts a left-out one twice.

Offline storage (the SDK writes failed envelopes to a temp directory and
re-sends them later) is off: Lambda's and many containers' disks are
ephemeral or read-only, and our carry-over buffer already keeps unsent spans.
With ``NEXS_AZURE_OFFLINE_STORAGE=true`` it is on, and then the SDK owns the
retry of what failed with a retryable error: those envelopes go to its disk
storage (counted as ``spans_stored_offline``) instead of being reported as a
failure, as do the items of a 206 refused with a retryable status, and
stored envelopes are re-sent after the next success (by the SDK, with its
own per-call timeout: that re-send is not bounded by the flush budget).

The Azure SDK starts background telemetry of its own (statsbeat, the
OneSettings control plane) when constructed; it honours its environment
variables ``APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL``,
``APPLICATIONINSIGHTS_SDKSTATS_DISABLED`` and
``APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED`` (set them to ``true`` to stop it).

The items of a batch (which span each came from, what a 206 refused, what a
retry still sends) are kept by `_azure_items`; `_azure_connection` checks the
connection string.

Environment (read from the settings snapshot by `from_settings`):

- ``APPLICATIONINSIGHTS_CONNECTION_STRING`` (required; checked at once with the SDK's
  rules: ``key=value`` parts, ``InstrumentationKey`` a lowercase UUID).
- ``NEXS_AZURE_OFFLINE_STORAGE`` (false): let the SDK store failed envelopes on disk.
- ``NEXS_AZURE_STORAGE_DIRECTORY`` (the SDK's temp directory): where.
- ``NEXS_AZURE_TIMEOUT_MS`` (1000, at most an hour): the most one call may take (capped by the flush budget).
"""

from __future__ import annotations

import threading
import time

from .. import _guard as guard
from .. import _stats as stats
from ..config import ConfigError
from ._azure_connection import connection_string_problem
from ._azure_items import (
    RETRYABLE_ITEM_STATUSES,
    Pending,
    envelopes_of,
    partial_failure,
    refused_items,
    retry_after_s,
)
from .base import ExportResult, Sent, send_once
from .errors import ErrorClass, ExportError, classify, classify_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from ..config import Settings
    from ..typing import ReadableSpan

__all__ = ["AzureMonitorExporter", "classify_azure_error", "from_settings"]

_REDIRECTS = (307, 308)
_MAX_REDIRECTS = 3  # per call; the SDK's own limit is per exporter and larger, but each costs budget


class AzureMonitorExporter:
    """Exports spans to Azure Monitor Application Insights.

    Args:
        connection_string: the Application Insights connection string
            (``InstrumentationKey=...;IngestionEndpoint=https://...``).
        offline_storage: let the Azure SDK keep failed envelopes on disk.
        storage_directory: where (default: the SDK's temp directory).
        credential: an Azure AD token credential, for resources requiring Entra ID.
        timeout_ms: the most one call may take, capped by the flush budget.

    Raises:
        ConfigError: for a missing or malformed connection string (one the SDK
            would refuse at the first export) or a bad timeout.
        ImportError: when azure-monitor-opentelemetry-exporter is not installed.
    """

    def __init__(
        self,
        *,
        connection_string: str | None = None,
        offline_storage: bool = False,
        storage_directory: str | None = None,
        credential: object | None = None,
        timeout_ms: int = 1000,
    ) -> None:
        from importlib.util import find_spec

        try:
            spec = find_spec("azure.monitor.opentelemetry.exporter")
        except ImportError:
            spec = None
        if spec is None:
            raise ImportError(
                "azure-monitor-opentelemetry-exporter is missing: pip install 'nexs-serverless[azure]'"
            )
        problem = connection_string_problem(connection_string)
        if problem:
            raise ConfigError(f"AzureMonitorExporter(connection_string=...): {problem}")
        if not isinstance(timeout_ms, int) or timeout_ms < 1:
            raise ConfigError(f"AzureMonitorExporter(timeout_ms={timeout_ms!r}): expected an integer >= 1")
        self.connection_string = connection_string
        self.offline_storage = offline_storage
        self.storage_directory = storage_directory
        self.timeout_ms = timeout_ms
        self._credential = credential
        self._exporter: Any = None
        self._lock = threading.Lock()  # `prepare` may run in a background thread during init

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult:
        """Send `spans`; failures are classified, counted and logged once, never raised."""
        return send_once("Azure Monitor", self.send, spans, self.timeout_ms / 1000)

    def send(self, spans: Sequence[ReadableSpan], timeout_s: float) -> int | Sent:
        """One ingestion call within `timeout_s` (redirects followed); returns how many spans were refused.

        Returns:
            The spans refused; a `Sent` when spans the mapping failed on were
            also left out (counted ``spans_dropped_serialization``).

        Raises:
            ExportError: classified (see `classify_azure_error`, or a 206's
                retryable item status); its `undelivered` names the spans still
                to send with their items (only those a 206 refused), which a
                retry given that list sends without converting anything.
        """
        if not spans:
            return 0
        if timeout_s <= 0:
            raise ExportError(ErrorClass.TIMEOUT, "no time left in the flush budget")
        try:
            sdk = self.prepare()
        except Exception as exc:  # a connection string or option the SDK refuses
            raise ExportError(ErrorClass.BAD_REQUEST, f"could not build the Azure exporter: {exc!r}") from exc
        if isinstance(spans, Pending) and spans.fits():  # a retry: its items are ready
            return self._track(sdk, spans.envelopes, spans.owner, spans, timeout_s)
        envelopes, owner = envelopes_of(sdk, spans)
        dropped = len(spans) - len(set(owner))
        try:
            return Sent.of(self._track(sdk, envelopes, owner, spans, timeout_s), dropped)
        except ExportError as error:
            if error.undelivered is None:  # nothing got through: all of it, with its items
                error.undelivered = Pending.of(spans, envelopes, owner, range(len(envelopes)))
            error.dropped += dropped
            raise

    def _track(
        self,
        sdk: Any,
        envelopes: list[Any],
        owner: list[int],
        spans: Sequence[ReadableSpan],
        timeout_s: float,
    ) -> int:
        """The ingestion call for `envelopes` (`owner`: each one's index in `spans`); the spans refused."""
        if not envelopes:
            return 0  # every span failed the mapping: counted there
        span_count = len(set(owner))
        deadline = time.monotonic() + timeout_s  # the calls' budget (building the SDK is not a call)
        redirects = 0
        while True:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise ExportError(ErrorClass.TIMEOUT, "the flush budget ran out following a redirect")
            try:
                response, headers = sdk.client.track(
                    envelopes,
                    connection_timeout=left_s,
                    read_timeout=left_s,
                    cls=lambda pipeline, body, _: (body, pipeline.http_response.headers),
                )
                break
            except Exception as exc:
                if redirects < _MAX_REDIRECTS and _follow_redirect(sdk, exc):
                    redirects += 1
                    continue
                error = classify_azure_error(exc)
                if self.offline_storage and error.retryable and sdk.storage is not None:
                    self._store(sdk, envelopes, span_count, error)
                    return 0
                raise error from exc
        refused = refused_items(response, len(owner))
        complete = not refused
        retry = [index for index, status in refused.items() if status in RETRYABLE_ITEM_STATUSES]
        if retry and self.offline_storage and sdk.storage is not None:
            stored = {owner[index] for index in retry}
            if self._store(sdk, [envelopes[index] for index in retry], len(stored), None):
                for index in retry:  # what the SDK's export() would store for later: stored, not refused
                    del refused[index]
        elif retry:  # what the SDK would retry: a failure, naming only what is still to send
            raise partial_failure(retry, refused, envelopes, owner, spans, headers)
        if complete and self.offline_storage and sdk.storage is not None:  # as the SDK: after a full success
            drain = getattr(sdk, "_transmit_from_storage", None)
            if drain is not None:
                drain()
        return len({owner[index] for index in refused})

    def _store(self, sdk: Any, envelopes: list[Any], span_count: int, error: ExportError | None) -> bool:
        """Hand `envelopes` to the SDK's offline storage; whether it took them (else `error` is raised)."""
        try:
            sdk.storage.put([envelope.as_dict() for envelope in envelopes])
        except Exception as storage_exc:
            guard.report("azure_offline_storage", storage_exc)
            if error is not None:
                raise error from storage_exc
            return False
        stats.incr("spans_stored_offline", span_count)
        return True

    def prepare(self) -> Any:
        """The Azure SDK exporter, built once (imports the Azure SDK)."""
        sdk = self._exporter
        if sdk is not None:
            return sdk
        with self._lock:
            return self._exporter or self._build()

    def _build(self) -> Any:
        sdk = self._exporter
        if sdk is None:
            from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

            options: dict[str, object] = {
                "connection_string": self.connection_string,
                "disable_offline_storage": not self.offline_storage,
                "timeout": self.timeout_ms / 1000,
                "retry_total": 0,
            }
            if self.storage_directory:
                options["storage_directory"] = self.storage_directory
            if self._credential is not None:
                options["credential"] = self._credential
            sdk = self._exporter = AzureMonitorTraceExporter(**options)
        return sdk

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is held back here: always True."""
        return True

    def shutdown(self) -> None:
        """Shut the SDK exporter down (closes its storage)."""
        sdk, self._exporter = self._exporter, None
        if sdk is not None:
            sdk.shutdown()


def _follow_redirect(sdk: Any, exc: BaseException) -> bool:
    """For a 307/308 to a host the SDK would follow, point its client there; whether it did.

    The SDK's rule (``_is_same_registered_domain``): both hosts under one of
    Azure Monitor's ingestion domains, so a ``Location`` cannot send the
    telemetry (and an Entra ID token) anywhere else. Stricter than the SDK on
    one point: another port on the same host is not followed (no ingestion
    endpoint moves that way; a local proxy's other ports are not ours to use).
    """
    if getattr(exc, "status_code", None) not in _REDIRECTS:
        return False
    from urllib.parse import urlsplit

    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        target = urlsplit(str(headers.get("Location") or headers.get("location") or ""))
        config = sdk.client._config
        current = urlsplit(str(config.host))
        same_host = (current.hostname or "") == (target.hostname or "")
    except (AttributeError, ValueError):
        return False
    if target.scheme not in ("http", "https") or not target.netloc:
        return False
    if target.netloc != current.netloc:
        trusted = getattr(sdk, "_is_same_registered_domain", None)
        if same_host or trusted is None or not trusted(current.netloc, target.netloc):
            return False
    config.host = f"{target.scheme}://{target.netloc}"
    stats.incr("export_redirects_followed")
    return True


def classify_azure_error(exc: BaseException) -> ExportError:
    """An `ExportError` for an exception from azure-core's pipeline."""
    if isinstance(exc, ExportError):
        return exc
    try:
        from azure.core import exceptions as az
    except ImportError:
        return classify(exc)
    if isinstance(exc, az.HttpResponseError) and isinstance(exc.status_code, int):
        status = exc.status_code
        headers = getattr(exc.response, "headers", None) or {}
        retry_after = retry_after_s(headers.get("Retry-After") or headers.get("retry-after"))
        if status in _REDIRECTS:  # not followed: too many, or to a host the SDK would not trust
            return ExportError(
                ErrorClass.BAD_REQUEST,
                f"redirected to {headers.get('Location')}: use it as the IngestionEndpoint",
                status=status,
            )
        error_class = ErrorClass.THROTTLED if status in (402, 439) else classify_status(status)
        return ExportError(
            error_class, f"HTTP {status}: {exc.message}", retry_after_s=retry_after, status=status
        )
    if isinstance(exc, az.ClientAuthenticationError):
        return ExportError(ErrorClass.AUTH, repr(exc))
    if isinstance(exc, az.ServiceRequestError):  # the request did not leave: refused, DNS, TLS
        return ExportError(ErrorClass.NETWORK, repr(exc))
    if isinstance(exc, az.ServiceResponseError):  # sent, no (complete) answer
        text = repr(exc).lower()
        timed_out = "timeout" in text or "timed out" in text
        return ExportError(ErrorClass.TIMEOUT if timed_out else ErrorClass.NETWORK, repr(exc))
    return classify(exc)


def from_settings(settings: Settings) -> AzureMonitorExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=azure_monitor`` stands for, configured from the environment.

    Raises:
        ConfigError: when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is not set or
            malformed (the message names it and what is wrong, never its value).
    """
    from ..config import Reader, report

    reader = Reader(settings.environ)
    offline = reader.boolean("NEXS_AZURE_OFFLINE_STORAGE", default=False)
    timeout_ms = reader.integer("NEXS_AZURE_TIMEOUT_MS", default=1000, minimum=1, maximum=3_600_000)
    report(reader.problems)
    connection_string = settings.env("APPLICATIONINSIGHTS_CONNECTION_STRING").strip() or None
    problem = connection_string_problem(connection_string)
    if problem:
        raise ConfigError(f"APPLICATIONINSIGHTS_CONNECTION_STRING: {problem}")
    return AzureMonitorExporter(
        connection_string=connection_string,
        offline_storage=offline,
        storage_directory=settings.env("NEXS_AZURE_STORAGE_DIRECTORY").strip() or None,
        timeout_ms=timeout_ms,
    )
