"""Ingestion at the door, on both databases: bad input names file and line, changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from cadence.ingest import import_customers, ingest_events, record_messages, submit_messages

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ANA = {
    "id": "c-17",
    "email": "ana@acme.test",
    "name": "Ana",
    "timezone": "America/New_York",
    "account": "acme",
    "attributes": {"plan": "pro"},
}


def jsonl(path: Path, *records: object) -> str:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return str(path)


def msg(mid: str, **kw: object) -> dict[str, object]:
    return {
        "id": mid,
        "customer": "c-17",
        "role": "marketing",
        "category": "announcement",
        "template": "feature_announcement",
        "data": {"feature": "Reports"},
        "send_after": "2026-11-24T09:00:00Z",
        **kw,
    }


def test_one_bad_record_rejects_the_file_and_names_each_line(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import_customers(store, jsonl(tmp_path / "c.jsonl", ANA), now=NOW)
    source = jsonl(
        tmp_path / "m.jsonl",
        msg("m1"),
        msg("m2", send_after="2026-11-24T09:00:00"),  # naive
        msg("m3", customer="c-404"),  # unknown customer
        {k: v for k, v in msg("m4").items() if k != "role"},  # missing field
        msg("m5", colour="red"),  # unknown field
        "{not json",
    )
    report = submit_messages(store, source, now=NOW)
    assert not report.written
    lines = {e.line: e.reason for e in report.errors}
    assert set(lines) == {2, 3, 4, 5, 6}
    assert "no UTC offset" in lines[2]
    assert "unknown customer 'c-404'" in lines[3]
    assert "missing field `role`" in lines[4]
    assert "unknown field `colour`" in lines[5]
    assert str(report.errors[0]).startswith(f"{source}:2: ")
    assert store.messages_of("c-17") == []  # nothing landed, not even m1
    report = submit_messages(store, source, now=NOW, skip_invalid=True)
    assert report.written and report.added == 1 and len(report.errors) == 5
    assert [m.id for m, _ in store.messages_of("c-17")] == ["m1"]


def test_customer_checks_and_upsert(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = jsonl(
        tmp_path / "c.jsonl",
        ANA,
        {**ANA, "id": "c-2", "timezone": "Mars/Olympus"},
        {**ANA, "id": "c-3", "email": "not-an-address"},
    )
    report = import_customers(store, bad, now=NOW)
    assert [e.line for e in report.errors] == [2, 3] and not report.written
    assert "time zone" in report.errors[0].reason and "email" in report.errors[1].reason
    assert store.customer("c-17") is None
    good = jsonl(tmp_path / "c2.jsonl", ANA)
    assert import_customers(store, good, now=NOW).added == 1
    assert import_customers(store, good, now=NOW).unchanged == 1
    changed = jsonl(tmp_path / "c3.jsonl", {**ANA, "name": "Ana María"})
    assert import_customers(store, changed, now=NOW).updated == 1
    assert store.customer("c-17").name == "Ana María"


def test_csv_customers(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.csv"
    path.write_text(
        "id,email,name,timezone,account,attributes.plan,attributes\n"
        'c-1,a@x.test,A,UTC,acme,pro,"{""seats"": 5}"\n'
    )
    report = import_customers(store, str(path), now=NOW)
    assert report.added == 1, report.errors
    assert dict(store.customer("c-1").attributes) == {"plan": "pro", "seats": 5}


def test_same_id_twice_is_a_no_op_and_other_content_an_error(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import_customers(store, jsonl(tmp_path / "c.jsonl", ANA), now=NOW)
    first = jsonl(tmp_path / "a.jsonl", msg("m1"))
    assert submit_messages(store, first, now=NOW).added == 1
    again = submit_messages(store, first, now=NOW)
    assert again.added == 0 and again.unchanged == 1 and again.written
    other = jsonl(tmp_path / "b.jsonl", msg("m1", topic="x"))
    report = submit_messages(store, other, now=NOW)
    assert not report.written and "already stored with different content" in report.errors[0].reason
    dup = jsonl(tmp_path / "d.jsonl", msg("m9"), msg("m9", topic="y"))
    report = submit_messages(store, dup, now=NOW)
    assert report.errors[0].line == 2 and "line 1" in report.errors[0].reason


def test_recorded_and_events(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import_customers(store, jsonl(tmp_path / "c.jsonl", ANA), now=NOW)
    rec = jsonl(
        tmp_path / "r.jsonl",
        {
            "id": "crm-1",
            "customer": "c-17",
            "role": "success",
            "topic": "feature:reports",
            "human": True,
            "sent_at": "2026-11-18T15:30:00Z",
        },
    )
    assert record_messages(store, rec, now=NOW).added == 1
    ((m, d),) = store.messages_of("c-17")
    assert d.status == "recorded" and m.sent_at == datetime(2026, 11, 18, 15, 30, tzinfo=UTC)
    ev = jsonl(
        tmp_path / "e.jsonl",
        {
            "id": "ev-1",
            "customer": "c-17",
            "type": "bounced",
            "at": "2026-11-20T00:00:00+01:00",
            "data": {"kind": "sometimes"},
        },
        {"id": "ev-2", "customer": "c-99", "type": "ticket_opened", "at": "2026-11-20T00:00:00Z"},
    )
    report = ingest_events(store, ev, now=NOW)
    assert [e.line for e in report.errors] == [1, 2] and not report.written


def test_missing_file_is_a_clear_error(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from cadence.ingest import SourceError

    with pytest.raises(SourceError, match="no such file"):
        submit_messages(store, str(tmp_path / "nope.jsonl"), now=NOW)
