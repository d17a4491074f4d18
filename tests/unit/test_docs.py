"""Every rule example in docs/rules.md loads, and its templates exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.doc_blocks import REPO, blocks, check_rule_example

BLOCKS = [b.text for b in blocks((REPO / "docs" / "rules.md").read_text()) if b.lang == "yaml"]


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example-{i + 1}" for i in range(len(BLOCKS))])
def test_example_passes_rules_check(block: str, tmp_path: Path) -> None:
    check_rule_example(block, tmp_path)
