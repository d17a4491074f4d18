"""The progress bar long commands draw on a terminal: Rich's `Progress`, transient, so the
output after it is what the command prints without it. Piped, or with `--format json`, nothing
is drawn and the callback does nothing: what reaches a file or a program is the same text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import Console


class Shown(Protocol):
    """A `cadence.progress.Progress` callback that can also change the bar's label."""

    def __call__(self, done: int, total: int | None) -> None: ...

    def describe(self, text: str) -> None: ...


class _Unseen:
    def __call__(self, done: int, total: int | None) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


@contextmanager
def progress_bar(
    description: str, *, fmt: str = "text", console: Console | None = None
) -> Iterator[Shown]:
    """A callback that moves a bar labelled `description` while the block runs, on a
    terminal and for text output; else one that does nothing."""
    from rich.console import Console

    console = console or Console()
    if fmt == "json" or not console.is_terminal:
        yield _Unseen()
        return
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        # a `Progress` draws as it starts, so even short work shows the bar once
        task = bar.add_task(description, total=None)

        class Moving:
            def __call__(self, done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            def describe(self, text: str) -> None:
                bar.update(task, description=text)

        yield Moving()
