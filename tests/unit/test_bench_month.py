"""The generated month of `python -m bench outcome`: the same seed gives the same records, the
mix is the one the figure describes, every record is one the importers accept, and nothing
reaches cadence before its sender knew of it. Small sizes: the whole file runs in seconds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.month import DAYS, TAIL, WARMUP, ZONES, Month, month, parse, redundant
from bench.outcome import policy_folders, weekly_maximum
from cadence.ingest.records import CustomerIn, EventIn, MessageIn, RecordedIn

SIZE = 120


@pytest.fixture(scope="module")
def small() -> Month:
    return month(5, SIZE)


def _dump(m: Month) -> list[str]:
    return [
        f"{a.at.isoformat()} {a.kind} {json.dumps(a.record, sort_keys=True)}" for a in m.arrivals
    ]


def test_the_same_seed_gives_the_same_month(small: Month) -> None:
    again = month(5, SIZE)
    assert _dump(again) == _dump(small)
    assert again.signups == small.signups
    assert _dump(month(6, SIZE)) != _dump(small)


def test_people_accounts_and_zones(small: Month) -> None:
    customers = small.records("customers")
    assert len(customers) == SIZE == len(small.signups)
    accounts = Counter(c["account"] for c in customers)
    assert max(accounts.values()) <= 5
    assert 2.0 <= SIZE / len(accounts) <= 3.5  # accounts of a few people
    assert {c["timezone"] for c in customers} == set(ZONES)
    assert len(ZONES) == 6
    new = [cid for cid, at in small.signups.items() if at >= small.begin]
    assert 0.05 * SIZE <= len(new) <= 0.2 * SIZE  # accounts signing up during the run


def test_the_mix(small: Month) -> None:
    """Per person and week of the run, each kind of mail at the rate the figure claims."""
    weeks = (small.until - small.begin).days / 7
    per = SIZE * weeks
    mix = small.mix()
    assert 0.8 <= mix["marketing", "newsletter"] / per <= 1.0  # weekly, to nearly everyone
    assert 2.0 <= mix["product", "tip"] / per <= 3.0  # several times a week
    announcements = mix["marketing", "announcement"] + mix["product", "announcement"]
    assert 0.4 <= announcements / per <= 0.8  # a launch every week and a half
    assert mix["product", "announcement"] > 0 and mix["marketing", "announcement"] > 0
    assert 0.03 <= mix["sales", "offer"] / per <= 0.2
    for role in ("success", "product", "sales"):  # the onboarding bursts
        assert mix[role, "onboarding"] > 0
    opened, resolved = mix["event", "ticket_opened"], mix["event", "ticket_resolved"]
    assert 0.02 <= opened / per <= 0.08 and opened - 3 <= resolved <= opened
    assert opened <= mix["support", "ticket-reply"] <= 3 * opened
    assert mix["billing", "receipt"] > 0
    assert mix["recorded success", "note"] > 0
    assert set(mix) <= {
        ("marketing", "newsletter"),
        ("marketing", "announcement"),
        ("product", "announcement"),
        ("product", "tip"),
        ("sales", "offer"),
        ("success", "onboarding"),
        ("product", "onboarding"),
        ("sales", "onboarding"),
        ("support", "ticket-reply"),
        ("billing", "receipt"),
        ("recorded success", "note"),
        ("event", "ticket_opened"),
        ("event", "ticket_resolved"),
        ("event", "onboarding_completed"),
    }


def test_transactional_expiry_and_redundancy(small: Month) -> None:
    for r in small.records("messages"):
        transactional = r["role"] in ("support", "billing")
        assert r["transactional"] is transactional
        assert ("expires_at" in r) is not transactional
        if not transactional:
            life = parse(r["expires_at"]) - parse(r["send_after"])
            days = {"announcement": 14, "tip": 7, "newsletter": 7}.get(r["category"])
            assert days is None or life.days == days
    for r in small.records("events"):
        if r["type"].startswith("ticket_"):
            assert r["attributes"] == {"open_tickets": int(r["type"] == "ticket_opened")}
    # a CSM often wrote about a launch first: those announcements are the redundant ones
    gone = redundant(small)
    assert gone and all(mid.startswith("ann-") for mid in gone)
    announcements = [r for r in small.records("messages") if r["category"] == "announcement"]
    assert 0.15 <= len(gone) / len(announcements) <= 0.6


def test_every_record_is_one_the_importers_accept(small: Month) -> None:
    models = {
        "customers": CustomerIn,
        "messages": MessageIn,
        "recorded": RecordedIn,
        "events": EventIn,
    }
    for a in small.arrivals:
        models[a.kind].model_validate_json(json.dumps(a.record))


def test_nothing_arrives_before_its_sender_knew(small: Month) -> None:
    assert small.start - small.begin == WARMUP and small.until - small.end == TAIL
    assert (small.end - small.start).days == DAYS
    known: dict[str, object] = {}
    fed = 0
    for at, feed in small.batches():
        assert small.begin <= at < small.until
        for c in feed["customers"]:
            known[c["id"]] = at
        for kind in ("messages", "recorded", "events"):
            for r in feed[kind]:
                assert r["customer"] in known, (kind, r["id"])
                fed += 1
        for r in feed["messages"]:
            assert at <= parse(r["send_after"])  # submitted no later than it may go
        for r in feed["recorded"]:
            assert parse(r["sent_at"]) <= max(at, small.begin)  # synced after it was written
    assert fed + len(known) == len(small.arrivals)


def test_the_policies_are_valid_rules(tmp_path: Path) -> None:
    """The send-everything and dropping-cap folders load, keep the measured folder's send
    windows and playbooks, and the cap is the weekly limit over all mail."""
    from cadence.rules import load_rules

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(
        "max_delay: 5d\n"
        "limits:\n"
        "  - {name: weekly, max: 4, per: 7d}\n"
        "  - {name: sales, roles: [sales], max: 1, per: 7d}\n"
        "send_windows:\n  - {days: mon-fri, hours: '09:00-17:00'}\n"
        "suppress:\n  - {name: same, same: topic, within: 14d}\n"
        "merge:\n  - {name: tips, categories: [tip], window: 24h, template: digest}\n"
    )
    (rules / "p.yaml").write_text(
        "playbooks:\n"
        "  - {name: quiet, every: 1d, when: 'days_since_contact() >= 30', cooldown: 30d,\n"
        "     send: {role: success, category: check-in, subject: Hi, body_text: Hello}}\n"
    )
    assert weekly_maximum(rules) == 4
    folders = policy_folders(rules, tmp_path / "policies", 4)
    everything = load_rules(folders["send everything"])
    assert not everything.limits and not everything.suppress and not everything.merge
    assert len(everything.send_windows) == 1 and len(everything.playbooks) == 1
    assert everything.max_delay.days == 5
    cap = load_rules(folders["dropping cap"])
    assert [(lim.max, lim.per.days if lim.per else None, str(lim.over)) for lim in cap.limits] == [
        (4, 7, "drop")
    ]
    assert folders["rules"] == rules
