"""The SendGrid transport against a local HTTP server standing in for the API host."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cadence.config import ConfigError, load_settings
from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.transports import TransportError, make_transport
from cadence.delivery.transports.sendgrid import SendgridTransport


@dataclass
class FakeApi:
    """What the next response is, and every request received."""

    status: int = 202
    body: bytes = b""
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def api() -> Iterator[tuple[FakeApi, str]]:
    state = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.requests.append(
                {
                    "path": self.path,
                    "auth": self.headers["Authorization"],
                    "type": self.headers["Content-Type"],
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            time.sleep(state.delay)
            try:
                self.send_response(state.status)
                if state.status == 202:
                    self.send_header("X-Message-Id", "sg-abc123")
                self.send_header("Content-Length", str(len(state.body)))
                self.end_headers()
                self.wfile.write(state.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def outgoing() -> OutgoingEmail:
    return OutgoingEmail(
        email_id="e-0123456789abcdef",
        customer_id="c-17",
        to_email="ana@acme.test",
        to_name="Ana",
        from_email="success@vendor.test",
        from_name="Vendor",
        reply_to=None,
        subject="Welcome, Ana",
        text="Hello Ana\n",
        html=None,
        headers=(("X-Cadence-Customer", "c-17"), ("X-Cadence-Messages", "cs-12")),
        message_ids=("cs-12",),
        transactional=False,
        categories=("onboarding",),
    )


def settings_for(tmp_path: Path, host: str, sandbox: bool = False) -> Path:
    config = tmp_path / "cadence.yaml"
    config.write_text(
        "transport:\n  kind: sendgrid\n"
        f"  sendgrid: {{api_host: '{host}/', sandbox: {str(sandbox).lower()}, timeout: 2s}}\n"
    )
    return config


def test_posts_the_payload_and_returns_the_message_id(
    api: tuple[FakeApi, str], tmp_path: Path
) -> None:
    state, host = api
    config = settings_for(tmp_path, host, sandbox=True)
    transport = make_transport(load_settings(config, environ={"SENDGRID_API_KEY": "SG.key"}))
    assert transport.send(outgoing()).provider_id == "sg-abc123"
    (request,) = state.requests
    assert request["path"] == "/v3/mail/send"
    assert request["auth"] == "Bearer SG.key"
    assert request["type"] == "application/json"
    body = request["json"]
    assert body["custom_args"]["cadence_email"] == "e-0123456789abcdef"
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_missing_api_key_is_an_error_at_start(api: tuple[FakeApi, str], tmp_path: Path) -> None:
    _, host = api
    with pytest.raises(ConfigError, match="SENDGRID_API_KEY is not set"):
        make_transport(load_settings(settings_for(tmp_path, host), environ={}))


def test_bad_request_is_permanent_with_sendgrids_reason(api: tuple[FakeApi, str]) -> None:
    state, host = api
    state.status = 400
    state.body = json.dumps(
        {"errors": [{"message": "Does not contain a valid address.", "field": "from.email"}]}
    ).encode()
    with pytest.raises(TransportError) as info:
        SendgridTransport("SG.key", host).send(outgoing())
    assert info.value.permanent and not info.value.maybe_sent
    assert "HTTP 400 from.email: Does not contain a valid address." in str(info.value)


@pytest.mark.parametrize("status", [401, 403, 413])
def test_key_and_size_refusals_fail_at_once(api: tuple[FakeApi, str], status: int) -> None:
    state, host = api
    state.status = status
    with pytest.raises(TransportError) as info:
        SendgridTransport("SG.key", host).send(outgoing())
    assert info.value.permanent and f"HTTP {status}" in str(info.value)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_refusals(api: tuple[FakeApi, str], status: int) -> None:
    state, host = api
    state.status = status
    with pytest.raises(TransportError) as info:
        SendgridTransport("SG.key", host).send(outgoing())
    assert not info.value.permanent and not info.value.maybe_sent


def test_no_answer_in_time_may_have_been_sent(api: tuple[FakeApi, str]) -> None:
    state, host = api
    state.delay = 1.5
    with pytest.raises(TransportError) as info:
        SendgridTransport("SG.key", host, timeout=0.3).send(outgoing())
    assert info.value.maybe_sent


def test_nothing_listening_was_not_sent() -> None:
    with pytest.raises(TransportError) as info:
        SendgridTransport("SG.key", "http://127.0.0.1:9", timeout=2).send(outgoing())
    assert not info.value.maybe_sent and "cannot reach" in str(info.value)


def _keepalive_server(answers_per_connection: int) -> tuple[str, list[int], socket.socket]:
    """A server that answers HTTP/1.1 keep-alive requests, then closes each connection after
    `answers_per_connection` of them (as a provider's load balancer drops idle connections).
    Returns its URL and the number of requests seen on each connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    per_connection: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            per_connection.append(0)
            with conn, conn.makefile("rb") as reader:
                for _ in range(answers_per_connection):
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    reader.read(length)
                    per_connection[-1] += 1
                    conn.sendall(
                        b"HTTP/1.1 202 Accepted\r\nX-Message-Id: sg-1\r\nContent-Length: 0\r\n\r\n"
                    )

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", per_connection, listener


def test_one_connection_carries_many_emails() -> None:
    url, per_connection, listener = _keepalive_server(answers_per_connection=100)
    transport = SendgridTransport("SG.key", url)
    for _ in range(5):
        assert transport.send(outgoing()).provider_id == "sg-1"
    transport.close()
    listener.close()
    assert per_connection == [5]


def test_a_connection_the_server_closed_while_idle_is_opened_again() -> None:
    url, per_connection, listener = _keepalive_server(answers_per_connection=1)
    transport = SendgridTransport("SG.key", url)
    for _ in range(3):
        assert transport.send(outgoing()).provider_id == "sg-1"
        time.sleep(0.05)  # the server hangs up while the connection is idle
    transport.close()
    listener.close()
    assert per_connection == [1, 1, 1]
