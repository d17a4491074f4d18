"""A rule whose `when` asks for ten gigabytes, through a real pass on the real store (SQLite
and PostgreSQL, a fresh database each): the message is held with a reason that names the
limit, the pass goes on, and the other customer's mail goes out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cadence import ingest
from cadence.app import App
from cadence.config import load_settings
from cadence.flows.passes import run_pass
from cadence.model import Status

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, in everyone's working day

RULES = """\
suppress:
  - name: greedy
    categories: [tip]
    when: "('a' * 10**10) | length > 0"
"""


def _jsonl(path: Path, records: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    from cadence.ledger.db import upgrade

    upgrade(db_url)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rules.yaml").write_text(RULES)
    (tmp_path / "cadence.yaml").write_text(
        f"database_url: {db_url}\nrules_dir: {tmp_path / 'rules'}\n"
        f"templates_dir: {REPO / 'templates'}\n"
        f"transport: {{kind: file, file: {{dir: {tmp_path / 'outbox'}}}}}\n"
    )
    a = App(load_settings(tmp_path / "cadence.yaml"))
    people = [{"id": "ana", "email": "ana@acme.test", "name": "Ana", "timezone": "UTC"}]
    report = ingest.import_customers(a.store, _jsonl(tmp_path / "c.jsonl", people), now=T0)
    assert not report.errors
    yield a
    a.close()


def test_a_when_beyond_the_bound_holds_its_message_with_the_limit_as_reason(
    app: App, tmp_path: Path
) -> None:
    records: list[dict[str, object]] = [
        {"id": "tip-1", "category": "tip", "role": "product"},
        {"id": "offer-1", "category": "offer", "role": "sales"},
    ]
    for r in records:
        r.update(customer="ana", subject="s", body_text="b", send_after=T0.isoformat())
    assert not ingest.submit_messages(
        app.store, _jsonl(tmp_path / "m.jsonl", records), now=T0
    ).errors
    run_pass(app, T0)
    run_pass(app, T0 + timedelta(minutes=1))
    decided = {m.id: d for m, d in app.store.reads.messages_of("ana")}
    tip = decided["tip-1"]
    assert tip.status is Status.HELD and tip.rule == "greedy"
    assert tip.reason.startswith("held: rule greedy failed: `('a' * 10**10) | length > 0`")
    assert tip.reason.endswith(
        "'a' * 10000000000 would make a string of 10000000000 characters; the limit is 1000000"
    )
    assert decided["offer-1"].status is Status.SENT  # the rest of the pass went on
