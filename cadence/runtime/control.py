"""Where a running daemon answers read-only commands, and how a command asks it.

Why: `cadence preview` from a cold start spends ~0.7 s importing SQLAlchemy, pydantic and
Typer before it reads a row, while a running daemon has all of that loaded and its rules
compiled. So the daemon listens on a Unix socket and `cadence preview` first asks it, falling
back to doing the work itself when no daemon answers (`cadence/cli/quick.py`).

Why a Unix socket, named from the settings' inputs:
- The daemon's HTTP port faces the internet (unsubscribe links, SendGrid's webhook); a
  customer's preview must not. A socket in a folder only its user may enter is reachable by
  that user alone, with no token to leak.
- The client must find the socket without loading settings (that is the cost it avoids). The
  name is a digest of exactly what settings are made from: the config file (its real path,
  size and modification time), the `CADENCE_*` variables, and the working directory when a
  relative path could depend on it. Same inputs, same socket; an edited config file or a
  different variable gives another name, and the command does the work itself.

This module imports only the standard library: it runs before anything heavy is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cadence import __version__

#: where the socket goes, when set (e.g. systemd's RuntimeDirectory); else
#: $XDG_RUNTIME_DIR/cadence, else /tmp/cadence-UID
RUNTIME_ENV = "CADENCE_RUNTIME_DIR"
#: the top-level keys of `Settings` (a test holds them equal): only `CADENCE_*` variables
#: that set one of them change the settings. Others, like the unsubscribe secret's
#: CADENCE_UNSUBSCRIBE_SECRET, are read elsewhere and must not tell daemon and command apart.
SETTINGS_KEYS = frozenset(
    {
        "database_url",
        "rules_dir",
        "templates_dir",
        "default_timezone",
        "sender",
        "senders",
        "transport",
        "unsubscribe",
        "http",
        "daemon",
    }
)
#: bumped when a request or answer changes shape; a daemon of another protocol is not asked
PROTOCOL = 1
#: a request or an answer larger than this is not one of ours
MAX_MESSAGE = 64 * 1024 * 1024
#: how long a command waits for the daemon before doing the work itself
ASK_TIMEOUT = 10.0


def _inputs(file: Path | None, environ: Mapping[str, str], cwd: str) -> dict[str, Any]:
    """Everything the settings are made from, as data."""
    env = {k.upper(): v for k, v in environ.items() if _sets_a_key(k)}
    inputs: dict[str, Any] = {"version": __version__, "protocol": PROTOCOL, "env": env}
    if file is not None:
        stat = file.stat()
        inputs["file"] = [os.path.realpath(file), stat.st_size, stat.st_mtime_ns]
    if file is None or env:
        # relative paths from the environment (or defaults, with no file) follow the cwd
        inputs["cwd"] = os.path.realpath(cwd)
    return inputs


def _sets_a_key(name: str) -> bool:
    upper = name.upper()
    if not upper.startswith("CADENCE_"):
        return False
    return upper[len("CADENCE_") :].split("__", 1)[0].lower() in SETTINGS_KEYS


def socket_dir(environ: Mapping[str, str]) -> Path:
    named = environ.get(RUNTIME_ENV)
    if named:
        return Path(named)
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "cadence"
    return Path(environ.get("TMPDIR") or "/tmp") / f"cadence-{os.getuid()}"


def socket_path(file: Path | None, environ: Mapping[str, str], cwd: str) -> Path:
    inputs = json.dumps(_inputs(file, environ, cwd), sort_keys=True)
    digest = hashlib.sha256(inputs.encode()).hexdigest()[:24]
    return socket_dir(environ) / f"{digest}.sock"


def private_dir(folder: Path, *, create: bool) -> bool:
    """Whether `folder` is a real directory of ours that nobody else may enter (created so
    if asked). Anything else (a symlink, another owner, open permissions) is not trusted:
    the socket would be reachable, or replaceable, by someone else."""
    if create:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return False
    try:
        st = folder.lstat()
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o077 == 0


def send_message(sock: socket.socket, message: Mapping[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def read_message(stream: Any) -> dict[str, Any] | None:
    """One JSON line from a file-like stream; None if the line is missing, too long or not
    a JSON object."""
    line = stream.readline(MAX_MESSAGE + 1)
    if not line or len(line) > MAX_MESSAGE:
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def ask(path: Path, request: Mapping[str, Any], timeout: float = ASK_TIMEOUT) -> str | None:
    """The daemon's output for `request`, or None when no daemon of ours answers it (none
    running, another version, or it declined: the caller then does the work itself)."""
    if not private_dir(path.parent, create=False):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            send_message(sock, {"protocol": PROTOCOL, **request})
            with sock.makefile("rb") as stream:
                answer = read_message(stream)
    except OSError:
        return None
    if answer is None or answer.get("protocol") != PROTOCOL:
        return None
    output = answer.get("output")
    return output if isinstance(output, str) else None
