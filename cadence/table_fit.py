"""Column widths for a Rich table on a narrow terminal that break lines where words end.

Left to itself, Rich makes a table too wide for the terminal narrower by shrinking its widest
columns first, evenly, so on 80 columns a status read `schedule` / `d` and a category
`marketi` / `ng` while the reason beside them had room to spare. `fit` decides the widths
instead: the free-text columns (a reason, a subject) give way first, down to a readable
width; then the other columns (times, ids, statuses), widest first, down to their longest
word; then an id longer than a word (`pb:after-onboarding:ev-104`) is folded; and only then
does the free text get narrower still. Only when even that does not fit does Rich fold words
as it did before.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

#: a free-text column is not made narrower than this while others can give way
TEXT_MIN = 24
#: words up to this long are kept whole as long as any column can give way; a longer one (an
#: id like `pb:after-onboarding:ev-104`, an email id) is folded before a short word is
WORD = 12


def _shrink(widths: list[int], floors: list[int], over: int, order: list[int]) -> int:
    """Take up to `over` from the columns in `order`, the widest first, none below its
    floor; returns what is still over."""
    while over > 0:
        room = [(widths[i], -i) for i in order if widths[i] > floors[i]]
        if not room:
            break
        i = -max(room)[1]
        widths[i] -= 1
        over -= 1
    return over


def fit(table: Table, console: Console, text: Collection[str]) -> Table:
    """Set the widths of `table`'s columns for `console`; `text` names the headers of its
    free-text columns. A table that fits is left as it is. Returns `table`."""
    columns = table.columns
    options = console.options
    # Rich's own measure of each column, padding included: (longest word, longest line)
    ranges = [table._measure_column(console, options, c) for c in columns]
    room = options.max_width - table._extra_width
    widths = [r.maximum for r in ranges]
    over = sum(widths) - room
    if over <= 0:
        return table
    pads = [table._get_padding_width(i) for i in range(len(columns))]
    whole = [r.minimum for r in ranges]  # every word whole
    short = [min(whole[i], WORD + pads[i]) for i in range(len(columns))]  # long ids folded
    prose = [i for i, c in enumerate(columns) if str(c.header) in text]
    other = [i for i in range(len(columns)) if i not in prose]
    readable = [max(short[i], min(widths[i], TEXT_MIN + pads[i])) for i in range(len(columns))]
    # the prose gives way first, then the others down to their longest word, then they fold
    # their long ids, and only then is the prose narrower than is comfortable to read
    for order, floors in ((prose, readable), (other, whole), (other, short), (prose, short)):
        over = _shrink(widths, floors, over, order)
    if over > 0:
        return table  # not even the short words fit: Rich folds what it must, as before
    for column, width, pad in zip(columns, widths, pads, strict=True):
        column.width = max(1, width - pad)
    return table
