"""Serving the HTTP app from a thread beside the scheduler: it starts and stops with the
daemon, and uvicorn leaves the daemon's signal handlers alone (not the main thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from cadence.http.app import create_app

if TYPE_CHECKING:
    from cadence.app import App


class HttpServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def port(self) -> int:
        for s in self.server.servers:
            for sock in s.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the HTTP server is not listening")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_http(
    app: App, host: str, port: int, *, scheduler_alive: Callable[[], bool] = lambda: True
) -> HttpServer:
    config = uvicorn.Config(
        create_app(app, scheduler_alive=scheduler_alive),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="cadence-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the HTTP server could not listen on {host}:{port}")
        time.sleep(0.02)
    return HttpServer(server, thread)
