"""File and console transports, and picking a transport from the settings."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from cadence.config import load_settings
from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.transports import (
    ConsoleTransport,
    FileTransport,
    TransportError,
    eml_name,
    make_transport,
)

NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


def outgoing(email_id: str = "e-0123456789abcdef", **kw: object) -> OutgoingEmail:
    fields: dict[str, object] = {
        "email_id": email_id,
        "customer_id": "c-17",
        "to_email": "ana@acme.test",
        "to_name": "Ana",
        "from_email": "success@vendor.test",
        "from_name": "Vendor",
        "reply_to": None,
        "subject": "A few updates from Vendor",
        "text": "Hello Ana\n",
        "html": "<p>Hello Ana</p>\n",
        "headers": (
            ("X-Cadence-Customer", "c-17"),
            ("X-Cadence-Messages", "cs-12,prd-7"),
            ("List-Unsubscribe", "<http://localhost:8787/u/tok>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        "message_ids": ("cs-12", "prd-7"),
        "transactional": False,
        "categories": ("onboarding", "product-tour"),
    }
    fields.update(kw)
    return OutgoingEmail(**fields)  # type: ignore[arg-type]


def test_file_transport_writes_one_eml(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path / "outbox", clock=lambda: NOW)
    result = transport.send(outgoing())
    path = tmp_path / "outbox" / "e-0123456789abcdef.eml"
    assert result.provider_id == str(path)
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [path.name]  # no temp files left
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["To"] == "Ana <ana@acme.test>"
    assert parsed["X-Cadence-Messages"] == "cs-12,prd-7"
    assert parsed["Message-ID"] == "<e-0123456789abcdef@vendor.test>"
    assert parsed["Date"] == "Mon, 02 Nov 2026 14:00:00 +0000"
    assert parsed.get_content_type() == "multipart/alternative"


def test_file_transport_is_idempotent(tmp_path: Path) -> None:
    clock = iter([NOW, NOW + timedelta(hours=1)])
    transport = FileTransport(tmp_path, clock=lambda: next(clock))
    first = transport.send(outgoing())
    before = Path(first.provider_id or "").read_bytes()
    second = transport.send(outgoing(subject="changed"))
    assert second == first
    assert Path(first.provider_id or "").read_bytes() == before  # not written again
    assert len(list(tmp_path.iterdir())) == 1


def test_file_names_are_safe(tmp_path: Path) -> None:
    assert eml_name("../../etc/passwd") == "_.._etc_passwd.eml"
    transport = FileTransport(tmp_path, clock=lambda: NOW)
    transport.send(outgoing("../evil"))
    assert [p.name for p in tmp_path.iterdir()] == ["_evil.eml"]


def test_file_transport_reports_an_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TransportError) as info:
        FileTransport(blocker / "outbox", clock=lambda: NOW).send(outgoing())
    assert not info.value.maybe_sent
    assert "cannot write" in str(info.value)


def test_console_transport_prints_a_summary_and_the_text() -> None:
    stream = io.StringIO()
    result = ConsoleTransport(stream).send(outgoing())
    assert result.provider_id is None
    printed = stream.getvalue()
    assert "=== email e-0123456789abcdef to Ana <ana@acme.test>" in printed
    assert "Subject: A few updates from Vendor" in printed
    assert "Messages: cs-12, prd-7 (onboarding, product-tour)" in printed
    assert "List-Unsubscribe: <http://localhost:8787/u/tok>" in printed
    assert printed.endswith("Hello Ana\n\n")


def test_make_transport_from_settings(tmp_path: Path) -> None:
    config = tmp_path / "cadence.yaml"
    config.write_text("transport: {kind: file, file: {dir: out}}\n")
    transport = make_transport(load_settings(config, environ={}))
    assert isinstance(transport, FileTransport)
    assert transport.directory == tmp_path.resolve() / "out"
    env = {"CADENCE_TRANSPORT__KIND": "console"}
    assert isinstance(make_transport(load_settings(config, environ=env)), ConsoleTransport)


class _ClosedPipe(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_console_is_a_failure_to_retry_never_unconfirmed() -> None:
    """`cadence run --once | head`: the console transport knows nobody read the email, so it
    is not `maybe_sent` (which would leave it for a person) and not permanent."""
    with pytest.raises(TransportError) as caught:
        ConsoleTransport(_ClosedPipe()).send(outgoing())
    assert not caught.value.maybe_sent and not caught.value.permanent
    assert "cannot write to the console" in caught.value.reason
