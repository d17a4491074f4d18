"""The fenced examples of a docs page, and the one check a rule example must pass: the tests
that keep docs/rules.md and docs/reference.md true share them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cadence.flows.checks import check_rules

REPO = Path(__file__).resolve().parents[2]

#: a fence at the start of a line, its info string (language, then tags) and its body
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Block:
    lang: str
    tags: tuple[str, ...]
    text: str
    line: int  # 1-based, the line of the opening fence

    def tagged(self, tag: str) -> bool:
        return tag in self.tags


def blocks(page: str) -> list[Block]:
    """Every fenced block of `page`, in order: ```yaml rules gives lang `yaml`, tags (rules,)."""
    out = []
    for match in _FENCE.finditer(page):
        info = match.group(1).split()
        line = page.count("\n", 0, match.start()) + 1
        out.append(Block(info[0] if info else "", tuple(info[1:]), match.group(2), line))
    return out


def check_rule_example(block: str, folder: Path) -> None:
    """`block` as the only rule file of `folder` passes `cadence rules check` against the
    repository's templates."""
    (folder / "example.yaml").write_text(block)
    problems, summary = check_rules(folder, REPO / "templates")
    assert problems == [], problems
    assert "rules version" in summary
