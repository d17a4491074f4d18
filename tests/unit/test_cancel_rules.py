"""Cancel rules, pure: which pending messages an event cancels, read from rule files as a
CSM writes them, and what the starter rules do with a customer's reply (its follow-ups
stopped for the role answered, automated marketing held for three days)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from cadence.engine.events import apply_event
from cadence.engine.planner import plan_customer
from cadence.engine.playbooks import on_event
from cadence.model import Event, Message, MessageKind, Status
from cadence.rules import RuleErrors, load_rules
from cadence.rules.model import Rules
from tests.unit.engine_helpers import NOW, context, customer, msg

REPO = Path(__file__).resolve().parents[2]
D = timedelta(days=1)
H = timedelta(hours=1)


@pytest.fixture(scope="module")
def starter() -> Rules:
    return load_rules(REPO / "rules")


def pending(mid: str, role: str, category: str | None, **kw: object) -> Message:
    """A message queued a day before NOW, due in two days."""
    return replace(msg(mid, role, category, 2 * D, **kw), created_at=NOW - D)


def reply(**data: object) -> Event:
    return Event("reply:1", "c-17", "replied", NOW, {"source": "inbound email", **data})


QUEUED = (
    pending("pb:ticket-resolved-follow-up:ev-1", "success", "check-in", playbook="x"),
    pending("seq-2", "sales", "follow-up"),
    pending("cs-note", "success", "check-in", human=True),
    pending("rcpt-1", "success", "check-in", transactional=True),
    pending("alert-1", "success", "check-in", to="owner"),
    pending("nl-1", "marketing", "newsletter"),
)


def cancelled(
    fired_by: Event, rules: Rules, queued: tuple[Message, ...] = QUEUED
) -> dict[str, str]:
    fired = on_event(fired_by, customer(), rules, open_messages=queued)
    return {c.message_id: c.by for c in fired.cancellations}


def test_a_reply_to_success_ends_the_success_follow_ups_only(starter: Rules) -> None:
    assert cancelled(reply(email_id="e-9", role="success"), starter) == {
        "pb:ticket-resolved-follow-up:ev-1": "cancel rule a-reply-ends-the-follow-ups"
    }


def test_a_reply_to_sales_ends_the_sales_sequence_not_the_check_in(starter: Rules) -> None:
    assert cancelled(reply(email_id="e-3", role="sales"), starter) == {
        "seq-2": "cancel rule a-reply-ends-the-follow-ups"
    }


def test_a_reply_we_cannot_place_ends_every_roles_automated_follow_ups(starter: Rules) -> None:
    # a person's note, a receipt, an alert to the owner and a newsletter are never follow-ups
    assert set(cancelled(reply(), starter)) == {"pb:ticket-resolved-follow-up:ev-1", "seq-2"}


def test_mail_queued_after_the_reply_and_recorded_touches_are_not_cancelled(
    starter: Rules,
) -> None:
    later = replace(pending("seq-3", "sales", "follow-up"), created_at=NOW + H)
    call = replace(pending("call-1", "sales", "follow-up"), kind=MessageKind.RECORDED)
    assert cancelled(reply(role="sales"), starter, (later, call)) == {}


def test_a_playbooks_own_cancel_on_still_names_the_playbook(starter: Rules) -> None:
    follow_up = pending("pb:ticket-resolved-follow-up:ev-1", "success", "check-in")
    follow_up = replace(follow_up, playbook="ticket-resolved-follow-up")
    opened = Event("ev-2", "c-17", "ticket_opened", NOW)
    by = cancelled(opened, starter, (follow_up,))
    assert by == {follow_up.id: "playbook ticket-resolved-follow-up"}


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "r.yaml").write_text(text)
    return tmp_path


def test_a_cancel_rule_on_several_events_with_no_condition(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            "cancel:\n  - name: churn-ends-it-all\n    on: [churned, spam_reported]\n"
            "    roles: [sales, marketing]\n",
        )
    )
    churned = Event("ev-9", "c-17", "churned", NOW)
    assert set(cancelled(churned, rules)) == {"seq-2", "nl-1"}
    assert cancelled(Event("ev-10", "c-17", "ticket_opened", NOW), rules) == {}


def test_a_failing_condition_cancels_nothing_and_says_why(tmp_path: Path) -> None:
    rules = load_rules(
        write(tmp_path, "cancel:\n  - name: odd\n    on: replied\n    when: event.data.x > 1\n")
    )
    fired = on_event(reply(), customer(), rules, open_messages=QUEUED[:1])
    assert fired.cancellations == ()
    (skip,) = fired.skipped
    assert skip.playbook == "odd" and "event.data.x" in skip.reason


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("cancel:\n  - name: x\n    roles: [sales]\n", "needs `on`"),
        ("cancel:\n  - name: x\n    on: replied\n    wait: 1d\n", "unknown key `wait`"),
        ("cancel:\n  - name: x\n    on: replied\n    when: evnt.type\n", "unknown name"),
    ],
)
def test_a_bad_cancel_rule_is_reported_where_it_is(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(RuleErrors) as err:
        load_rules(write(tmp_path, text))
    assert says in str(err.value) and "r.yaml:" in str(err.value)


def test_automated_marketing_waits_three_days_after_a_reply(starter: Rules) -> None:
    ana = apply_event(customer(), reply(role="success"))
    news = msg("mkt-1", "marketing", "offer", H)
    plan = plan_customer(context(news, customer_=ana), starter, NOW)
    (d,) = plan.decisions
    assert d.status is Status.DEFERRED and d.rule == "quiet-after-a-reply"
    # three days on, the offer goes through every other rule as usual
    later = plan_customer(context(news, customer_=ana), starter, NOW + 3 * D + H)
    assert later.decisions[0].rule != "quiet-after-a-reply"
    assert later.decisions[0].status in {Status.SCHEDULED, Status.DEFERRED}
    # a person's own marketing note is not held
    note = msg("mkt-2", "marketing", "offer", H, human=True)
    plan = plan_customer(context(note, customer_=ana), starter, NOW)
    assert plan.decisions[0].rule != "quiet-after-a-reply"


def test_a_cancelled_entry_says_what_the_customer_answered(starter: Rules) -> None:
    answered = reply(email_id="e-9", role="success")
    (c,) = on_event(answered, customer(), starter, open_messages=QUEUED[:1]).cancellations
    assert c.reason == (
        "event reply:1 (replied) under cancel rule a-reply-ends-the-follow-ups: "
        "the customer replied to success's email e-9"
    )
    (c,) = on_event(reply(), customer(), starter, open_messages=QUEUED[:1]).cancellations
    assert c.reason.endswith(": the customer wrote to us")
    opened = Event("ev-2", "c-17", "ticket_opened", NOW)
    assert replace(c, event=opened).reason == (
        "event ev-2 (ticket_opened) under cancel rule a-reply-ends-the-follow-ups"
    )
