"""Calls and meetings as `preview` and `explain` tell them, through the command line on the
sample data: Lee's onboarding call with Lena (c-21) is booked for the afternoon her automated
welcome would go, and Kim had a call with Ana (c-17) the week before."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cadence.starter.writer import next_monday

from .conftest import Cli

LEE_CALL = "Lee Morgan's call call-5521 (success, planned)"


def _at() -> str:
    return next_monday(datetime.now(UTC)).isoformat()


def test_preview_gives_each_decision_its_channel_and_a_touch_its_summary(setup: Cli) -> None:
    out = setup("preview", "c-21", "--at", _at(), "--days", "21", "--format", "json").out
    decisions = {d["message"]: d for d in json.loads(out)["decisions"]}
    assert {d["channel"] for d in decisions.values()} == {"email", "call"}
    call = decisions["call-5521"]
    assert (call["status"], call["planned"]) == ("recorded", True)
    assert call["summary"].startswith("Onboarding: connect the data warehouse")
    assert decisions["crm-5510"]["planned"] is False  # an email recorded from the CRM
    assert "summary" not in decisions["cs-21"]  # an email cadence sends has none
    welcome = decisions["cs-21"]
    assert (welcome["status"], welcome["rule"]) == ("suppressed", "call-covers-the-topic")
    assert LEE_CALL in welcome["reason"] and "is planned for" in welcome["reason"]
    table = setup("preview", "c-21", "--at", _at(), "--days", "21").out
    assert "call (planned)" in table
    ana = setup("preview", "c-17", "--at", _at(), "--days", "21").out
    row = next(line for line in ana.splitlines() if "call-5498" in line)
    assert "recorded" in row
    after = ana.splitlines()[ana.splitlines().index(row) + 1]
    assert "call" in after and "planned" not in after  # done: the channel alone


def test_explain_tells_what_was_recorded_of_a_touch(setup: Cli) -> None:
    table = setup("explain", "call-5521").out
    assert "not decided yet" not in table
    assert "call-5521 (success, planned), planned for" in table
    assert "connect the data warehouse" in table
    (entry,) = json.loads(setup("explain", "call-5521", "--format", "json").out)["history"]
    records = [json.loads(line) for line in (setup.cwd / "samples/recorded.jsonl").open()]
    booked = next(r for r in records if r["id"] == "call-5521")
    assert (entry["status"], entry["send_at"]) == ("recorded", booked["planned_at"])
    assert entry["reason"].startswith(LEE_CALL)
    done = json.loads(setup("explain", "call-5498", "--format", "json").out)["history"][0]
    assert done["reason"].startswith("Kim Lee's call call-5498 (success), done ")
    assert "weekly CSV export" in done["reason"]
    crm = json.loads(setup("explain", "crm-5501", "--format", "json").out)["history"][0]
    assert "sent by another system" in crm["reason"]
    assert "Your question about reports" in crm["reason"]  # its subject, for want of a summary


def test_a_booked_call_recorded_done_then_one_called_off(setup: Cli) -> None:
    records = [json.loads(line) for line in (setup.cwd / "samples/recorded.jsonl").open()]
    booked = next(r for r in records if r["id"] == "call-5521")
    done = {k: v for k, v in booked.items() if k != "planned_at"}
    done["sent_at"] = booked["planned_at"]
    assert "1 updated" in setup("messages", "record", "-", stdin=json.dumps(done) + "\n").out
    history = json.loads(setup("explain", "call-5521", "--format", "json").out)["history"]
    assert history[0]["reason"].startswith("Lee Morgan's call call-5521 (success), done ")
    later = dict(booked, id="call-5522", planned_at=booked["planned_at"].replace("T15", "T16"))
    setup("messages", "record", "-", stdin=json.dumps(later) + "\n")
    assert "1 message cancelled" in setup("messages", "cancel", "call-5522", "--by", "lee").out
    first, second = json.loads(setup("explain", "call-5522", "--format", "json").out)["history"]
    assert "call-5522 (success, planned), planned for" in first["reason"]
    assert (second["status"], second["reason"]) == ("cancelled", "cancelled by lee")
