"""Issue 22's three figures from rows (`cadence.report.outcome`): which weeks count, what is
truly redundant, what is lost and what is only pending, when transactional mail is late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cadence.report.outcome import Weeks, holds, measure, redundant_ids

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
D = timedelta(days=1)
M = timedelta(minutes=1)


def row(mid: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": mid,
        "customer_id": "c-1",
        "kind": "submitted",
        "category": "tip",
        "topic": None,
        "human": False,
        "transactional": False,
        "channel": "email",
        "planned": False,
        "recipient": None,
        "send_after": T0,
        "sent_at": None,
        "status": "sent",
        "rule": None,
        "reason": "",
    }
    return {**base, **kw}


def email(eid: str, at: datetime, *members: str, customer: str = "c-1") -> dict[str, Any]:
    return {
        "id": eid,
        "customer_id": customer,
        "members": list(members),
        "sent_at": at,
        "to_owner": False,
    }


def test_whole_weeks_count_and_a_partial_one_only_when_asked() -> None:
    since = {"c-1": T0 - 30 * D, "c-2": T0 + 8 * D, "c-3": T0 + 15 * D}
    weeks = Weeks(T0, T0 + 17 * D, since)
    # two whole weeks; c-2 became a customer in the second, c-3 in the partial third
    assert weeks.count == 2 and set(weeks.rows) == {"c-1", "c-2"}
    assert len(weeks.rows["c-1"]) == 2 and len(weeks.rows["c-2"]) == 1
    for t in (T0, T0 + 8 * D, T0 + 15 * D):  # the last one falls in the partial week
        weeks.add("c-1", t)
    weeks.add("c-2", T0 + 9 * D)
    assert weeks.rows == {"c-1": [1, 1], "c-2": [1]}
    shown = Weeks(T0, T0 + 17 * D, since, partial=True)
    assert shown.count == 3 and set(shown.rows) == {"c-1", "c-2", "c-3"}
    shown.add("c-1", T0 + 15 * D)
    shown.add("c-3", T0 + 16 * D)
    assert shown.rows["c-1"] == [0, 0, 1] and shown.rows["c-3"] == [1]
    # a week's mean is over the people who were customers in it: the third, c-1's one, c-2's
    # none and c-3's one; the first, c-1 alone
    shown.add("c-1", T0)
    assert shown.means() == [1.0, 0.0, 0.667]


def test_only_what_a_person_wrote_within_14_days_before_makes_a_message_redundant() -> None:
    wrote = row("csm", kind="recorded", human=True, topic="renewal", sent_at=T0 - 14 * D)
    rows = [
        wrote,
        row("a", topic="renewal"),  # 14 days after: redundant
        row("b", topic="renewal", send_after=T0 + M),  # a minute too late
        row("c", topic="renewal", transactional=True),  # transactional: never
        row("d", topic="renewal", customer_id="c-2"),  # another customer
        row("e", topic="other"),
    ]
    assert redundant_ids(rows) == {"a"}
    # an automated email on the topic is no person's word
    assert redundant_ids([{**wrote, "human": False}, row("a", topic="renewal")]) == set()


def test_distinct_content_counts_the_settled_and_names_what_was_lost() -> None:
    rows = [
        row("went"),
        row("in-digest"),
        row("dropped", status="expired", rule="weekly-total", category="newsletter"),
        row("waiting", status="deferred", rule="hold-it"),  # still on its way: left out
        row("alert", recipient="owner", status="suppressed"),  # internal: left out
        row("later", send_after=T0 + 8 * D, status="suppressed", rule="x"),  # after the period
    ]
    sent = [email("e1", T0, "went"), email("e2", T0 + D, "in-digest", "other")]
    o = measure(rows, sent, T0, T0 + 7 * D, {"c-1": None})
    assert (o.distinct, o.distinct_delivered, o.pending) == (3, 2, 1)
    assert o.lost == {"expired: weekly-total": {"newsletter": 1}}
    assert (o.emails, o.digests) == (2, 1)
    assert (o.p50, o.p95, o.weeks) == (2.0, 2.0, 1)


def test_transactional_mail_is_on_time_within_five_minutes() -> None:
    end = T0 + 7 * D
    rows = [
        row("fast", transactional=True),
        row("slow", transactional=True),
        row("never", transactional=True, status="failed"),
        row("bounced", transactional=True, status="suppressed"),  # the address hard-bounced
        row("just-in", transactional=True, send_after=end - 2 * M, status="scheduled"),
    ]
    sent = [email("e1", T0 + 5 * M, "fast"), email("e2", T0 + 6 * M, "slow")]
    o = measure(rows, sent, T0, end, {"c-1": None})
    # "just-in" is not late yet when the period ends; "bounced" could never go
    assert (o.transactional, o.transactional_on_time) == (3, 1)


def test_holds_say_what_became_of_the_messages_a_rule_made_wait() -> None:
    rows = [
        row("a"),
        row("b", status="expired", rule="tickets"),
        row("c", status="deferred"),
        row("d", status="cancelled"),
        row("e"),
    ]
    held = {"a": ["tickets"], "b": ["tickets"], "c": ["tickets", "new"], "d": ["new"]}
    assert holds(rows, held) == {
        "new": {"held": 2, "sent": 0, "expired": 0, "waiting": 1, "other": 1},
        "tickets": {"held": 3, "sent": 1, "expired": 1, "waiting": 1, "other": 0},
    }
