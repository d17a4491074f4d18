"""Serving the HTTP app from a thread beside the scheduler, for the daemon's lifetime.

Why uvicorn in a thread of the daemon's own process (not a second process): it shares the
daemon's settings, store and lifecycle, and `cadence run` stays one thing to start and stop.
Uvicorn only installs signal handlers from the main thread, so SIGTERM/SIGINT stay the
daemon's. The listening socket is bound here, in the caller's thread, so "address in use" is
an error `start_http` raises at once, and the port (also when 0 was asked for) is known before
the first request. Logging is left to the daemon's configuration (no uvicorn log_config).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from cadence.feedback.app import create_app
from cadence.feedback.webhook import BadPublicKey

if TYPE_CHECKING:
    from cadence.app import App

log = logging.getLogger("cadence.http")

#: how long `stop` lets requests in flight finish before it cancels them
GRACE_SECONDS = 5


class HttpServer:
    """A running server: `port` it listens on, `stop()` to end it (idempotent)."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket):
        self.server = server
        self.thread = thread
        self.host, self.port = sock.getsockname()[:2]

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = GRACE_SECONDS + 5) -> None:
        """Stop accepting, let requests in flight finish (up to GRACE_SECONDS), and wait."""
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(2)
        if self.thread.is_alive():
            log.error("the HTTP server did not stop within %.0fs", timeout)


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT`, `[v6]:PORT`; port 0 means any free port."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{listen!r} is not HOST:PORT (e.g. 127.0.0.1:8787)")
    return host.strip("[]"), int(port)


def public_key_of(app: App) -> str | None:
    """SendGrid's verification key from the environment variable the config names. A name
    configured but not set is an error, not a silent "accept unsigned": failing open would
    let anyone post bounces and unsubscribes."""
    from cadence.config import ConfigError

    name = app.settings.http.sendgrid_webhook_public_key_env
    if not name:
        return None
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(
            [f"http.sendgrid_webhook_public_key_env names ${name}, which is not set or empty"]
        )
    return value


def inbound_key_of(app: App) -> str | None:
    """The key Inbound Parse posts must carry (`?key=`), from the environment variable
    `http.sendgrid_inbound_key_env` names; None when no variable is named (every post is
    refused). A name configured but not set is an error at start, as for the event webhook."""
    if not app.settings.http.sendgrid_inbound_key_env:
        return None
    return app.settings.secret("http.sendgrid_inbound_key_env")


def _bind(host: str, port: int) -> socket.socket:
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = info[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


_FROM_SETTINGS = object()


def start_http(
    app: App,
    listen: str | None = None,
    port: int | None = None,
    *,
    scheduler_alive: Callable[[], bool] = lambda: True,
    public_key: str | object | None = _FROM_SETTINGS,
    allow_unsigned: bool | None = None,
    inbound_key: str | object | None = _FROM_SETTINGS,
) -> HttpServer:
    """Serve `app` on `listen` (default: the `http.listen` setting) from a daemon thread.

    `public_key` defaults to the one the settings name (see `public_key_of`); pass a key, or
    None for no key, to override. Without a key, the webhook takes unsigned posts only when
    `allow_unsigned` (default: `http.sendgrid_webhook_allow_unsigned`) says so, and refuses
    every post otherwise. `inbound_key` (default: `inbound_key_of`) is what Inbound Parse posts
    must carry as `?key=`. The older form `start_http(app, host, port)` is still accepted.
    Raises `ConfigError` for a missing or bad key, `OSError` when the address cannot be bound
    (in use, not local), before anything is served."""
    from cadence.config import ConfigError

    if port is not None:
        host = listen or "127.0.0.1"
    else:
        host, port = parse_listen(listen or app.settings.http.listen)
    key = public_key_of(app) if public_key is _FROM_SETTINGS else public_key
    assert key is None or isinstance(key, str)
    inbound = inbound_key_of(app) if inbound_key is _FROM_SETTINGS else inbound_key
    assert inbound is None or isinstance(inbound, str)
    try:
        asgi = create_app(
            app,
            public_key=key,
            scheduler_alive=scheduler_alive,
            allow_unsigned=(
                app.settings.http.sendgrid_webhook_allow_unsigned
                if allow_unsigned is None
                else allow_unsigned
            ),
            inbound_key=inbound,
        )
    except BadPublicKey as exc:
        raise ConfigError([f"the SendGrid webhook public key: {exc}"]) from None
    config = uvicorn.Config(
        asgi,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACE_SECONDS,
        server_header=False,
    )
    server = uvicorn.Server(config)
    sock = _bind(host, port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="cadence-http", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the HTTP server did not start on {host}:{port}")
        time.sleep(0.01)
    running = HttpServer(server, thread, sock)
    log.info("http listening on %s:%d", running.host, running.port)
    return running
