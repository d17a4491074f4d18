"""Starter samples (contract formats, the story they tell) and the `cadence init` writer."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cadence.config import SenderSettings, load_settings
from cadence.delivery.compose import compose
from cadence.delivery.render import Renderer
from cadence.ingest.records import RecordedIn
from cadence.model import Customer, Email, Message, Sender
from cadence.rules.loader import load_rules
from cadence.rules.model import SameKey
from cadence.starter.samples import sample_records, write_samples
from cadence.starter.writer import StarterExists, next_monday, write_starter

BASE = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
REPO = Path(__file__).resolve().parents[2]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

CUSTOMER_KEYS = {"id", "email", "name", "timezone", "account", "attributes"}
MESSAGE_KEYS = {
    "id", "customer", "role", "category", "topic", "template", "data", "subject", "body_text",
    "body_html", "send_after", "expires_at", "transactional", "priority", "from", "human",
}  # fmt: skip
#: what a recorded touch may add: its channel and summary, and when it happened or is booked
RECORDED_KEYS = {"sent_at", "planned_at", "channel", "summary"}
EVENT_KEYS = {"id", "customer", "type", "at", "data", "attributes"}


def time_of(text: str) -> datetime:
    assert ISO.match(text), f"{text!r} is not ISO 8601 with an offset"
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None
    return parsed


@pytest.fixture(scope="module")
def samples() -> dict[str, list[dict[str, Any]]]:
    return sample_records(BASE)


# --- shapes -------------------------------------------------------------------------------


def test_records_are_json_and_ids_unique(samples: dict[str, list[dict[str, Any]]]) -> None:
    assert set(samples) == {"customers", "messages", "recorded", "events"}
    assert json.loads(json.dumps(samples)) == samples
    for name, records in samples.items():
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)), name
    all_message_ids = [r["id"] for r in samples["messages"] + samples["recorded"]]
    assert len(all_message_ids) == len(set(all_message_ids))


def test_customers_have_the_contract_shape(samples: dict[str, list[dict[str, Any]]]) -> None:
    customers = samples["customers"]
    assert 7 <= len(customers) <= 10
    assert len({c["account"] for c in customers}) == 3
    zones = {c["timezone"] for c in customers}
    assert zones >= {
        "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney",
        "America/Los_Angeles", "Europe/London", "UTC",
    }  # fmt: skip
    for c in customers:
        assert set(c) <= CUSTOMER_KEYS and {"id", "email", "name"} <= set(c)
        ZoneInfo(c["timezone"])
        attrs = c["attributes"]
        assert {"plan", "signup_at", "owner_email", "open_tickets"} <= set(attrs)
        time_of(attrs["signup_at"])
    ana = next(c for c in customers if c["id"] == "c-17")
    assert (ana["name"], ana["account"], ana["timezone"]) == ("Ana", "acme", "America/New_York")
    assert ana["attributes"]["plan"] == "pro"
    signup = time_of(ana["attributes"]["signup_at"])
    assert timedelta(days=35) <= BASE - signup <= timedelta(days=45)


def check_message(record: Mapping[str, Any], customers: set[str], recorded: bool) -> None:
    assert set(record) <= MESSAGE_KEYS | (RECORDED_KEYS if recorded else set()), set(record)
    assert record["customer"] in customers
    assert isinstance(record["role"], str) and record["role"]
    if "template" in record:
        assert isinstance(record.get("data", {}), dict)
        assert "subject" not in record
    elif record.get("channel", "email") != "email":
        assert isinstance(record["summary"], str) and record["summary"]  # a call has no body
    else:
        assert isinstance(record["subject"], str) and isinstance(record["body_text"], str)
    for key in ("send_after", "expires_at", "sent_at", "planned_at"):
        if key in record:
            time_of(record[key])
    if "from" in record:
        assert set(record["from"]) <= {"email", "name"} and "@" in record["from"]["email"]
    assert isinstance(record.get("transactional", False), bool)
    assert isinstance(record.get("human", False), bool)


def test_messages_and_recorded_have_the_contract_shape(
    samples: dict[str, list[dict[str, Any]]],
) -> None:
    customers = {c["id"] for c in samples["customers"]}
    for record in samples["messages"]:
        check_message(record, customers, recorded=False)
        assert "send_after" in record
    for record in samples["recorded"]:
        check_message(record, customers, recorded=True)
        assert ("sent_at" in record) != ("planned_at" in record) and "template" not in record
        RecordedIn.model_validate(record)  # what `messages record` accepts


def test_events_have_the_contract_shape(samples: dict[str, list[dict[str, Any]]]) -> None:
    customers = {c["id"] for c in samples["customers"]}
    types = set()
    for event in samples["events"]:
        assert set(event) <= EVENT_KEYS and {"id", "customer", "type", "at"} <= set(event)
        assert event["customer"] in customers
        assert time_of(event["at"]) <= BASE  # history, as of the base
        types.add(event["type"])
    assert types >= {
        "unsubscribed", "bounced", "onboarding_completed", "ticket_opened", "ticket_resolved",
        "usage_dropped",
    }  # fmt: skip
    by_type = {e["type"]: e for e in samples["events"]}
    assert by_type["bounced"]["data"]["kind"] == "hard"
    left = set(by_type["unsubscribed"]["data"]["categories"])
    used = {m.get("category") for m in samples["messages"]}
    assert left <= used  # the unsubscribe covers categories the samples really use
    opened = [e for e in samples["events"] if e["type"] == "ticket_opened"]
    resolved = [e for e in samples["events"] if e["type"] == "ticket_resolved"]
    assert all(e["attributes"]["open_tickets"] == 1 for e in opened)
    assert all(e["attributes"]["open_tickets"] == 0 for e in resolved)


# --- the story ----------------------------------------------------------------------------


def test_ana_gets_eight_messages_from_many_roles_over_three_weeks(
    samples: dict[str, list[dict[str, Any]]],
) -> None:
    ana = [m for m in samples["messages"] if m["customer"] == "c-17"]
    assert len(ana) == 8
    assert len({m["role"] for m in ana}) >= 4
    times = sorted(time_of(m["send_after"]) for m in ana)
    assert times[0] >= BASE and times[-1] - times[0] >= timedelta(days=14)
    assert times[-1] <= BASE + timedelta(days=21)
    by_id = {m["id"]: m for m in ana}
    onboarding, tour = by_id["cs-12"], by_id["prd-7"]
    assert (onboarding["role"], onboarding["category"]) == ("success", "onboarding")
    assert (tour["role"], tour["category"]) == ("product", "product-tour")
    gap = time_of(tour["send_after"]) - time_of(onboarding["send_after"])
    assert timedelta(0) <= gap <= timedelta(days=1)
    announcement = by_id["mkt-301"]
    assert announcement["category"] == "announcement"
    assert announcement["topic"] == "feature:reports"
    note = next(
        r
        for r in samples["recorded"]
        if r.get("topic") == "feature:reports" and r.get("channel", "email") == "email"
    )
    assert note["customer"] == "c-17" and note["human"] is True
    before = time_of(announcement["send_after"]) - time_of(note["sent_at"])
    assert timedelta(days=4) <= before <= timedelta(days=14)
    categories = {m["category"] for m in ana}
    assert {"offer", "ticket-reply", "receipt"} <= categories
    transactional = {m["id"] for m in ana if m["transactional"]}
    assert {m["category"] for m in ana if m["id"] in transactional} == {"ticket-reply", "receipt"}
    assert sum(m["role"] == "marketing" for m in ana) >= 3
    assert any("subject" in m for m in ana)  # a ready message, not only templates


def test_csms_calls_are_in_the_ledger(samples: dict[str, list[dict[str, Any]]]) -> None:
    """Kim's call with Ana a week before her onboarding digest, which with Kim's note and a
    newsletter fills the weekly cap; Lee's onboarding call with Lena, booked for the afternoon
    her automated welcome on the same topic would go."""
    calls = {r["id"]: r for r in samples["recorded"] if r.get("channel") == "call"}
    by_id = {m["id"]: m for m in samples["messages"]}
    kim = calls["call-5498"]
    assert (kim["customer"], kim["human"], "sent_at" in kim) == ("c-17", True, True)
    ana = sorted(time_of(r["sent_at"]) for r in samples["recorded"] if r["customer"] == "c-17")
    assert len(ana) == 3  # the call, the note and a newsletter: the weekly cap's three
    digest_at = time_of(by_id["prd-7"]["send_after"])
    assert digest_at - timedelta(days=7) < time_of(kim["sent_at"]) == ana[0]
    for earlier, later in pairwise(ana):  # 20h apart, as the preview test checks of all
        assert later - earlier >= timedelta(hours=20)
    lee = calls["call-5521"]
    welcome = by_id["cs-21"]
    assert (lee["customer"], lee["human"], "planned_at" in lee) == ("c-21", True, True)
    assert lee["topic"] == welcome["topic"] == "onboarding"
    assert welcome["category"] == "onboarding" and not welcome.get("human")
    gap = time_of(lee["planned_at"]) - time_of(welcome["send_after"])
    assert timedelta(0) < gap < timedelta(days=1)
    assert time_of(lee["planned_at"]) >= BASE  # booked ahead of the demo's start


def test_starter_rules_count_calls(samples: dict[str, list[dict[str, Any]]]) -> None:
    """The weekly cap counts every channel; a call or meeting on a topic covers the automated
    onboarding email or check-in on it for a day; same-topic-twice is about emails."""
    rules = load_rules(REPO / "rules")
    weekly = next(lim for lim in rules.limits if lim.name == "weekly-total")
    assert weekly.filter.channels is None
    suppress = {rule.name: rule for rule in rules.suppress}
    call = suppress["call-covers-the-topic"]
    assert (call.same, call.within, call.when) == (SameKey.TOPIC, timedelta(days=1), None)
    assert call.filter.channels == frozenset({"call", "meeting"})
    assert call.filter.categories == frozenset({"onboarding", "check-in"})
    assert call.filter.human is False
    assert suppress["same-topic-twice"].filter.channels == frozenset({"email"})
    text = (REPO / "rules" / "fatigue.yaml").read_text()
    for name in ("weekly-total", "call-covers-the-topic"):  # each says why, above it
        above = text[: text.index(f"- name: {name}")].rstrip().splitlines()[-1]
        assert above.strip().startswith("#"), name
    assert "counts every channel" in text


def test_times_follow_the_base(samples: dict[str, list[dict[str, Any]]]) -> None:
    later = sample_records(BASE + timedelta(weeks=3))
    for before, after in zip(samples["messages"], later["messages"], strict=True):
        shift = time_of(after["send_after"]) - time_of(before["send_after"])
        assert shift == timedelta(weeks=3)
    with pytest.raises(ValueError):
        sample_records(datetime(2026, 11, 2))


def test_write_samples(tmp_path: Path, samples: dict[str, list[dict[str, Any]]]) -> None:
    paths = write_samples(tmp_path, BASE)
    assert [p.name for p in paths] == [
        "customers.jsonl", "messages.jsonl", "recorded.jsonl", "events.jsonl",
    ]  # fmt: skip
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == samples[path.stem]


# --- every template renders with the samples' data ----------------------------------------


def to_customer(record: Mapping[str, Any]) -> Customer:
    return Customer(
        id=record["id"],
        email=record["email"],
        name=record["name"],
        timezone=record.get("timezone"),
        account=record.get("account"),
        attributes=record.get("attributes", {}),
    )


def to_message(record: Mapping[str, Any], **kw: Any) -> Message:
    sender = record.get("from")
    return Message(
        id=record["id"],
        customer_id=record["customer"],
        role=record.get("role", "success"),
        category=record.get("category"),
        topic=record.get("topic"),
        template=record.get("template"),
        data=record.get("data", {}),
        subject=record.get("subject"),
        body_text=record.get("body_text"),
        body_html=record.get("body_html"),
        sender=Sender(sender["email"], sender.get("name")) if sender else None,
        transactional=record.get("transactional", False),
        **kw,
    )


def test_every_template_renders_with_the_samples(
    samples: dict[str, list[dict[str, Any]]],
) -> None:
    renderer = Renderer(REPO / "templates", sender=Sender("success@vendor.test", "Vendor"))
    customers = {c["id"]: to_customer(c) for c in samples["customers"]}
    extra = {"unsubscribe_url": "http://localhost:8787/u/t", "now": BASE}
    rendered: set[str] = set()
    for record in samples["messages"]:
        message = to_message(record)
        for in_digest in (False, True):
            out = renderer.render_message(
                message, customers[message.customer_id], extra, in_digest=in_digest
            )
            assert out.subject and "\n" not in out.subject and out.text.strip()
        if message.template:
            rendered.add(message.template)
    # the playbooks' templates, with the data a playbook gives them: the event's
    events = {e["type"]: e for e in samples["events"]}
    playbook_templates = {
        "checkin_after_onboarding": "onboarding_completed",
        "ticket_follow_up": "ticket_resolved",
        "owner_alert": "usage_dropped",
        "checkin_quiet": None,
    }
    for template, event_type in playbook_templates.items():
        event = events[event_type] if event_type else {"customer": "c-17", "data": {}}
        data = {"event": event["data"], "event_type": event_type} if event_type else {}
        message = Message(
            id=f"pb:{template}", customer_id=event["customer"], role="success",
            template=template, data=data, to="owner" if template == "owner_alert" else None,
        )  # fmt: skip
        out = renderer.render_message(message, customers[event["customer"]], extra)
        assert out.subject and out.text.strip() and out.html
        rendered.add(template)
    follow_up = Message(id="x", customer_id="c-33", role="success", template="ticket_follow_up")
    assert "T-1077" not in renderer.render_message(follow_up, customers["c-33"], extra).subject
    # the digest: Ana's onboarding mail and product tour, merged
    by_id = {r["id"]: r for r in samples["messages"]}
    members = [to_message(by_id["cs-12"]), to_message(by_id["prd-7"])]
    email = Email(
        id="e-1", customer_id="c-17", send_at=BASE, members=("cs-12", "prd-7"),
        role="success", category="onboarding", transactional=False, template="digest",
    )  # fmt: skip
    sender = SenderSettings()
    out = compose(
        email, customers["c-17"], members, renderer, sender, extra["unsubscribe_url"], BASE
    )
    assert out.subject.startswith("A few updates from Vendor")
    assert "from Kim Lee (success)" in out.text and "(product)" in out.text
    assert out.text.count("Hi Ana,") == 1  # items leave the greeting to the digest
    assert out.html is not None and out.html.count("<html") == 1
    rendered.add("digest")
    assert rendered == set(renderer.available())
    assert renderer.check(renderer.available()) == {}


def test_html_parts_escape_sample_values(samples: dict[str, list[dict[str, Any]]]) -> None:
    renderer = Renderer(REPO / "templates", sender=Sender("success@vendor.test", "Vendor"))
    customer = to_customer({**samples["customers"][0], "name": "Ana <script>"})
    message = to_message(next(m for m in samples["messages"] if m["id"] == "mkt-301"))
    out = renderer.render_message(message, customer, {"unsubscribe_url": None})
    assert "Ana <script>" in out.text
    assert out.html is not None and "Ana &lt;script&gt;" in out.html


# --- cadence init -------------------------------------------------------------------------


def test_next_monday() -> None:
    assert next_monday(datetime(2026, 11, 4, 15, tzinfo=UTC)) == BASE + timedelta(weeks=1)
    assert next_monday(BASE) == BASE
    assert next_monday(BASE + timedelta(seconds=1)) == BASE + timedelta(weeks=1)
    assert next_monday(datetime(2026, 11, 1, 23, tzinfo=UTC)) == BASE


def test_write_starter_writes_a_working_folder(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    written = write_starter(target, BASE)
    names = {p.relative_to(target).as_posix() for p in written}
    assert "cadence.yaml" in names
    package_rules = {
        f.name
        for f in resources.files("cadence.starter.rules").iterdir()
        if f.name.endswith((".yaml", ".json"))  # the rules and the schema their modeline names
    }
    assert {n.removeprefix("rules/") for n in names if n.startswith("rules/")} == package_rules
    templates = {n.removeprefix("templates/") for n in names if n.startswith("templates/")}
    assert templates == {p.name for p in (REPO / "templates").glob("*.j2")}
    assert {"samples/customers.jsonl", "samples/events.jsonl"} <= names
    settings = load_settings(target / "cadence.yaml", environ={})
    assert settings.database_url == f"sqlite:///{target.resolve()}/cadence.db"
    assert settings.transport.kind == "file"
    assert settings.transport.file.dir == target.resolve() / "outbox"
    assert settings.rules_dir == target.resolve() / "rules"
    renderer = Renderer(settings.templates_dir)
    assert renderer.check(renderer.available()) == {}
    for record in sample_records(BASE)["messages"]:
        if "template" in record:
            assert record["template"] in renderer.available()


def test_write_starter_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "cadence.yaml").write_text("mine\n")
    (tmp_path / "templates" / "digest.text.j2").write_text("mine too\n")
    with pytest.raises(StarterExists) as info:
        write_starter(tmp_path, BASE)
    assert set(info.value.paths) == {
        tmp_path / "cadence.yaml",
        tmp_path / "templates" / "digest.text.j2",
    }
    assert "--force" in str(info.value) and str(tmp_path / "cadence.yaml") in str(info.value)
    assert (tmp_path / "cadence.yaml").read_text() == "mine\n"  # nothing written
    assert not (tmp_path / "samples").exists()
    write_starter(tmp_path, BASE, overwrite=True)
    assert (tmp_path / "cadence.yaml").read_text().startswith("# cadence configuration")
