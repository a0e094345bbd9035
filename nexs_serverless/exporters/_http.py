"""A small HTTP/1.1 client over `_socket`: one keep-alive connection, one request at a time.

Why not `http.client`: it costs about 45 ms to import on a small Lambda
(`email` parsing, `socket`'s enum classes), more than the export it would
make. OTLP/HTTP needs only ``POST`` with a body and a short response, so this
module speaks exactly that: it sends the request in one write, reads the
status line, the headers and a ``Content-Length``, chunked or read-to-close
body, and keeps the connection for the next warm invocation. `ssl` is imported
only for ``https`` endpoints.

Every call takes a timeout that bounds the whole exchange (connect, TLS
handshake, send, response), so a server that accepts and never answers costs
exactly the time allowed. Name resolution (`getaddrinfo`) cannot be bounded
this way; its result is cached per connection and refreshed after a failure.

Errors::

    OSError                      the socket layer: TimeoutError, ConnectionRefusedError, ...
    ├── ProtocolError            a response that is not HTTP/1.x (a ConnectionError)
    │   └── CutResponseError     a complete status line and headers, then a broken body:
    │                            the server took the request (callers decide what a 2xx means)
    └── _tls.TLSFileError        a CA bundle, client certificate or key that cannot be
                                 used: a setting to fix, raised before any connection
"""

from __future__ import annotations

import _socket
import select
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Connection", "CutResponseError", "ProtocolError", "Response", "split_url"]

_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 4 * 1024 * 1024  # OTLP responses are tiny; bound memory against a broken server
_READ_SIZE = 65536
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class ProtocolError(ConnectionError):
    """The peer answered something that is not a valid HTTP/1.x response."""


class CutResponseError(ProtocolError):
    """The final status line and headers arrived, the body did not (reset, close, stall, bad framing).

    A server answers after it has taken the request, so the request went
    through: kept apart from a connection lost before the answer, which may
    not have (`status`, `headers`: what did arrive).
    """

    def __init__(self, status: int, headers: dict[str, str], reason: BaseException) -> None:
        super().__init__(f"HTTP {status} answer cut short: {reason!r}")
        self.status = status
        self.headers = headers


class Response:
    """Status, lower-cased headers and body of one response."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def split_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of an ``http``/``https`` URL.

    Raises:
        ValueError: for another scheme or a malformed authority.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    authority, slash, path = rest.partition("/")
    path = "/" + path if slash else "/"
    authority = authority.rpartition("@")[2]
    if authority.startswith("["):  # [IPv6]:port
        host, _, tail = authority[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise ValueError(f"no host in URL: {url!r}")
    port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    if not 0 < port < 65536:
        raise ValueError(f"bad port in URL: {url!r}")
    return scheme, host, port, path


class Connection:
    """One persistent connection to ``scheme://host:port``; not thread-safe (callers lock).

    Args:
        scheme: ``http`` or ``https``.
        host: host name or address.
        port: TCP port.
        ca_file: PEM bundle to verify the server with (https; default: the system's).
        client_cert: PEM client certificate for mutual TLS.
        client_key: its private key (when not inside `client_cert`).
    """

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.ca_file = ca_file
        self.client_cert = client_cert
        self.client_key = client_key
        default_port = 443 if scheme == "https" else 80
        bracketed = f"[{host}]" if ":" in host else host
        self.host_header = bracketed if port == default_port else f"{bracketed}:{port}"
        self._sock: _socket.socket | None = None
        self._addresses: list[tuple[int, tuple[object, ...]]] | None = None
        self._ssl_context: object = None
        self.connects = 0  # connections opened, for tests and stats

    @property
    def is_open(self) -> bool:
        """Whether a connection is held (it may still turn out stale)."""
        return self._sock is not None

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        sock = self._sock
        self._sock = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def __del__(self) -> None:
        # An exporter dropped by `configure` must not leak its socket (nor warn about it).
        self.close()

    def connect(self, timeout_s: float) -> None:
        """Open the connection now (no-op when one is open and alive)."""
        if self._sock is not None and not self._stale(self._sock):
            return
        self.close()
        self._sock = self._open(time.monotonic() + timeout_s)

    def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Response:
        """Send one request and read its response, all within `timeout_s`.

        A kept connection that turns out closed by the server before any byte
        of the response arrived is replaced once, transparently (servers close
        idle keep-alive connections; Lambda freezes us for minutes).
        """
        deadline = time.monotonic() + timeout_s
        lines = [f"{method} {path} HTTP/1.1", "Host: " + self.host_header]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        lines.append(f"Content-Length: {len(body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        try:
            payload = head.encode("latin-1") + body
        except UnicodeEncodeError:  # a configured header value beyond Latin-1: its UTF-8 bytes
            payload = head.encode("utf-8") + body
        sock = self._sock
        reused = sock is not None
        if sock is not None and self._stale(sock):
            self.close()
            sock, reused = None, False
        if sock is None:
            sock = self._sock = self._open(deadline)
        try:
            return self._exchange(sock, payload, deadline, method)
        except _NoResponseError:
            self.close()
            if not reused:
                raise ConnectionResetError("connection closed before a response") from None
        except BaseException:
            self.close()
            raise
        sock = self._sock = self._open(deadline)  # the reused connection was dead: one fresh try
        try:
            return self._exchange(sock, payload, deadline, method)
        except _NoResponseError:
            self.close()
            raise ConnectionResetError("connection closed before a response") from None
        except BaseException:
            self.close()
            raise

    # -- internals ----------------------------------------------------------------

    def _stale(self, sock: _socket.socket) -> bool:
        """An idle kept connection is readable only if the server closed it (or misbehaved).

        Over TLS 1.3 the server's session tickets arrive after the handshake and make
        a live connection readable too: a non-blocking read tells them (no data yet)
        from a close or stray bytes, so the connection `prepare` opened is kept.
        """
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        if type(sock).__name__ != "SSLSocket":
            return True
        import ssl  # loaded already: `sock` is one of its sockets

        timeout = sock.gettimeout()
        try:
            sock.setblocking(False)
            sock.recv(1)  # b"" (closed) or a byte nobody asked for: either way, not reusable
        except ssl.SSLWantReadError:
            return False  # only TLS records (session tickets) were waiting: alive
        except (OSError, ValueError):
            return True
        finally:
            try:
                sock.settimeout(timeout)
            except OSError:
                pass
        return True

    def _resolve(self) -> list[tuple[int, tuple[object, ...]]]:
        addresses = self._addresses
        if addresses is None:
            # An ASCII host passed as bytes skips the `idna` codec, whose import (with
            # `stringprep` and `unicodedata`) costs ~3 ms on the first invocation.
            host: str | bytes = self.host.encode("ascii") if self.host.isascii() else self.host
            infos = _socket.getaddrinfo(host, self.port, 0, _socket.SOCK_STREAM)
            addresses = self._addresses = [(info[0], info[4]) for info in infos]
        return addresses

    def _open(self, deadline: float) -> _socket.socket:
        # The TLS files are read before connecting: one that cannot be used fails alone (TLSFileError),
        # not as a failed connection to each address.
        context = self._tls_context() if self.scheme == "https" else None
        last: OSError | None = None
        for family, address in self._resolve():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out connecting")
            sock = _socket.socket(family, _socket.SOCK_STREAM)
            try:
                sock.settimeout(remaining)
                sock.connect(address)
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                if context is not None:
                    sock = self._wrap_tls(sock, context, deadline)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            self.connects += 1
            return sock
        self._addresses = None  # resolve again next time (the address may have moved)
        raise last if last is not None else OSError(f"no address for {self.host!r}")

    def _tls_context(self) -> object:
        """The `ssl.SSLContext` for this endpoint, built once from the TLS files (`_tls.context`)."""
        context = self._ssl_context
        if context is None:
            from ._tls import context as tls_context

            context = self._ssl_context = tls_context(self.ca_file, self.client_cert, self.client_key)
        return context

    def _wrap_tls(self, sock: _socket.socket, context: object, deadline: float) -> _socket.socket:
        from ._tls import wrap

        return wrap(sock, context, self.host, deadline)

    def _exchange(self, sock: _socket.socket, payload: bytes, deadline: float, method: str) -> Response:
        _settimeout(sock, deadline)
        try:
            sock.sendall(payload)
        except OSError as exc:
            if not _closed(exc):
                raise
            # A server may answer before reading the whole body (413, 401) and close: its
            # answer is then waiting to be read, and says more than "connection closed".
            early = self._early_response(sock, deadline)
            if early is None:
                raise _NoResponseError from None
            return early
        reader = _Reader(sock, deadline)
        while True:
            status, headers, keep_alive = _read_head(reader)
            if status >= 200 or status < 100:
                break
        try:
            body, keep_alive = _read_body(reader, method, status, headers, keep_alive)
        except Exception as exc:  # the answer is known, its body is not: `request` closes the connection
            raise CutResponseError(status, headers, exc) from exc
        if not keep_alive or reader.has_extra():
            self.close()
        return Response(status, headers, body)

    def _early_response(self, sock: _socket.socket, deadline: float) -> Response | None:
        """The final response a server sent before closing on our unsent body, if one can be read."""
        try:
            reader = _Reader(sock, deadline)
            status, headers, _ = _read_head(reader)
            while 100 <= status < 200:
                status, headers, _ = _read_head(reader)
        except Exception:  # nothing readable (the usual dead keep-alive), or not HTTP
            return None
        self.close()  # the body is unread and the server is gone: never reused
        return Response(status, headers, b"")


def _read_body(
    reader: _Reader, method: str, status: int, headers: dict[str, str], keep_alive: bool
) -> tuple[bytes, bool]:
    """The body framed by `headers`, and whether the connection can be kept after it."""
    if method == "HEAD" or status in (204, 304):
        return b"", keep_alive
    if headers.get("transfer-encoding", "").lower().endswith("chunked"):
        return _read_chunked(reader), keep_alive
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProtocolError("bad Content-Length") from None
        if length < 0 or length > _MAX_BODY_BYTES:
            raise ProtocolError(f"Content-Length {length} out of bounds")
        return reader.exact(length), keep_alive
    return reader.until_eof(), False


def _closed(exc: OSError) -> bool:
    """Whether `exc` says the peer closed the connection (plain, or TLS without its close alert)."""
    return isinstance(exc, (BrokenPipeError, ConnectionResetError)) or type(exc).__name__ in (
        "SSLEOFError",
        "SSLZeroReturnError",
    )


class _NoResponseError(Exception):
    """The connection was closed before any byte of a response (a stale keep-alive)."""


def _settimeout(sock: _socket.socket, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("timed out")
    sock.settimeout(remaining)


class _Reader:
    """Buffered reads from a socket, each bounded by the exchange's deadline."""

    __slots__ = ("buffer", "deadline", "received", "sock")

    def __init__(self, sock: _socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = bytearray()
        self.received = 0

    def _fill(self) -> bool:
        _settimeout(self.sock, self.deadline)
        try:
            chunk = self.sock.recv(_READ_SIZE)
        except OSError as exc:
            if not self.received and _closed(exc):
                raise _NoResponseError from None
            raise
        if not chunk:
            if not self.received:
                raise _NoResponseError
            return False
        self.received += len(chunk)
        self.buffer += chunk
        return True

    def line(self, limit: int) -> bytes:
        while True:
            index = self.buffer.find(b"\r\n")
            if index >= 0:
                out = bytes(self.buffer[:index])
                del self.buffer[: index + 2]
                return out
            if len(self.buffer) > limit:
                raise ProtocolError("header line too long")
            if not self._fill():
                raise ProtocolError("connection closed in the response head")

    def exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ProtocolError("connection closed in the response body")
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    def until_eof(self) -> bytes:
        while self._fill():
            if len(self.buffer) > _MAX_BODY_BYTES:
                raise ProtocolError("response body too large")
        out = bytes(self.buffer)
        self.buffer.clear()
        return out

    def has_extra(self) -> bool:
        return bool(self.buffer)


def _read_head(reader: _Reader) -> tuple[int, dict[str, str], bool]:
    status_line = reader.line(_MAX_HEADER_BYTES)
    version, _, rest = status_line.partition(b" ")
    if not version.startswith(b"HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x response: {status_line[:40]!r}")
    code = rest[:3]
    if len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"bad status line: {status_line[:40]!r}")
    headers: dict[str, str] = {}
    size = 0
    while True:
        line = reader.line(_MAX_HEADER_BYTES)
        if not line:
            break
        size += len(line)
        if size > _MAX_HEADER_BYTES:
            raise ProtocolError("response headers too large")
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"bad header line: {line[:40]!r}")
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == b"HTTP/1.1" else "keep-alive" in connection
    return int(code), headers, keep_alive


def _read_chunked(reader: _Reader) -> bytes:
    body = bytearray()
    while True:
        size_line = reader.line(1024).split(b";", 1)[0].strip()
        # RFC 9112 section 7.1: chunk-size is 1*HEXDIG. `int` also takes a sign ("-5" read bytes
        # backwards), "0x" and "_": anything but hex digits is refused before it is parsed.
        if not size_line or size_line.strip(_HEX_DIGITS):
            raise ProtocolError(f"bad chunk size: {size_line[:20]!r}")
        size = int(size_line, 16)
        if size == 0:
            while reader.line(_MAX_HEADER_BYTES):  # trailers
                pass
            return bytes(body)
        if len(body) + size > _MAX_BODY_BYTES:
            raise ProtocolError("response body too large")
        body += reader.exact(size)
        reader.exact(2)  # CRLF after each chunk
