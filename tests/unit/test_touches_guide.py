"""docs/touches.md stays true: every rule example loads, every JSON line is a valid recorded
touch, and the CRM export it shows is docs/examples/crm-touches.csv, byte for byte (the file
is imported through the command line in tests/e2e/test_touches.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cadence.ingest.readers import MESSAGES, parse_csv
from cadence.ingest.records import RecordedIn
from tests.support.doc_blocks import REPO, check_rule_example

GUIDE = (REPO / "docs" / "touches.md").read_text()
YAML = re.findall(r"```yaml\n(.*?)```", GUIDE, re.S)
JSONL = re.findall(r"```jsonl\n(.*?)```", GUIDE, re.S)
CSV = re.findall(r"```csv\n(.*?)```", GUIDE, re.S)


def test_the_guide_has_its_examples() -> None:
    assert len(YAML) >= 5 and len(JSONL) >= 3 and len(CSV) == 1
    assert "](../" not in GUIDE  # the product's own reference links only its own pages


@pytest.mark.parametrize("block", YAML, ids=[f"rules-{i + 1}" for i in range(len(YAML))])
def test_rule_example_passes_rules_check(block: str, tmp_path: Path) -> None:
    check_rule_example(block, tmp_path)


def test_every_json_line_is_a_recorded_touch() -> None:
    lines = [line for block in JSONL for line in block.splitlines() if line.strip()]
    touches = [RecordedIn.model_validate(json.loads(line)) for line in lines]
    channels = {t.channel for t in touches}
    assert {"call", "meeting"} <= channels
    (booked,) = [t for t in touches if t.planned_at is not None]
    (done,) = [t for t in touches if t.id == booked.id and t.sent_at is not None]
    # marking done is the booking with `sent_at` in place of `planned_at`, nothing else
    assert booked.planned_at is not None
    assert done.as_planned(booked.planned_at).digest() == booked.digest()


def test_the_csv_shown_is_the_example_file() -> None:
    example = (REPO / "docs" / "examples" / "crm-touches.csv").read_text()
    assert CSV[0] == example
    rows = parse_csv("crm-touches.csv", example, MESSAGES)
    assert [r.error for r in rows] == [None] * 4
    touches = {t.id: t for t in (RecordedIn.model_validate(r.fields) for r in rows)}
    assert {t.channel for t in touches.values()} == {"call", "meeting", "chat"}
    assert touches["call-2050"].planned_at is not None  # the booked onboarding call
    # the call marked done in the export is the JSON line that marks it done in the guide
    (marked,) = [
        RecordedIn.model_validate(json.loads(line))
        for block in JSONL
        for line in block.splitlines()
        if '"call-2041"' in line and '"sent_at"' in line
    ]
    assert touches["call-2041"].digest() == marked.digest()
