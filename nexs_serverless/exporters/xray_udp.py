"""UDP to the X-Ray daemon: the datagram framing and a fire-and-forget sender.

Every datagram starts with the daemon's header line ``{"format":"json","version":1}``
and carries either one segment document, or (the AWS Distro for OpenTelemetry's
framing) ``T1S``/``T1U`` followed by a base64 OTLP ``ExportTraceServiceRequest``
(``T1S`` for sampled spans, ``T1U`` for unsampled ones). Datagrams stay under
`MAX_DATAGRAM_BYTES`: the daemon reads at most 64 KiB and silently loses the rest.

Sending costs one ``sendto`` per datagram on a non-blocking socket and never
waits for an answer, which is why this is the transport inside Lambda. The
socket comes from `_socket`, not `socket`: the `socket` module builds its
enums at import (about 6 ms on a small Lambda).
"""

from __future__ import annotations

import _socket
import binascii
import threading

from .. import _stats as stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ..typing import ReadableSpan
    from .errors import ExportError

__all__ = [
    "DEFAULT_DAEMON_ADDRESS",
    "HEADER",
    "MAX_DATAGRAM_BYTES",
    "OTLP_SAMPLED",
    "OTLP_UNSAMPLED",
    "DaemonSender",
    "otlp_datagram",
    "otlp_payload_budget",
    "parse_daemon_address",
]

HEADER = b'{"format":"json","version":1}\n'
OTLP_SAMPLED = b"T1S"
OTLP_UNSAMPLED = b"T1U"
# Under the daemon's 64 KiB read buffer and IPv4's 65,507-byte UDP payload, with room to spare.
MAX_DATAGRAM_BYTES = 64_000
DEFAULT_DAEMON_ADDRESS = "127.0.0.1:2000"


def parse_daemon_address(value: str) -> tuple[str, int]:
    """``(host, port)`` of the UDP endpoint in an ``AWS_XRAY_DAEMON_ADDRESS`` value.

    Accepts ``host:port`` and the X-Ray SDKs' two-address form
    ``tcp:host:port udp:host:port``.

    Raises:
        ValueError: for anything else.
    """
    text = value.strip()
    parts = text.split()
    if len(parts) == 2:
        chosen = [part for part in parts if part.lower().startswith("udp:")]
        if len(chosen) != 1:
            raise ValueError(f"no udp: address in {value!r}")
        text = chosen[0][4:]
    elif len(parts) != 1:
        raise ValueError(f"expected host:port, got {value!r}")
    elif text.lower().startswith("udp:"):  # one address, with its protocol named
        text = text[4:]
    elif text.lower().startswith("tcp:"):
        raise ValueError(f"no udp: address in {value!r}")
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    # A colon left in the host is a second port or an IPv6 address written without brackets.
    valid_port = port.isdigit() and 0 < int(port) < 65536
    if not sep or not host or (":" in host and not bracketed) or not valid_port:
        raise ValueError(f"expected host:port, got {value!r}")
    return host, int(port)


def otlp_payload_budget(max_datagram: int = MAX_DATAGRAM_BYTES) -> int:
    """The largest OTLP protobuf that still fits one datagram once framed and base64-encoded."""
    return (max_datagram - len(HEADER) - len(OTLP_SAMPLED)) // 4 * 3


def otlp_datagram(payload: bytes, *, sampled: bool = True) -> bytes:
    """One ADOT-framed datagram: header line, ``T1S``/``T1U``, base64 `payload`."""
    prefix = OTLP_SAMPLED if sampled else OTLP_UNSAMPLED
    return HEADER + prefix + binascii.b2a_base64(payload, newline=False)


class DaemonSender:
    """Sends datagrams to one daemon address, on a socket kept across warm invocations.

    Args:
        host: the daemon's host name or IP address.
        port: its UDP port.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._socket: _socket.socket | None = None
        self._target: tuple[object, ...] | None = None
        self._lock = threading.Lock()

    def open(self) -> tuple[_socket.socket, tuple[object, ...]]:
        """The socket and the resolved daemon address, created on first use.

        Raises:
            ExportError: NETWORK when the host name does not resolve.
        """
        sock, target = self._socket, self._target
        if sock is not None and target is not None:
            return sock, target
        with self._lock:
            sock, target = self._socket, self._target
            if sock is not None and target is not None:
                return sock, target
            try:
                family, _, _, _, address = _socket.getaddrinfo(self.host, self.port, 0, _socket.SOCK_DGRAM)[0]
            except (OSError, UnicodeError) as exc:  # UnicodeError: a name the IDNA codec refuses (a..b)
                from .errors import ErrorClass, ExportError  # failure path only: off the cold start

                raise ExportError(ErrorClass.NETWORK, f"cannot resolve {self.host}: {exc!r}") from exc
            sock = _socket.socket(family, _socket.SOCK_DGRAM)
            sock.setblocking(False)
            target = tuple(address)
            self._socket, self._target = sock, target
        return sock, target

    def send(
        self, datagrams: Iterable[bytes], members: Sequence[Sequence[ReadableSpan]] | None = None
    ) -> int:
        """Send each datagram (already framed); returns how many were sent.

        Counts them (``xray_datagrams_sent``) here, where it is known how many
        went out before a failure: the caller sees only the exception.

        Args:
            datagrams: the framed datagrams, sent in order.
            members: the spans each datagram carries (``members[i]`` for
                ``datagrams[i]``), so that a failure after some datagrams went
                out can name the spans of the others.

        Raises:
            ExportError: NETWORK when the socket refuses one, BAD_REQUEST for a
                datagram over the limit. When earlier datagrams went out and
                `members` is given, its `undelivered` names the spans of this
                datagram and the later ones: a retry of the whole batch would
                send the first ones twice (and the wrapper count them as kept).
        """
        sock, target = self.open()
        sent = 0
        try:
            for datagram in datagrams:
                if len(datagram) > MAX_DATAGRAM_BYTES:
                    from .errors import ErrorClass, ExportError

                    too_big = f"datagram of {len(datagram)} bytes over the limit"
                    raise _unsent(ExportError(ErrorClass.BAD_REQUEST, too_big), sent, members)
                try:
                    sock.sendto(datagram, target)
                except OSError as exc:  # a full socket buffer (EAGAIN) included
                    from .errors import ErrorClass, ExportError

                    error = ExportError(ErrorClass.NETWORK, f"sendto {self.host}:{self.port}: {exc!r}")
                    raise _unsent(error, sent, members) from exc
                sent += 1
        finally:
            if sent:
                stats.incr("xray_datagrams_sent", sent)
        return sent

    def close(self) -> None:
        """Close the socket (a later `send` opens a new one)."""
        sock, self._socket, self._target = self._socket, None, None
        if sock is not None:
            sock.close()

    def __del__(self) -> None:
        # An exporter replaced by `configure` may be dropped without `shutdown`:
        # close the socket rather than leak it until the interpreter notices.
        try:
            self.close()
        except Exception:  # noqa: S110 - a finalizer must not raise, and has no one to tell
            pass


def _unsent(error: ExportError, sent: int, members: Sequence[Sequence[ReadableSpan]] | None) -> ExportError:
    """`error`, naming the spans of the datagrams from the `sent`-th on when some went out before it."""
    if sent and members is not None:
        error.undelivered = [span for spans in members[sent:] for span in spans]
    return error
