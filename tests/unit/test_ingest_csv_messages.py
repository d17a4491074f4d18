"""Messages from CSV (a CRM's export of calls and meetings): the columns are the JSON Lines
fields, so a row validates like the JSON line it stands for and has the same digest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cadence.ingest.readers import MESSAGES, Raw, SourceError, parse_csv, read_source
from cadence.ingest.records import MessageIn, RecordedIn

HEADER = (
    "id,customer,role,channel,category,topic,summary,from.email,from.name,human,"
    "transactional,priority,planned_at,sent_at,data"
)

BOOKED = {
    "id": "call-1",
    "customer": "c-17",
    "role": "success",
    "channel": "call",
    "category": "onboarding",
    "topic": "onboarding",
    "summary": "Onboarding call, first dashboard",
    "from": {"email": "kim@vendor.test", "name": "Kim"},
    "human": True,
    "planned_at": "2026-12-08T15:00:00Z",
}


def test_a_row_has_the_fields_of_its_json_line() -> None:
    text = (
        f"{HEADER}\n"
        'call-1,c-17,success,call,onboarding,onboarding,"Onboarding call, first dashboard",'
        "kim@vendor.test,Kim,TRUE,,,2026-12-08T15:00:00Z,,\n"
        'chat-2,c-18,support,chat,,,,,,false,false,-3,,2026-12-02T11:20:00Z,"{""ticket"": 7}"\n'
    )
    booked, chat = parse_csv("t.csv", text, MESSAGES)
    assert booked == Raw(2, BOOKED)
    assert chat == Raw(
        3,
        {
            "id": "chat-2",
            "customer": "c-18",
            "role": "support",
            "channel": "chat",
            "human": False,
            "transactional": False,
            "priority": -3,
            "sent_at": "2026-12-02T11:20:00Z",
            "data": {"ticket": 7},
        },
    )
    assert booked.fields is not None
    from_csv = RecordedIn.model_validate(booked.fields)
    assert from_csv.digest() == RecordedIn.model_validate(BOOKED).digest()


def test_data_columns_are_typed_like_attributes_and_from_may_be_json() -> None:
    text = (
        "id,from,data.seats,data.plan,data.zip,data.trial\n"
        'm-1,"{""email"": ""kim@vendor.test""}",12,pro,02134,true\n'
    )
    (row,) = parse_csv("t.csv", text, MESSAGES)
    assert row.fields == {
        "id": "m-1",
        "from": {"email": "kim@vendor.test"},
        "data": {"seats": 12, "plan": "pro", "zip": "02134", "trial": True},
    }


def test_a_cell_that_is_not_its_columns_type_is_named_by_validation() -> None:
    """`yes` is not read as true, nor `high` as a number: the cell stays text, and the model
    says which field is wrong and what it holds."""
    text = "id,customer,role,human,priority,sent_at\nx,c-1,sales,yes,high,2026-12-01T10:00:00Z\n"
    (row,) = parse_csv("t.csv", text, MESSAGES)
    assert row.fields is not None
    assert row.fields["human"] == "yes" and row.fields["priority"] == "high"
    with pytest.raises(ValueError, match=r"human[\s\S]*priority"):
        RecordedIn.model_validate(row.fields)


def test_row_errors_name_the_column() -> None:
    text = (
        "id,from,from.email,data\n"
        'a,"{""email"": ""a@vendor.test""}",b@vendor.test,\n'
        "b,,,[1]\n"
        "c,,,\n"
    )
    rows = parse_csv("t.csv", text, MESSAGES)
    assert [(r.line, r.error) for r in rows] == [
        (2, "sender field `email` is given both in `from` and in `from.email`"),
        (3, 'column `data` must hold a JSON object, like {"plan": "pro"}'),
        (4, None),
    ]
    assert rows[2].fields == {"id": "c"}  # empty cells are absent fields


def test_customers_keep_their_own_table() -> None:
    """`from` means nothing to a customer: without the messages' table it stays a plain
    (unknown) field, which validation then refuses."""
    (row,) = parse_csv("c.csv", "id,from.email,attributes.seats\nc-1,a@x.test,3\n")
    assert row.fields == {"id": "c-1", "from.email": "a@x.test", "attributes": {"seats": 3}}


def test_read_source_reads_messages_from_csv_only_where_allowed(tmp_path: Path) -> None:
    path = tmp_path / "touches.csv"
    path.write_text(f"{HEADER}\ncall-1,c-17,success,call,,,,,,,,,2026-12-08T15:00:00Z,,\n")
    name, raws = read_source(str(path), allow_csv=True, table=MESSAGES)
    assert name == str(path) and raws[0].fields == {
        "id": "call-1",
        "customer": "c-17",
        "role": "success",
        "channel": "call",
        "planned_at": "2026-12-08T15:00:00Z",
    }
    with pytest.raises(SourceError, match="only customers can be read from CSV, and messages"):
        read_source(str(path))
    # a JSON Lines file named .csv is read as JSON Lines when told so
    jsonl = tmp_path / "really-jsonl.csv"
    jsonl.write_text(json.dumps(BOOKED) + "\n")
    assert read_source(str(jsonl), "jsonl", allow_csv=True, table=MESSAGES)[1] == [Raw(1, BOOKED)]


def test_a_submitted_message_reads_from_the_same_table() -> None:
    text = (
        "id,customer,role,category,template,data.product,send_after,transactional\n"
        "prd-1,c-17,product,onboarding,onboarding_welcome,Vendor Analytics,"
        "2026-12-08T14:00:00Z,false\n"
    )
    (row,) = parse_csv("m.csv", text, MESSAGES)
    assert row.fields is not None
    message = MessageIn.model_validate(row.fields)
    assert message.data == {"product": "Vendor Analytics"} and message.transactional is False
