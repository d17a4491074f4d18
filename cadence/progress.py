"""How long work says how far it has got: a plain callback, `done` of `total` units (`total`
None while unknown). The work counts in its own units (records, virtual seconds, customers
read); the command line draws the bar. Nothing here knows how progress is shown, so the layers
that do the work need no terminal library."""

from __future__ import annotations

from collections.abc import Callable

#: `done` of `total` units so far; `total` None while it is not known yet
Progress = Callable[[int, int | None], None]


def quiet(done: int, total: int | None) -> None:
    """Progress nobody watches."""
