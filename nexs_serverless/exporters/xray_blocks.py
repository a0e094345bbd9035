"""The ``http``, ``aws`` and ``sql`` blocks of an X-Ray document, and the attribute reads behind them.

Split from `xray_segments` (which places a span and names it): this module
knows which semantic-convention keys fill which X-Ray field, current names
first, then the older ones. Every key a block takes is added to ``used``, so
that it is not repeated in the document's metadata.
"""

from __future__ import annotations

from ..model import SpanKind
from .xray_values import jsonable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..attributes import AttributeValue

__all__ = ["HTTP_KEYS", "HTTP_URL", "REMOTE_NAME", "aws_block", "first", "host_of", "http_block", "sql_block"]

# Attribute keys (current semantic conventions first, then the older names) per field.
_HTTP_METHOD = ("http.request.method", "http.method")
HTTP_URL = ("url.full", "http.url")
_HTTP_STATUS = ("http.response.status_code", "http.status_code")
_HTTP_LENGTH = ("http.response.body.size", "http.response_content_length")
_USER_AGENT = ("user_agent.original", "http.user_agent")
_CLIENT_IP = ("client.address", "http.client_ip")
_SCHEME = ("url.scheme", "http.scheme")
_HOST = ("server.address", "http.host", "net.host.name")
# The port beside a host name (``http.host`` carries its own): left out of the URL when the scheme's default.
_PORT = {"server.address": "server.port", "net.host.name": "net.host.port"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TARGET = ("http.target",)
HTTP_KEYS = frozenset(
    (*_HTTP_METHOD, *HTTP_URL, *_HTTP_STATUS, *_HTTP_LENGTH, *_USER_AGENT, *_CLIENT_IP, *_TARGET)
)
REMOTE_NAME = ("peer.service", "server.address", "net.peer.name", "db.name", "db.namespace", "db.system")
_DB_SYSTEM = ("db.system", "db.system.name")
# ``db.system`` values of SQL databases (semantic conventions, older and current
# names): only these get a ``sql`` block, the Collector's rule (``isSQL``).
_SQL_SYSTEMS = frozenset(
    (
        "db2", "ibm.db2", "derby", "hive", "mariadb", "mssql", "microsoft.sql_server", "mysql",
        "oracle", "oracle.db", "postgresql", "sqlite", "teradata", "other_sql", "cockroachdb",
        "h2", "hsqldb", "redshift", "trino", "sybase", "informix", "vertica", "netezza", "firebird",
        "clickhouse", "spanner", "gcp.spanner", "snowflake",
    )
)  # fmt: skip
_SQL = {
    "database_type": _DB_SYSTEM,
    "sanitized_query": ("db.query.text", "db.statement"),
    "user": ("db.user",),
    "url": ("db.connection_string",),
}
_AWS = {
    "operation": ("rpc.method",),
    "region": ("aws.region", "cloud.region"),
    "request_id": ("aws.request_id", "aws.requestId"),
    # ``aws.sqs.queue.url``: the semantic conventions' name, the one `instrumentation` writes.
    "queue_url": ("aws.sqs.queue.url", "aws.sqs.queue_url", "messaging.url"),
}


def http_block(
    attrs: Mapping[str, AttributeValue], kind: int, used: set[str]
) -> tuple[dict[str, object], int | None]:
    """The ``http`` block (``request``, ``response``) and the response status, when an integer."""
    request: dict[str, object] = {}
    method = first(attrs, _HTTP_METHOD, used)
    if method is not None:
        request["method"] = method
    url = first(attrs, HTTP_URL, used)
    if url is None and kind == SpanKind.SERVER and method is not None:
        # Parts are marked used only once the URL is built: a host without a path
        # (or the reverse) stays in metadata rather than vanishing.
        parts: set[str] = set()
        host = first(attrs, _HOST, parts)
        path = attrs.get("url.path")
        target = first(attrs, _TARGET, parts) or (
            f"{path}?{attrs['url.query']}" if path is not None and "url.query" in attrs else path
        )
        if host is not None and target is not None:
            used.update(parts)
            used.update(key for key in ("url.path", "url.query") if key in attrs)
            scheme = first(attrs, _SCHEME, used) or "https"
            if "http.host" not in parts and ":" in str(host) and not str(host).startswith("["):
                host = f"[{host}]"  # an IPv6 address, bracketed in a URL
            url = f"{scheme}://{host}{_port(attrs, parts, scheme, used)}{target}"
    if url is not None:
        request["url"] = url
    for field, keys in (("user_agent", _USER_AGENT), ("client_ip", _CLIENT_IP)):
        value = first(attrs, keys, used)
        if value is not None:
            request[field] = value
    response: dict[str, object] = {}
    status = _first_int(attrs, _HTTP_STATUS, used)
    if status is not None:
        response["status"] = status
    length = _first_int(attrs, _HTTP_LENGTH, used)
    if length is not None:
        response["content_length"] = length
    http: dict[str, object] = {}
    if request:
        http["request"] = request
    if response:
        http["response"] = response
    return http, status


def _port(attrs: Mapping[str, AttributeValue], parts: set[str], scheme: object, used: set[str]) -> str:
    """``:<port>`` for a server URL built from parts, '' when none or the scheme's default.

    The semantic conventions split a server's address from its port (``server.port``):
    without it a request to ``localhost:8080`` would read as one to ``localhost``.
    """
    key = next((_PORT[name] for name in parts if name in _PORT), None)
    if key is None:
        return ""
    port = _as_int(attrs.get(key))
    if port is None:
        return ""
    used.add(key)
    return "" if _DEFAULT_PORTS.get(str(scheme).lower()) == port else f":{port}"


def aws_block(attrs: Mapping[str, AttributeValue], used: set[str]) -> dict[str, object]:
    """The ``aws`` fields of an AWS SDK call: operation, region, request id, queue, the one table."""
    used.update(("rpc.system", "rpc.service"))
    aws = _block(attrs, _AWS, used)
    tables = attrs.get("aws.dynamodb.table_names")
    if isinstance(tables, (list, tuple)) and len(tables) == 1:
        aws["table_name"] = tables[0]
        used.add("aws.dynamodb.table_names")
    return aws


def sql_block(attrs: Mapping[str, AttributeValue], used: set[str]) -> dict[str, object] | None:
    """The ``sql`` block of a SQL database's call; None for another database (DynamoDB, Redis)."""
    if attrs.get("db.system", attrs.get("db.system.name")) not in _SQL_SYSTEMS:
        return None
    return _block(attrs, _SQL, used)


def _block(
    attrs: Mapping[str, AttributeValue], fields: dict[str, tuple[str, ...]], used: set[str]
) -> dict[str, object]:
    out: dict[str, object] = {}
    for field, keys in fields.items():
        value = first(attrs, keys, used)
        if value is not None:
            out[field] = value
    return out


def first(attrs: Mapping[str, AttributeValue], keys: tuple[str, ...], used: set[str]) -> object:
    """The first of `keys` present, JSON-ready, marked used; None when none is."""
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            used.add(key)
            return jsonable(value)
    return None


def _first_int(attrs: Mapping[str, AttributeValue], keys: tuple[str, ...], used: set[str]) -> int | None:
    """The first of `keys` present, as an integer; a value that is not one stays unused (metadata)."""
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            number = _as_int(value)
            if number is not None:
                used.add(key)
            return number
    return None


def _as_int(value: object) -> int | None:
    """`value` as an int: an int, an integral float, or ASCII digits ("²".isdigit(), but int() refuses it)."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def host_of(url: object) -> str | None:
    """The host (with its port) of a URL, user info dropped; None when `url` is not one."""
    if not isinstance(url, str) or "://" not in url:
        return None
    host = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    return host.rsplit("@", 1)[-1] or None
