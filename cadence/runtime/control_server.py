"""The daemon's side of `cadence.runtime.control`: a Unix socket that answers `preview` from the
daemon's warm process (its imports done, its rules compiled, its database connections open).

It answers only what it can answer exactly as the command would; anything else (a time that
does not parse, an unknown customer, an error) is declined, and the command then does the
work itself, with its own error messages and exit codes. So the socket adds speed and never a
second way to fail.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socketserver
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadence.runtime import control

if TYPE_CHECKING:
    from cadence.app import App

log = logging.getLogger("cadence.control")


def answer_preview(app: App, request: dict[str, Any]) -> str | None:
    """What `cadence preview` would print for `request`, or None to let the command do it."""
    from rich.console import Console

    from cadence.clock import utcnow
    from cadence.flows.preview import UnknownCustomer, preview
    from cadence.instants import parse_instant
    from cadence.printing import write_preview

    customer, days, fmt = request.get("customer"), request.get("days"), request.get("format")
    render, term = request.get("render"), request.get("terminal")
    if not isinstance(customer, str) or fmt not in ("table", "json") or not isinstance(term, dict):
        return None
    if not isinstance(days, int) or isinstance(days, bool) or not isinstance(render, bool):
        return None
    if days < 1:  # the command says what is wrong with it
        return None
    at = request.get("at")
    if at is not None and not isinstance(at, str):
        return None
    try:
        as_of = utcnow() if at is None else parse_instant(at)
    except ValueError:  # the command says what is wrong with it
        return None
    settings = app.settings
    try:
        p = preview(app.store, settings, app.rules(), customer, as_of, days, bodies=render)
    except UnknownCustomer:
        return None
    out = io.StringIO()
    width, height = term.get("size") or (80, 25)
    console = Console(
        file=out,
        width=int(width),
        height=int(height),
        # the command's own stdout decides, as Console() would decide there
        force_terminal=True if term.get("isatty") else None,
        _environ={str(k): str(v) for k, v in (term.get("environ") or {}).items()},
    )
    write_preview(console, p, fmt=fmt, render=render)
    return out.getvalue()


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        request = control.read_message(self.rfile)
        if request is None:  # a probe that connected and left, or not one of ours
            return
        output = None
        if request.get("protocol") == control.PROTOCOL:
            try:
                if request.get("command") == "preview":
                    output = answer_preview(self.server.app, request)
            except Exception:  # declined: the command does the work and reports the error
                log.exception("control request failed; the command will do it itself")
        answer: dict[str, Any] = {"protocol": control.PROTOCOL}
        if output is not None:
            answer["output"] = output
        with contextlib.suppress(OSError):  # the command gave up waiting and did it itself
            self.wfile.write(json.dumps(answer).encode() + b"\n")


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, app: App) -> None:
        self.app = app
        super().__init__(str(path), _Handler)


class ControlSocket:
    """The socket a daemon serves, removed (if still ours) by `stop()`."""

    def __init__(self, server: _Server, path: Path) -> None:
        self.server, self.path = server, path
        self.inode = path.stat().st_ino
        self.thread = threading.Thread(
            target=server.serve_forever, name="cadence-control", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with contextlib.suppress(OSError):  # gone already, or taken over
            if self.path.stat().st_ino == self.inode:
                self.path.unlink()


def start_control(app: App) -> ControlSocket | None:
    """Serve the socket for `app`'s settings, unless another live daemon with the same
    settings already does (several daemons on one host share one PostgreSQL: one answering
    is enough) or the socket folder is not private; never fatal to the daemon."""
    path = control.socket_path(app.settings.source, os.environ, os.getcwd())
    if not control.private_dir(path.parent, create=True):
        log.warning("control socket not started: %s is not a private folder", path.parent)
        return None
    if path.exists():
        if _live(path):
            log.info("control socket %s is served by another daemon", path)
            return None
        path.unlink(missing_ok=True)  # left by a daemon that died
    try:
        server = _Server(path, app)
    except OSError as exc:  # another daemon bound it a moment ago
        log.info("control socket not started: %s", exc)
        return None
    log.info("answering previews on %s", path)
    return ControlSocket(server, path)


def _live(path: Path) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True
