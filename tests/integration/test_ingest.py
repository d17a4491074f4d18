"""Ingestion against the real store, on SQLite and PostgreSQL (a fresh database each): bad
input names file and line and changes nothing; repeats are no-ops; conflicts name both."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cadence.ingest import (
    SourceError,
    import_customers,
    ingest_events,
    record_messages,
    submit_messages,
)
from cadence.ledger.ledger import Ledger
from cadence.model import MessageKind

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ANA = {
    "id": "c-17",
    "email": "ana@acme.test",
    "name": "Ana",
    "timezone": "America/New_York",
    "account": "acme",
    "attributes": {"plan": "pro", "signup_at": "2026-10-01T09:00:00Z"},
}
BEN = {"id": "c-18", "email": "ben@acme.test", "name": "Ben", "account": "acme"}


def jsonl(path: Path, *records: object) -> str:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return str(path)


def msg(mid: str, **kw: object) -> dict[str, Any]:
    return {
        "id": mid,
        "customer": "c-17",
        "role": "marketing",
        "category": "announcement",
        "topic": "feature:reports",
        "template": "feature_announcement",
        "data": {"feature": "Reports"},
        "send_after": "2026-11-02T00:00:00Z",
        **kw,
    }


def event(eid: str, **kw: object) -> dict[str, Any]:
    return {
        "id": eid,
        "customer": "c-17",
        "type": "ticket_opened",
        "at": "2026-11-03T15:20:00Z",
        **kw,
    }


def ids(store: Ledger, customer: str = "c-17") -> list[str]:
    return sorted(m.id for m, _ in store.reads.messages_of(customer))


@pytest.fixture
def ana(store: Ledger, tmp_path: Path) -> Ledger:
    report = import_customers(store, jsonl(tmp_path / "ana.jsonl", ANA, BEN), now=NOW)
    assert report.added == 2 and report.written, report.errors
    return store


def test_one_bad_record_rejects_the_file_and_names_every_line(ana: Ledger, tmp_path: Path) -> None:
    source = jsonl(
        tmp_path / "m.jsonl",
        msg("m1"),
        msg("m2", send_after="2026-11-02T09:00:00"),
        msg("m3", customer="c-404"),
        {k: v for k, v in msg("m4").items() if k != "role"},
        msg("m5", colour="red"),
        "{not json",
        msg("m7", priority="high"),
        msg("m8", **{"from": {"email": "kim"}}),
    )
    report = submit_messages(ana, source, now=NOW)
    assert not report.written and report.added == 0
    assert [str(e) for e in report.errors] == [
        f"{source}:2: `send_after`: 2026-11-02T09:00:00 has no UTC offset; "
        "write 2026-11-02T09:00:00Z or +01:00",
        f"{source}:3: unknown customer `c-404`; import it first",
        f"{source}:4: missing field `role`",
        f"{source}:5: unknown field `colour`; allowed: body_html, body_text, category, customer, "
        "data, expires_at, from, human, id, priority, role, send_after, subject, template, "
        "topic, transactional",
        f"{source}:6: not JSON: Expecting property name enclosed in double quotes (column 2)",
        f'{source}:7: `priority` must be a whole number, not "high"',
        f'{source}:8: `from.email`: "kim" is not an email address: '
        "An email address must have an @-sign",
    ]
    assert ids(ana) == []  # nothing landed, not even m1


def test_skip_invalid_writes_the_valid_and_reports_the_rest(ana: Ledger, tmp_path: Path) -> None:
    source = jsonl(
        tmp_path / "m.jsonl",
        msg("m1"),
        msg("m2", customer="c-404"),
        msg("m3", customer="c-18"),
        msg("m1", topic="changed"),  # the first m1 stands
    )
    report = submit_messages(ana, source, now=NOW, skip_invalid=True)
    assert report.written and report.added == 2
    assert [(e.line, e.reason) for e in report.errors] == [
        (2, "unknown customer `c-404`; import it first"),
        (4, "id m1 already appears at line 1 with different content"),
    ]
    assert ids(ana) == ["m1"] and ids(ana, "c-18") == ["m3"]
    ((m1, _),) = ana.reads.messages_of("c-17")
    assert m1.topic == "feature:reports"
    # a file with nothing valid at all writes nothing, still reports
    bad = jsonl(tmp_path / "bad.jsonl", "[]")
    report = submit_messages(ana, bad, now=NOW, skip_invalid=True)
    assert report.written and report.added == 0 and len(report.errors) == 1


def test_a_rejected_file_changes_nothing_already_stored(ana: Ledger, tmp_path: Path) -> None:
    submit_messages(ana, jsonl(tmp_path / "m.jsonl", msg("m1")), now=NOW)
    changed = jsonl(
        tmp_path / "c.jsonl",
        {**ANA, "name": "Ana María"},
        {**BEN, "timezone": "Mars/Olympus"},
        {"id": "c-99", "email": "new@acme.test", "name": "New"},
    )
    report = import_customers(ana, changed, now=NOW)
    assert not report.written and (report.added, report.updated) == (0, 0)
    assert [e.line for e in report.errors] == [2]
    assert ana.reads.customer("c-17").name == "Ana"  # type: ignore[union-attr]
    assert ana.reads.customer("c-99") is None
    # a customer of the rejected file is unknown to what comes next
    report = submit_messages(ana, jsonl(tmp_path / "n.jsonl", msg("n1", customer="c-99")), now=NOW)
    assert report.errors[0].reason == "unknown customer `c-99`; import it first"
    assert ids(ana) == ["m1"]


def test_reimporting_the_same_files_is_a_no_op(ana: Ledger, tmp_path: Path) -> None:
    customers = jsonl(tmp_path / "c.jsonl", ANA, BEN)
    messages = jsonl(tmp_path / "m.jsonl", msg("m1"), msg("m2", send_after=None), msg("m1"))
    recorded = jsonl(
        tmp_path / "r.jsonl",
        {"id": "crm-1", "customer": "c-17", "role": "success", "sent_at": "2026-10-28T15:30:00Z"},
    )
    events = jsonl(tmp_path / "e.jsonl", event("ev-1"), event("ev-2", type="usage_dropped"))
    first = submit_messages(ana, messages, now=NOW)
    assert (first.added, first.unchanged) == (2, 1)  # the repeat inside the file counts once
    assert record_messages(ana, recorded, now=NOW).added == 1
    assert ingest_events(ana, events, now=NOW).added == 2
    later = datetime(2026, 11, 5, tzinfo=UTC)  # m2's send_after defaulted to the first now
    for fn, path, n in [
        (import_customers, customers, 2),
        (submit_messages, messages, 3),
        (record_messages, recorded, 1),
        (ingest_events, events, 2),
    ]:
        again = fn(ana, path, now=later)
        assert (again.added, again.updated, again.unchanged) == (0, 0, n), (path, again.errors)
        assert again.written and again.errors == []
    m2 = next(m for m, _ in ana.reads.messages_of("c-17") if m.id == "m2")
    assert m2.send_after == NOW


def test_the_same_id_with_other_content_names_both(ana: Ledger, tmp_path: Path) -> None:
    submit_messages(ana, jsonl(tmp_path / "a.jsonl", msg("mkt-301")), now=NOW)
    other = jsonl(tmp_path / "b.jsonl", msg("ok-1"), msg("mkt-301", topic="feature:exports"))
    report = submit_messages(ana, other, now=NOW)
    assert not report.written
    assert [str(e) for e in report.errors] == [
        f"{other}:2: message mkt-301 was already stored with different content"
    ]
    # a submitted id is taken for recorded messages too: one ledger, one id space
    rec = jsonl(
        tmp_path / "r.jsonl",
        {"id": "mkt-301", "customer": "c-17", "role": "x", "sent_at": "2026-10-01T00:00:00Z"},
    )
    assert (
        "message mkt-301 was already stored" in record_messages(ana, rec, now=NOW).errors[0].reason
    )
    ingest_events(ana, jsonl(tmp_path / "e.jsonl", event("ev-1")), now=NOW)
    moved = jsonl(tmp_path / "e2.jsonl", event("ev-1", at="2026-11-04T00:00:00Z"))
    assert [str(e) for e in ingest_events(ana, moved, now=NOW).errors] == [
        f"{moved}:1: event ev-1 was already stored with different content"
    ]
    inside = jsonl(tmp_path / "d.jsonl", msg("m9"), msg("m8"), msg("m9", topic="y"))
    assert [str(e) for e in submit_messages(ana, inside, now=NOW).errors] == [
        f"{inside}:3: id m9 already appears at line 1 with different content"
    ]
    # the same time written with another offset is the same record, not a conflict
    same = jsonl(tmp_path / "s.jsonl", msg("mkt-301", send_after="2026-11-02T01:00:00+01:00"))
    assert submit_messages(ana, same, now=NOW).unchanged == 1


def test_customer_import_upserts(store: Ledger, tmp_path: Path) -> None:
    assert import_customers(store, jsonl(tmp_path / "a.jsonl", ANA), now=NOW).added == 1
    changed = jsonl(tmp_path / "b.jsonl", {**ANA, "name": "Ana María", "timezone": None}, BEN)
    report = import_customers(store, changed, now=NOW)
    assert (report.added, report.updated, report.unchanged) == (1, 1, 0)
    ana = store.reads.customer("c-17")
    assert ana is not None and ana.name == "Ana María" and ana.timezone is None
    twice = jsonl(tmp_path / "c.jsonl", BEN, {**BEN, "name": "Benjamin"})
    report = import_customers(store, twice, now=NOW)
    assert report.errors[0].reason == "id c-18 already appears at line 1 with different content"


def test_customers_from_csv(store: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "id,email,name,timezone,account,attributes.plan,attributes.seats,attributes\n"
        'c-1,a@acme.test,A,Europe/Berlin,acme,pro,5,"{""owner_email"": ""kim@vendor.test""}"\n'
        "c-2,b@acme.test,B,,,,,\n"
        "c-3,not-an-address,C,,,,,\n"
    )
    report = import_customers(store, str(path), now=NOW)
    assert [str(e) for e in report.errors] == [
        f'{path}:4: `email`: "not-an-address" is not an email address: '
        "An email address must have an @-sign"
    ]
    report = import_customers(store, str(path), now=NOW, skip_invalid=True)
    assert report.added == 2
    c1 = store.reads.customer("c-1")
    assert c1 is not None and c1.timezone == "Europe/Berlin"
    assert dict(c1.attributes) == {"plan": "pro", "seats": 5, "owner_email": "kim@vendor.test"}
    c2 = store.reads.customer("c-2")
    assert c2 is not None and c2.timezone is None and c2.account is None
    # the same table as JSON Lines is the same content: no update
    as_jsonl = jsonl(
        tmp_path / "c.jsonl",
        {"id": "c-2", "email": "b@acme.test", "name": "B", "attributes": {}},
    )
    assert import_customers(store, as_jsonl, now=NOW).unchanged == 1


def test_events_need_a_known_customer(ana: Ledger, tmp_path: Path) -> None:
    source = jsonl(
        tmp_path / "e.jsonl",
        event("ev-1", attributes={"open_tickets": 1}),
        event("ev-2", customer="c-99"),
        event("ev-3", type="bounced", data={"kind": "sometimes"}),
    )
    report = ingest_events(ana, source, now=NOW)
    assert not report.written
    assert [(e.line, e.reason) for e in report.errors] == [
        (2, "unknown customer `c-99`; import it first"),
        (3, 'a bounced event needs `data.kind`: hard or soft, not "sometimes"'),
    ]
    assert ana.ingest.unprocessed_events(10) == []
    report = ingest_events(ana, source, now=NOW, skip_invalid=True)
    assert report.added == 1
    (stored,) = ana.ingest.unprocessed_events(10)
    assert stored.id == "ev-1" and dict(stored.attributes) == {"open_tickets": 1}
    assert stored.at == datetime(2026, 11, 3, 15, 20, tzinfo=UTC)


def test_recorded_messages_land_as_recorded(ana: Ledger, tmp_path: Path) -> None:
    source = jsonl(
        tmp_path / "r.jsonl",
        {
            "id": "crm-1",
            "customer": "c-17",
            "role": "success",
            "topic": "feature:reports",
            "human": True,
            "from": {"email": "kim@vendor.test", "name": "Kim Lee"},
            "sent_at": "2026-10-28T11:30:00-04:00",
        },
        {"id": "crm-2", "customer": "c-17", "role": "success", "sent_at": "2026-10-28T11:30:00"},
    )
    report = record_messages(ana, source, now=NOW)
    assert [e.line for e in report.errors] == [2]
    assert record_messages(ana, source, now=NOW, skip_invalid=True).added == 1
    ((m, decision),) = ana.reads.messages_of("c-17")
    assert m.kind == MessageKind.RECORDED and decision.status == "recorded"
    assert m.sent_at == datetime(2026, 10, 28, 15, 30, tzinfo=UTC)
    assert m.sender is not None and m.sender.email == "kim@vendor.test"


def test_send_after_defaults_to_now_and_an_expiry_already_past_is_named(
    ana: Ledger, tmp_path: Path
) -> None:
    source = jsonl(
        tmp_path / "m.jsonl",
        msg("m1", send_after=None, expires_at="2026-11-10T00:00:00Z"),
        msg("m2", send_after=None, expires_at="2026-10-31T00:00:00Z"),
    )
    report = submit_messages(ana, source, now=NOW)
    assert [str(e) for e in report.errors] == [
        f"{source}:2: `expires_at` 2026-10-31T00:00:00Z is already past; with no `send_after` "
        "the message would go now, 2026-11-01T12:00:00Z"
    ]
    submit_messages(ana, source, now=NOW, skip_invalid=True)
    ((m1, _),) = ana.reads.messages_of("c-17")
    assert m1.send_after == NOW and m1.expires_at == datetime(2026, 11, 10, tzinfo=UTC)


def test_standard_input_is_named_stdin(
    ana: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = json.dumps(msg("m1")) + "\n" + json.dumps(msg("m2", customer="c-404")) + "\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    report = submit_messages(ana, "-", now=NOW)
    assert [str(e) for e in report.errors] == [
        "<stdin>:2: unknown customer `c-404`; import it first"
    ]


def test_a_missing_file_is_a_clear_error(store: Ledger, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SourceError, match=f"^{missing}: no such file$"):
        submit_messages(store, str(missing), now=NOW)
    with pytest.raises(SourceError, match="only customers can be read from CSV"):
        ingest_events(store, str(tmp_path / "events.csv"), now=NOW)


def _analyzed(store: Ledger) -> set[str]:
    """Tables whose statistics were gathered by an ANALYZE someone asked for (autovacuum's
    own are kept apart, in last_autoanalyze); SQLite's, in sqlite_stat1 once asked."""
    with store.engine.connect() as conn:
        if store.is_postgres:
            rows = conn.exec_driver_sql(
                "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
            )
        else:
            if not conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).first():
                return set()
            rows = conn.exec_driver_sql("SELECT DISTINCT tbl FROM sqlite_stat1")
        return {r[0] for r in rows}


def test_a_bulk_load_gathers_postgresqls_statistics_at_once(store: Ledger, tmp_path: Path) -> None:
    from cadence.ledger.ingest import BULK_ROWS

    # one short of a bulk load: left to autovacuum
    few = [{"id": f"c-{i:05d}", "email": f"c{i}@x.test", "name": "C"} for i in range(BULK_ROWS - 1)]
    report = import_customers(store, jsonl(tmp_path / "few.jsonl", *few), now=NOW)
    assert report.added == BULK_ROWS - 1
    assert _analyzed(store) == set()
    many = [{"id": f"d-{i:05d}", "email": f"d{i}@x.test", "name": "D"} for i in range(BULK_ROWS)]
    report = import_customers(store, jsonl(tmp_path / "many.jsonl", *many), now=NOW)
    assert report.added == BULK_ROWS
    # SQLite keeps none unless asked, and is not asked
    expected = {"customers", "messages", "events"} if store.is_postgres else set()
    assert _analyzed(store) == expected
