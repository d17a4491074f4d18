"""The `cadence` entry point: `preview` is first asked of a running daemon
(`cadence.runtime.control`); everything else, and a preview no daemon answers, goes to the full
command line.

Why a separate entry: the full command line imports Typer, and through `preview` SQLAlchemy and
pydantic: ~0.7 s before the first row is read. This module imports only the standard library
and `cadence.runtime.control`, and it understands only the plain forms of `preview` (config,
customer, `--days`, `--at`, `--format`, `--render`); anything else (`--help`, `--rules`, a
typo) goes to Typer, which parses and reports it as it always does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

#: the environment variables Rich consults to decide colour and size, sent with a request so
#: the daemon draws the table as the command's own Console would
_RICH_ENV = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS", "LINES")
_VALUED = {"--days": "days", "--at": "at", "--format": "format"}


def parse_preview(argv: list[str]) -> tuple[Path | None, dict[str, Any]] | None:
    """(config, request) for a plain `[-c FILE] preview CUSTOMER [options]`, else None."""
    args = list(argv)
    config: Path | None = None
    if args and (args[0] in ("-c", "--config") or args[0].startswith("--config=")):
        head = args.pop(0)
        if "=" in head:
            config = Path(head.split("=", 1)[1])
        elif args:
            config = Path(args.pop(0))
        else:
            return None
    if not args or args.pop(0) != "preview":
        return None
    request: dict[str, Any] = {
        "command": "preview",
        "customer": None,
        "days": 14,
        "at": None,
        "format": "table",
        "render": False,
    }
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in _VALUED:
            if not eq:
                if not args:
                    return None
                value = args.pop(0)
            request[_VALUED[name]] = value
        elif arg in ("--render", "--no-render"):
            request["render"] = arg == "--render"
        elif arg.startswith("-") or request["customer"] is not None:
            return None
        else:
            request["customer"] = arg
    if request["customer"] is None or not str(request["days"]).lstrip("-").isdigit():
        return None
    request["days"] = int(request["days"])
    return config, request


def _terminal() -> dict[str, Any]:
    """What Rich's Console() would find here: whether stdout is a terminal, the size it would
    use (the first of stdin/stdout/stderr that is a terminal, else 80x25, COLUMNS/LINES win)."""
    width = height = 0
    for fd in (0, 1, 2):
        try:
            width, height = os.get_terminal_size(fd)
        except OSError:
            continue
        break
    environ = {k: os.environ[k] for k in _RICH_ENV if k in os.environ}
    if environ.get("COLUMNS", "").isdigit():
        width = int(environ["COLUMNS"])
    if environ.get("LINES", "").isdigit():
        height = int(environ["LINES"])
    if environ.get("TERM", "").lower() in ("dumb", "unknown"):
        width, height = 80, 25
    return {
        "isatty": sys.stdout.isatty(),
        "size": [width or 80, height or 25],
        "environ": environ,
    }


def from_daemon(argv: list[str]) -> str | None:
    parsed = parse_preview(argv)
    if parsed is None:
        return None
    from cadence.config_file import ConfigMissing, config_file
    from cadence.runtime import control

    config, request = parsed
    try:
        file = config_file(config, os.environ)
        path = control.socket_path(file, os.environ, os.getcwd())
    except (ConfigMissing, OSError):
        return None  # the full command line reports it
    return control.ask(path, {**request, "terminal": _terminal()})


def main() -> None:
    if os.environ.get("CADENCE_NO_DAEMON_PREVIEW") != "1":
        output = from_daemon(sys.argv[1:])
        if output is not None:
            sys.stdout.write(output)
            sys.stdout.flush()
            return
    from cadence.cli.main import main as full

    full()
