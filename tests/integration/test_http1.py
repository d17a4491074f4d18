"""The SendGrid transport's HTTP/1.1 connection (`cadence/delivery/http1.py`) against a local
server that answers each request with scripted bytes: every framing of an answer it reads,
and each way an answer can go wrong."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cadence.delivery.http1 import Connection, ProtocolError

OK = b"HTTP/1.1 202 Accepted\r\nX-Message-Id: sg-1\r\nContent-Length: 0\r\n\r\n"


class Scripted:
    """Reads whole requests on one connection at a time; answers each with the next script
    entry, sent in pieces (a few bytes apart) to make the client read more than once; None:
    hang up without an answer."""

    def __init__(self, *answers: bytes | None) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while self.answers:
                    while b"\r\n\r\n" not in data:
                        more = conn.recv(65536)
                        if not more:
                            break
                        data += more
                    if b"\r\n\r\n" not in data:
                        break
                    head, _, data = data.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    while len(data) < length:
                        data += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + data[:length])
                    data = data[length:]
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    for i in range(0, len(answer), 7):
                        conn.sendall(answer[i : i + 7])
                    if b"connection: close" in answer.lower() or b"HTTP/1.0" in answer[:8]:
                        break
                else:  # the script is done: the connection stays open until the client goes
                    while conn.recv(65536):
                        pass

    def connection(self, timeout: float = 2.0) -> Connection:
        conn = Connection("127.0.0.1", self.port, timeout, None)
        conn.connect()
        return conn


@pytest.fixture
def server() -> Iterator[type[Scripted]]:
    made: list[Scripted] = []

    def make(*answers: bytes | None) -> Scripted:
        s = Scripted(*answers)
        made.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in made:
        s.listener.close()


def test_the_request_goes_whole_and_answers_keep_the_connection(server: type[Scripted]) -> None:
    s = server(OK, OK)
    conn = s.connection()
    for _ in range(2):
        r = conn.post("/v3/mail/send", {"Authorization": "Bearer k"}, b'{"a": "\xc3\xbc"}')
        assert (r.status, r.reason, r.getheader("x-message-id"), r.body) == (
            202,
            "Accepted",
            "sg-1",
            b"",
        )
        assert not r.will_close
    conn.close()
    head, _, body = s.requests[1].partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"POST /v3/mail/send HTTP/1.1"
    assert f"Host: 127.0.0.1:{s.port}".encode() in head and b"Authorization: Bearer k" in head
    assert b"Content-Length: 11" in head and body == b'{"a": "\xc3\xbc"}'
    assert len(s.requests) == 2  # one connection


@pytest.mark.parametrize(
    ("answer", "body", "closes"),
    [
        (
            b'HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\n\r\n{"errors":1}',
            b'{"errors":1}',
            False,
        ),
        (
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'4;x=y\r\n{"er\r\n7\r\nrors":1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n',
            b'{"errors":1}',
            False,
        ),
        (b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nno length", b"no length", True),
        (b"HTTP/1.0 202 Accepted\r\nContent-Length: 2\r\n\r\nok", b"ok", True),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, b"", False),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"", False),
    ],
    ids=["length", "chunked", "until-closed", "http/1.0", "interim-100", "no-content"],
)
def test_every_framing_of_an_answer(
    server: type[Scripted], answer: bytes, body: bytes, closes: bool
) -> None:
    s = server(answer, OK)
    conn = s.connection()
    r = conn.post("/p", {}, b"x")
    assert r.body == body and r.will_close is closes
    if not closes:  # the next answer starts where this one ended
        assert conn.post("/p", {}, b"y").getheader("X-Message-Id") == "sg-1"
    conn.close()


@pytest.mark.parametrize(
    "answer",
    [
        None,  # hung up without a word
        b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 10\r\n\r\nshort",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 202 Accepted\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 202 Accepted\r\nContent-Length: many\r\n\r\n",
    ],
    ids=["no-answer", "short-body", "not-http", "bad-header", "bad-chunk", "bad-length"],
)
def test_a_broken_answer_is_a_protocol_error(server: type[Scripted], answer: bytes | None) -> None:
    s = server(answer)
    conn = s.connection()
    with pytest.raises(ProtocolError):
        conn.post("/p", {}, b"x")
    conn.close()


def test_no_answer_in_time_is_a_timeout(server: type[Scripted]) -> None:
    s = server(b"HTTP/1.1 202 Accepted\r\n")  # and then nothing more
    conn = s.connection(timeout=0.3)
    with pytest.raises(TimeoutError):
        conn.post("/p", {}, b"x")
    conn.close()


def test_a_head_without_end_is_refused() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def flood() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 202 Accepted\r\n" + b"X-A: b\r\n" * 20000)

    threading.Thread(target=flood, daemon=True).start()
    conn = Connection("127.0.0.1", listener.getsockname()[1], 2.0, None)
    conn.connect()
    with pytest.raises(ProtocolError, match="too long"):
        conn.post("/p", {}, b"x")
    conn.close()
    listener.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_over_tls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        raw, _ = listener.accept()
        with served.wrap_socket(raw, server_side=True) as conn:
            for _ in range(2):
                data = b""
                while not data.endswith(b"x"):
                    data += conn.recv(65536)
                conn.sendall(OK)

    threading.Thread(target=serve, daemon=True).start()
    conn = Connection(
        "localhost", listener.getsockname()[1], 2.0, ssl.create_default_context(cafile=cert)
    )
    conn.connect()
    for _ in range(2):  # one TLS session, kept
        assert conn.post("/p", {}, b"x").getheader("X-Message-Id") == "sg-1"
    conn.close()
    listener.close()
