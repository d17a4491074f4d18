"""Tables on an 80-column terminal break lines where words end: the free text gives way
first, ids longer than a word fold before the prose gets narrow, and a table that fits is
left as Rich lays it out."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from cadence.table_fit import fit

REASON = (
    "merged by onboarding-digest with prd-7 into one email at Tue 08 Dec 14:00 EST, "
    "after the weekly-total limit had counted two emails in the seven days before"
)


def _render(table: Table, width: int = 80) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    console.print(fit(table, console, ("why",)))
    return out.getvalue().splitlines()


def _ledger(message: str = "mkt-303") -> Table:
    table = Table(show_lines=True)
    for col in ("at (UTC)", "customer\nmessage", "role\ncategory", "status\nemail", "why"):
        table.add_column(col, overflow="fold")
    table.add_row(
        "2026-12-22 14:00",
        f"c-17\n{message}",
        "marketing\nannouncement",
        "unconfirmed\ne-93b3fed56b6878ea",
        REASON,
    )
    return table


def _cells(lines: list[str]) -> list[str]:
    return [cell.strip() for line in lines for cell in line.split("│") if cell.strip()]


def test_no_word_is_broken_at_80_columns() -> None:
    lines = _render(_ledger())
    assert max(len(line) for line in lines) <= 80
    cells = _cells(lines)
    for word in ("marketing", "announcement", "unconfirmed", "2026-12-22", "mkt-303"):
        assert any(word in cell for cell in cells), word
    # the reason wraps between its words only
    text = " ".join(c for c in cells)
    for word in REASON.split():
        assert word.strip(",") in text, word


def test_an_id_longer_than_a_word_folds_before_the_prose_gets_narrow() -> None:
    lines = _render(_ledger("pb:after-onboarding:ev-104-and-a-long-tail"))
    assert max(len(line) for line in lines) <= 80
    cells = _cells(lines)
    assert "pb:after-onboarding:ev-104-and-a-long-tail" not in cells  # folded
    assert "announcement" in " ".join(cells) and "onboarding-digest" in " ".join(cells)


def test_a_table_that_fits_is_left_alone() -> None:
    table = Table()
    for col in ("status", "why"):
        table.add_column(col)
    table.add_row("scheduled", "not planned yet")
    _render(table)
    assert [c.width for c in table.columns] == [None, None]
