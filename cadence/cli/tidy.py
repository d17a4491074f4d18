"""What `--help` shows, made plain for every command at once, wherever it is defined.

Typer's help prints a type beside each option (`<bool>` beside `--once`, `--help`,
`--version`): a flag takes no value, so that column tells the reader nothing and makes the
flag look like it wants one. And in the list of commands, Typer keeps the line breaks of a
docstring's first paragraph, so a summary written over two source lines was printed broken
mid-sentence. `tidy` walks the whole command tree once, before it runs: each flag gets an
empty type, and each command without a `short_help` of its own gets its docstring's first
sentence, on one line.
"""

from __future__ import annotations

import inspect
from typing import Any

from typer import _click


def summary(help_text: str) -> str:
    """A docstring's first sentence, on one line: up to its first `. `, or `; ` outside
    brackets (what follows a semicolon adds detail the command's own `--help` gives)."""
    first = " ".join(inspect.cleandoc(help_text).split("\n\n", 1)[0].split())
    for end in (". ", "; "):
        head, found, _ = first.partition(end)
        if found and head.count("(") == head.count(")"):
            first = head + "."
    return first


def _tidy_params(command: Any) -> None:
    context = _click.Context(command, info_name=command.name)
    params = list(command.params)
    help_option = command.get_help_option(context)
    if help_option is not None:
        params.append(help_option)
    for param in params:
        if getattr(param, "is_flag", False):
            # the type column shows the metavar when one is set; empty: nothing is shown
            param.metavar = ""


def tidy(command: Any) -> Any:
    """`command` and everything under it, with flags shown without a type and one-line
    summaries; returns `command`."""
    _tidy_params(command)
    if getattr(command, "help", None) and not getattr(command, "short_help", None):
        command.short_help = summary(command.help)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command
