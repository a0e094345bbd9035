"""TLS for `_http.Connection`: its context from the configured files, and the handshake.

Why a module of its own: a collector on the function's own host (the usual
Lambda setup, ``http://localhost:4318``) needs none of it, and `_http` is on
every cold start's path; this loads with the first ``https`` connection.

The files are read when the context is built, before any connection: one that
cannot be used is a setting to fix (`TLSFileError`, which the OTLP exporter
reports as AUTH), not a failed connection to each of the endpoint's addresses.
"""

from __future__ import annotations

import _socket
import ssl
import time

__all__ = ["TLSFileError", "context", "wrap"]


class TLSFileError(OSError):
    """A TLS file given to `Connection` cannot be used (missing, unreadable, not PEM, mismatched).

    `files`: the ``(argument, path)`` pairs at fault (``ca_file``,
    ``client_cert``, ``client_key``): the one that cannot be opened, else
    the certificate and key together when their content is refused.
    """

    def __init__(self, files: tuple[tuple[str, str], ...], reason: BaseException) -> None:
        named = ", ".join(f"{argument}={path!r}" for argument, path in files)
        super().__init__(f"cannot use the TLS file(s) {named}: {reason}")
        self.files = files
        self.reason = reason


def context(ca_file: str | None, client_cert: str | None, client_key: str | None) -> ssl.SSLContext:
    """The client context: the system's trust store or `ca_file`, and the client certificate, if any.

    Raises:
        TLSFileError: a file that cannot be used (the caller builds it again next time: it
            may get fixed).
    """
    try:
        built = ssl.create_default_context(cafile=ca_file)
    except OSError as exc:
        if not ca_file:
            raise  # the system's store: nothing the caller configured
        raise TLSFileError((("ca_file", ca_file),), exc) from exc
    if client_cert:
        try:
            built.load_cert_chain(client_cert, client_key)
        except OSError as exc:
            pair = [("client_cert", client_cert)]
            if client_key:
                pair.append(("client_key", client_key))
            unreadable = tuple((argument, path) for argument, path in pair if not _readable(path))
            raise TLSFileError(unreadable[:1] or tuple(pair), exc) from exc
    return built


def wrap(sock: _socket.socket, tls: object, host: str, deadline: float) -> _socket.socket:
    """`sock` after the TLS handshake with `host`, within what is left until `deadline`."""
    assert isinstance(tls, ssl.SSLContext)
    sock.settimeout(max(0.001, deadline - time.monotonic()))
    wrapped: _socket.socket = tls.wrap_socket(sock, server_hostname=host)  # type: ignore[arg-type]
    return wrapped


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False
