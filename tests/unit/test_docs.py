"""Every rule example in docs/rules.md loads, and its templates exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cadence.flows.checks import check_rules

REPO = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "rules.md").read_text(), re.S)


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example-{i + 1}" for i in range(len(BLOCKS))])
def test_example_passes_rules_check(block: str, tmp_path: Path) -> None:
    (tmp_path / "example.yaml").write_text(block)
    problems, summary = check_rules(tmp_path, REPO / "templates")
    assert problems == [], problems
    assert "rules version" in summary
