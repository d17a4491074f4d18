"""Input records: what is accepted, what each kind of bad field says, what the model gets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from cadence.ingest.record_errors import explain
from cadence.ingest.records import CustomerIn, EventIn, MessageIn, RecordedIn
from cadence.model import MessageKind, Sender

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ANA = {"id": "c-17", "email": "ana@acme.test", "name": "Ana", "timezone": "America/New_York"}
MSG = {
    "id": "mkt-301",
    "customer": "c-17",
    "role": "marketing",
    "category": "announcement",
    "topic": "feature:reports",
    "template": "feature_announcement",
    "data": {"feature": "Reports"},
    "send_after": "2026-11-02T00:00:00Z",
    "expires_at": "2026-11-16T00:00:00Z",
    "transactional": False,
    "priority": None,
}
EVENT = {"id": "ev-88", "customer": "c-17", "type": "ticket_opened", "at": "2026-11-03T15:20:00Z"}


def reason(model: type[BaseModel], raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(raw)
    return explain(info.value, model)


def test_the_contracts_examples_are_accepted() -> None:
    customer = CustomerIn.model_validate(
        {
            **ANA,
            "account": "acme",
            "attributes": {"plan": "pro", "owner_email": "kim@vendor.test"},
        }
    ).to_model()
    assert customer.email == "ana@acme.test" and customer.attributes["plan"] == "pro"
    message = MessageIn.model_validate(MSG).to_model(NOW)
    assert message.kind == MessageKind.SUBMITTED
    assert message.send_after == datetime(2026, 11, 2, tzinfo=UTC)
    assert message.expires_at == datetime(2026, 11, 16, tzinfo=UTC)
    assert dict(message.data) == {"feature": "Reports"}
    event = EventIn.model_validate(
        {**EVENT, "data": {"ticket": "T-1"}, "attributes": {"open_tickets": 1}}
    ).to_model()
    assert event.at == datetime(2026, 11, 3, 15, 20, tzinfo=UTC)
    assert dict(event.attributes) == {"open_tickets": 1}


@pytest.mark.parametrize(
    "address", ["ana@acme.test", "kim@vendor.test", "x@example.com", "Ana@ACME.test"]
)
def test_test_domains_are_addresses(address: str) -> None:
    """The contract's examples use `.test`, a special-use domain email-validator refuses by
    default; cadence accepts it (and normalises the domain's case)."""
    customer = CustomerIn.model_validate({**ANA, "email": address})
    assert customer.email.lower() == address.lower()
    assert customer.email.split("@")[1] == address.split("@")[1].lower()


@pytest.mark.parametrize("address", ["not-an-address", "a@b.invalid", "a b@acme.test", "a@"])
def test_bad_addresses_name_the_field(address: str) -> None:
    text = reason(CustomerIn, {**ANA, "email": address})
    assert text.startswith("`email`: ") and "is not an email address" in text
    assert not text.endswith(".")


def test_from_is_a_sender_with_a_checked_address() -> None:
    message = MessageIn.model_validate(
        {**MSG, "from": {"email": "kim@vendor.test", "name": "Kim Lee"}}
    ).to_model(NOW)
    assert message.sender == Sender("kim@vendor.test", "Kim Lee")
    assert "`from.email`: " in reason(MessageIn, {**MSG, "from": {"email": "kim"}})
    assert reason(MessageIn, {**MSG, "from": "kim@vendor.test"}) == (
        '`from` must be a JSON object, not "kim@vendor.test"'
    )


def test_a_naive_time_is_an_error_with_the_fix() -> None:
    assert reason(MessageIn, {**MSG, "send_after": "2026-11-02T09:00:00"}) == (
        "`send_after`: 2026-11-02T09:00:00 has no UTC offset; write 2026-11-02T09:00:00Z or +01:00"
    )
    assert "`at`: " in reason(EventIn, {**EVENT, "at": "2026-11-03T15:20:00"})
    assert "no UTC offset" in reason(
        RecordedIn, {**MSG, "template": None, "sent_at": "2026-11-02T09:00:00"}
    )
    assert "is a date, not a time" in reason(MessageIn, {**MSG, "send_after": "2026-11-02"})
    assert "not an ISO 8601 time" in reason(MessageIn, {**MSG, "send_after": "next monday"})
    assert "is not a time" in reason(MessageIn, {**MSG, "send_after": 1700000000})


def test_times_become_aware_utc_and_digest_alike() -> None:
    a = MessageIn.model_validate({**MSG, "send_after": "2026-11-02T01:00:00+01:00"})
    b = MessageIn.model_validate({**MSG, "send_after": "2026-11-02T00:00:00Z"})
    assert a.send_after == b.send_after and a.send_after.tzinfo == UTC  # type: ignore[union-attr]
    assert a.digest() == b.digest()
    # defaults written out or left out are the same record
    assert MessageIn.model_validate({**MSG, "human": False}).digest() == b.digest()
    assert MessageIn.model_validate({**MSG, "topic": "other"}).digest() != b.digest()


def test_send_after_defaults_to_now_outside_the_digest() -> None:
    raw = {k: v for k, v in MSG.items() if k not in ("send_after", "expires_at")}
    record = MessageIn.model_validate(raw)
    assert record.to_model(NOW).send_after == NOW
    assert record.to_model(NOW).expires_at is None  # the planner applies max_delay
    later = MessageIn.model_validate(raw)
    assert later.digest() == record.digest()  # resent later: still the same record


def test_unknown_time_zone() -> None:
    assert reason(CustomerIn, {**ANA, "timezone": "Mars/Olympus"}) == (
        '`timezone`: "Mars/Olympus" is not a time zone; use an IANA name like Europe/Berlin'
    )
    assert "not a time zone" in reason(CustomerIn, {**ANA, "timezone": "../etc/passwd"})
    assert CustomerIn.model_validate({**ANA, "timezone": None}).timezone is None


def test_missing_fields_are_named_together() -> None:
    assert reason(CustomerIn, {"id": "c-1"}) == "missing fields `email`, `name`"
    raw = {k: v for k, v in MSG.items() if k != "role"}
    assert reason(MessageIn, raw) == "missing field `role`"


def test_unknown_fields_name_the_likely_one_or_all() -> None:
    assert reason(MessageIn, {**MSG, "send_afer": "2026-11-02T00:00:00Z"}) == (
        "unknown field `send_afer` (did you mean `send_after`?)"
    )
    text = reason(MessageIn, {**MSG, "colour": "red"})
    assert text.startswith("unknown field `colour`; allowed: body_html, body_text, category")
    assert "from" in text and "from_" not in text
    assert "(did you mean `name`?)" in reason(
        MessageIn, {**MSG, "from": {"email": "k@vendor.test", "nmae": "K"}}
    )
    # a message has no attributes to point to
    assert "attribute" not in text


def test_an_unknown_field_of_a_customer_or_event_points_to_its_attributes() -> None:
    ana = {"id": "c-1", "email": "ana@acme.test", "name": "Ana", "plan": "pro"}
    assert reason(CustomerIn, ana) == (
        "unknown field `plan`; allowed: account, attributes, email, id, name, timezone; an "
        "attribute goes inside `attributes` (as a CSV column: `attributes.plan`)"
    )
    assert "(as a CSV column: `attributes.open_tickets`)" in reason(
        EventIn, {**EVENT, "open_tickets": 1}
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("priority", "high", '`priority` must be a whole number, not "high"'),
        ("priority", 5.5, "`priority` must be a whole number, not 5.5"),
        ("human", "yes", '`human` must be true or false, not "yes"'),
        ("data", [1, 2], "`data` must be a JSON object, not [1, 2]"),
        ("role", 7, "`role` must be text, not 7"),
        ("id", "", "`id` must not be empty"),
        ("priority", 2**40, "`priority` must be between -2147483647 and 2147483647"),
    ],
)
def test_bad_types_say_what_is_expected(field: str, value: object, expected: str) -> None:
    assert reason(MessageIn, {**MSG, field: value}) == expected


def test_content_is_a_template_or_a_ready_subject_and_body() -> None:
    ready = {**MSG, "template": None, "subject": "Hi", "body_text": "Hello"}
    assert MessageIn.model_validate(ready).to_model(NOW).subject == "Hi"
    assert "missing `body_text`" in reason(MessageIn, {**ready, "body_text": None})
    nothing = {**MSG, "template": None}
    assert "missing `subject` and `body_text`" in reason(MessageIn, nothing)
    assert "not both" in reason(MessageIn, {**MSG, "subject": "Hi"})


def test_expires_at_must_follow_send_after() -> None:
    assert reason(MessageIn, {**MSG, "expires_at": "2026-11-01T00:00:00Z"}) == (
        "`expires_at` 2026-11-01T00:00:00Z is not after `send_after` 2026-11-02T00:00:00Z"
    )


def test_recorded_needs_sent_at_and_no_template() -> None:
    raw = {"id": "crm-1", "customer": "c-17", "role": "success", "human": True}
    assert reason(RecordedIn, raw) == "missing field `sent_at` (or `planned_at`)"
    message = RecordedIn.model_validate({**raw, "sent_at": "2026-10-28T15:30:00-04:00"}).to_model(
        NOW
    )
    assert message.kind == MessageKind.RECORDED and message.send_after is None
    assert message.sent_at == datetime(2026, 10, 28, 19, 30, tzinfo=UTC)
    assert message.human and message.subject is None


def test_events_cadence_acts_on_have_their_data_checked() -> None:
    bounce = {**EVENT, "type": "bounced", "data": {"kind": "sometimes"}}
    assert "hard or soft" in reason(EventIn, bounce)
    EventIn.model_validate({**bounce, "data": {"kind": "hard"}})
    unsub = {**EVENT, "type": "unsubscribed", "data": {"categories": "newsletter"}}
    assert "list of category names" in reason(EventIn, unsub)
    EventIn.model_validate({**unsub, "data": {}})  # none: all
    assert reason(EventIn, {**EVENT, "attributes": "x"}).startswith("`attributes` must be")


def test_nul_characters_are_refused_at_the_door() -> None:
    """PostgreSQL stores no NUL in text; better a reason here than a failed transaction."""
    assert "`name` contains a NUL character" in reason(CustomerIn, {**ANA, "name": "A\x00"})
    assert "`data`" in reason(MessageIn, {**MSG, "data": {"x": ["\x00"]}})


def test_ids_with_spaces_around_them_are_refused() -> None:
    assert "spaces around it" in reason(CustomerIn, {**ANA, "id": " c-17"})


def test_a_touch_of_any_channel_planned_then_done() -> None:
    raw = {"id": "call-1", "customer": "c-17", "role": "success", "human": True}
    call = {**raw, "channel": "call", "summary": "onboarding walkthrough", "topic": "onboarding"}
    planned = RecordedIn.model_validate({**call, "planned_at": "2026-11-04T14:00:00Z"})
    message = planned.to_model(NOW)
    assert message.channel == "call" and message.planned and message.summary
    assert message.sent_at == datetime(2026, 11, 4, 14, 0, tzinfo=UTC)  # counts then
    done = RecordedIn.model_validate({**call, "sent_at": "2026-11-04T14:20:00Z"})
    assert not done.to_model(NOW).planned
    # what a record of it done says, back as a plan: the one change an id may take
    assert done.as_planned(planned.planned_at).digest() == planned.digest()  # type: ignore[arg-type]
    both = {**call, "sent_at": "2026-11-04T14:20:00Z", "planned_at": "2026-11-04T14:00:00Z"}
    assert "not both" in reason(RecordedIn, both)
    assert "is not a channel name" in reason(
        RecordedIn, {**call, "channel": "Phone Call", "sent_at": "2026-11-04T14:20:00Z"}
    )


def test_preferences_changed_takes_a_cap_of_one_or_more_or_none() -> None:
    raw = {
        "id": "p-1",
        "customer": "c-17",
        "type": "preferences_changed",
        "at": "2026-11-02T00:00:00Z",
    }
    for good in ({"max_per_week": 1, "categories": ["tip"]}, {"max_per_week": None}, {}):
        EventIn.model_validate({**raw, "data": good})
    for bad in (0, -2, "1", True, 1.5):
        assert "`data.max_per_week` is the most emails a week" in reason(
            EventIn, {**raw, "data": {"max_per_week": bad}}
        )
