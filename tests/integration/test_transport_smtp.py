"""The SMTP transport against a real SMTP server (aiosmtpd) on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from cadence.config import load_settings
from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.transports import TransportError, make_transport
from cadence.delivery.transports.smtp import SmtpTransport

NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it receives and refuses what it is told to."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def outgoing(email_id: str = "e-0123456789abcdef", **kw: object) -> OutgoingEmail:
    fields: dict[str, object] = {
        "email_id": email_id,
        "customer_id": "c-17",
        "to_email": "ana@acme.test",
        "to_name": "Ana",
        "from_email": "success@vendor.test",
        "from_name": "Vendor",
        "reply_to": None,
        "subject": "Welcome, Ana",
        "text": "Hello Ana, ünïcode too\n",
        "html": "<p>Hello Ana</p>\n",
        "headers": (
            ("X-Cadence-Customer", "c-17"),
            ("X-Cadence-Messages", "cs-12"),
            ("List-Unsubscribe", "<http://localhost:8787/u/tok>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        "message_ids": ("cs-12",),
        "transactional": False,
        "categories": ("onboarding",),
    }
    fields.update(kw)
    return OutgoingEmail(**fields)  # type: ignore[arg-type]


def test_sends_and_reuses_the_connection(server: tuple[Inbox, int]) -> None:
    inbox, port = server
    transport = SmtpTransport("127.0.0.1", port, timeout=5, clock=lambda: NOW)
    try:
        first = transport.send(outgoing())
        transport.send(outgoing("e-2", to_email="ben@acme.test"))
    finally:
        transport.close()
    assert first.provider_id == "<e-0123456789abcdef@vendor.test>"
    assert [(frm, to) for frm, to, _ in inbox.received] == [
        ("success@vendor.test", ["ana@acme.test"]),
        ("success@vendor.test", ["ben@acme.test"]),
    ]
    parsed = message_from_bytes(inbox.received[0][2], policy=policy.default)
    assert parsed["Subject"] == "Welcome, Ana"
    assert parsed["X-Cadence-Messages"] == "cs-12"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = parsed.get_body(("plain",))
    assert text is not None and "ünïcode" in text.get_content()


def test_refused_recipient_permanent_or_temporary(server: tuple[Inbox, int]) -> None:
    inbox, port = server
    inbox.refuse_rcpt = {
        "gone@acme.test": "550 5.1.1 no such user",
        "busy@acme.test": "451 4.3.0 try again later",
    }
    transport = SmtpTransport("127.0.0.1", port, timeout=5, clock=lambda: NOW)
    try:
        with pytest.raises(TransportError) as info:
            transport.send(outgoing(to_email="gone@acme.test"))
        assert info.value.permanent and not info.value.maybe_sent
        assert "550" in str(info.value)
        with pytest.raises(TransportError) as info:
            transport.send(outgoing(to_email="busy@acme.test"))
        assert not info.value.permanent and not info.value.maybe_sent
        transport.send(outgoing())  # the session is still usable
    finally:
        transport.close()
    assert len(inbox.received) == 1


def test_reconnects_after_the_server_closed_the_connection(server: tuple[Inbox, int]) -> None:
    inbox, port = server
    transport = SmtpTransport("127.0.0.1", port, timeout=5, clock=lambda: NOW)
    try:
        transport.send(outgoing())
        assert transport._smtp is not None
        transport._smtp.sock.close()  # type: ignore[union-attr]  # the server went away
        transport.send(outgoing("e-2"))
    finally:
        transport.close()
    assert len(inbox.received) == 2


def test_nothing_listening_is_a_temporary_failure() -> None:
    transport = SmtpTransport("127.0.0.1", free_port(), timeout=2, clock=lambda: NOW)
    with pytest.raises(TransportError) as info:
        transport.send(outgoing())
    assert not info.value.permanent and not info.value.maybe_sent
    assert "cannot connect" in str(info.value)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login(tmp_path: Path) -> None:
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        assert isinstance(data, LoginPassword)
        seen.append((data.login, data.password))
        # handled=False: aiosmtpd answers a failure with 535 itself
        return AuthResult(success=data.password == b"hunter2", handled=False)

    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        config = tmp_path / "cadence.yaml"
        config.write_text(
            "transport:\n  kind: smtp\n"
            f"  smtp: {{host: 127.0.0.1, port: {port}, username: mailer, password_env: SMTP_PW}}\n"
        )
        good = make_transport(load_settings(config, environ={"SMTP_PW": "hunter2"}))
        try:
            good.send(outgoing())
        finally:
            good.close()
        bad = make_transport(load_settings(config, environ={"SMTP_PW": "wrong"}))
        with pytest.raises(TransportError, match="refused the login for 'mailer'"):
            bad.send(outgoing())
    finally:
        controller.stop()
    assert (b"mailer", b"hunter2") in seen
    assert len(inbox.received) == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_starttls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True
    )
    controller.start()
    try:
        plain = SmtpTransport("127.0.0.1", port, timeout=5, clock=lambda: NOW)
        with pytest.raises(TransportError):
            plain.send(outgoing())
        plain.close()
        client_tls = ssl.create_default_context(cafile=str(cert))
        secure = SmtpTransport(
            "127.0.0.1", port, starttls=True, timeout=5, clock=lambda: NOW, ssl_context=client_tls
        )
        try:
            secure.send(outgoing())
        finally:
            secure.close()
    finally:
        controller.stop()
    assert len(inbox.received) == 1
