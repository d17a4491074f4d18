"""A kept-alive HTTP/1.1 client connection that POSTs one request at a time: what the SendGrid
transport needs of HTTP, and no more.

Why not `http.client`: with a body of its own for each email, the sending threads made one
request per email, and `http.client` spent three times the CPU of the request itself around
it (headers put one call each, head and body written by two `send`s, the answer's headers
parsed by the `email` package), all of it holding the GIL that the dispatcher's own thread
wants. Here a request is written by one `sendall` and an answer is read with a few `recv`s.

What it reads: a status line (interim 1xx answers skipped) and headers, then a body framed
by `Content-Length`, by `Transfer-Encoding: chunked`, or by the server closing the
connection. Anything else is a `ProtocolError`. A request that was (perhaps partly) written
and got no complete answer raises `OSError` (`TimeoutError` past the timeout) or
`ProtocolError`: the caller cannot know whether the server acted on it.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

#: the most an answer's status line and headers may take
MAX_HEAD = 64 * 1024
_NO_BODY = (204, 304)


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as this client reads it, or it stopped early."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    will_close: bool  # the server will not take another request on this connection

    def getheader(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Connection:
    """One connection to `host:port` (TLS with `context`), opened by `connect`."""

    def __init__(
        self, host: str, port: int | None, timeout: float, context: ssl.SSLContext | None
    ) -> None:
        self.host = host
        self.port = port or (443 if context else 80)
        self.timeout = timeout
        self.context = context
        self.sock: socket.socket | None = None
        self._buffer = bytearray()
        default = 443 if context else 80
        self.host_header = host if self.port == default else f"{host}:{self.port}"

    def connect(self) -> None:
        """Open the connection (and its TLS session): nothing of a request is written yet."""
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            # a request is written whole, at once: no small segment held back (Nagle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._buffer.clear()

    def close(self) -> None:
        sock, self.sock = self.sock, None
        self._buffer.clear()
        if sock is not None:
            sock.close()

    def post(self, path: str, headers: dict[str, str], body: bytes) -> Response:
        """Write one POST and read its answer. The connection must be open."""
        if self.sock is None:
            raise ProtocolError("not connected")
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host_header}",
            "Accept-Encoding: identity",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        while True:
            status, reason, version, fields = self._head()
            if not 100 <= status < 200:
                break
        close = fields.get("connection", "").lower()
        will_close = "close" in close or (version == "HTTP/1.0" and "keep-alive" not in close)
        if status in _NO_BODY:
            data = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            data = self._chunked()
        elif "content-length" in fields:
            try:
                length = int(fields["content-length"])
            except ValueError:
                raise ProtocolError(f"bad Content-Length {fields['content-length']!r}") from None
            data = self._exactly(length)
        else:  # the body runs until the server closes the connection
            data = self._until_closed()
            will_close = True
        return Response(status, reason, fields, data, will_close)

    # -- reading --------------------------------------------------------------------------

    def _fill(self) -> bool:
        """More bytes into the buffer; False when the server has closed the connection."""
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        self._buffer += chunk
        return bool(chunk)

    def _line_end(self, mark: bytes, limit: int) -> int:
        """Read until `mark` is in the buffer; its index."""
        while (end := self._buffer.find(mark)) < 0:
            if len(self._buffer) > limit:
                raise ProtocolError("an answer's head is too long")
            if not self._fill():
                raise ProtocolError("the server closed the connection without an answer")
        return end

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _head(self) -> tuple[int, str, str, dict[str, str]]:
        end = self._line_end(b"\r\n\r\n", MAX_HEAD)
        lines = self._take(end + 4)[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit() or len(code) != 3:
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"not a header line: {line[:80]!r}")
            key = name.strip().lower()
            fields[key] = f"{fields[key]}, {value.strip()}" if key in fields else value.strip()
        return int(code), reason.strip(), version, fields

    def _exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if not self._fill():
                raise ProtocolError(f"the connection closed {n - len(self._buffer)} bytes short")
        return self._take(n)

    def _chunked(self) -> bytes:
        parts = []
        while True:
            end = self._line_end(b"\r\n", MAX_HEAD)
            size_text = self._take(end + 2)[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                break
            parts.append(self._exactly(size + 2)[:-2])
        while (end := self._line_end(b"\r\n", MAX_HEAD)) > 0:  # trailers, then an empty line
            self._take(end + 2)
        self._take(2)
        return b"".join(parts)

    def _until_closed(self) -> bytes:
        while self._fill():
            pass
        return self._take(len(self._buffer))
