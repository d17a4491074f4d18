"""The HTTP server's lifecycle beside the daemon: it starts on a real loopback port, stops
promptly (also with idle keep-alive connections open), leaves the daemon's signal handlers
alone, and refuses to start on a bad address or a missing or bad webhook key."""

from __future__ import annotations

import base64
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cadence.app import App
from cadence.config import ConfigError, load_settings
from cadence.feedback.server import parse_listen, start_http


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    env = {
        "CADENCE_DATABASE_URL": f"sqlite:///{tmp_path / 'cadence.db'}",
        "CADENCE_RULES_DIR": str(tmp_path / "rules"),
        "CADENCE_HTTP__SENDGRID_WEBHOOK_PUBLIC_KEY_ENV": "T_SG_KEY",
        "CADENCE_HTTP__LISTEN": "127.0.0.1:0",
    }
    a = App(load_settings(None, env))
    yield a
    a.close()


def public_key() -> str:
    der = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_starts_on_a_free_port_and_stops_promptly_with_keep_alive_clients(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_SG_KEY", public_key())
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    server = start_http(app)  # http.listen from the settings: port 0, any free one
    assert server.port > 0 and server.running
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # still the daemon's
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}")
    assert client.get("/healthz").status_code == 200  # the connection stays open, idle
    assert client.get("/nope").status_code == 404
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    assert not server.running and refused(server.port)
    server.stop()  # twice is harmless
    client.close()


def test_the_older_host_and_port_form_still_serves(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_SG_KEY", public_key())
    server = start_http(app, "127.0.0.1", 0, scheduler_alive=lambda: False)
    try:
        r = httpx.get(f"http://127.0.0.1:{server.port}/healthz")
        assert r.status_code == 503 and r.json()["scheduler"] == "stalled"
    finally:
        server.stop()


def test_an_address_in_use_is_an_error_at_start(app: App) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            start_http(app, f"127.0.0.1:{port}", public_key=None)


def test_a_named_but_unset_key_refuses_to_start(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T_SG_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$T_SG_KEY"):
        start_http(app)


def test_a_key_that_is_not_sendgrids_refuses_to_start(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_SG_KEY", "bm90IGEga2V5")
    with pytest.raises(ConfigError, match="public key"):
        start_http(app)


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8787", ("127.0.0.1", 8787)),
        ("[::1]:0", ("::1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_listen_addresses(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8787", ":8787", "host:", "host:99999", "host:x"])
def test_bad_listen_addresses(listen: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(listen)
