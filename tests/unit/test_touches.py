"""Every touch in one ledger: calls, meetings and chats count like email, unless a rule's
`channels` says otherwise; a call booked elsewhere counts at its time."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.engine.planner import plan_customer
from cadence.engine.scope import make_scope
from cadence.model import Sender, Status
from cadence.rules.model import Filter, SameKey
from tests.unit.engine_helpers import NOW, context, limit, msg, recorded, rules, suppress

H = timedelta(hours=1)
D = timedelta(days=1)
KIM = Sender("kim@vendor.test", "Kim")


def decisions(plan):  # type: ignore[no-untyped-def]
    return {d.message_id: d for d in plan.decisions}


def call(mid: str, at_offset: timedelta, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("channel", "call")
    return recorded(mid, "success", NOW + at_offset, human=True, sender=KIM, **kw)


def test_a_weekly_cap_counts_calls_and_meetings() -> None:
    r = rules(limits=(limit("weekly-total", max=2, per=7 * D),))
    hist = (call("call-1", -2 * D), call("meet-1", -D, channel="meeting"))
    plan = plan_customer(context(msg("cs-1", "success", "check-in", H), history=hist), r, NOW)
    d = decisions(plan)["cs-1"]
    assert d.status is Status.DEFERRED and d.rule == "weekly-total"
    assert set(d.counted) == {"call-1", "meet-1"}
    assert "Kim's call call-1 (success)" in d.reason and "Kim's meeting meet-1" in d.reason
    assert "weekly-total already has 2 touches in 7d" in d.reason  # not "2 emails"


def test_a_limit_filtered_to_email_does_not_count_calls() -> None:
    r = rules(
        limits=(
            limit("emails-weekly", max=1, per=7 * D, filter=Filter(channels=frozenset({"email"}))),
        )
    )
    plan = plan_customer(
        context(msg("cs-1", "success", "check-in", H), history=(call("call-1", -D),)), r, NOW
    )
    assert decisions(plan)["cs-1"].status is Status.SCHEDULED


def test_min_gap_keeps_an_email_off_the_day_of_a_booked_call() -> None:
    """A call booked for tomorrow at 15:00 counts then, as a planned email does: the email
    that would land within the gap on either side moves past it."""
    r = rules(limits=(limit("breathing-room", min_gap=20 * H),))
    booked = call("call-1", D + 3 * H, planned=True)
    plan = plan_customer(context(msg("cs-1", "success", "check-in", D), history=(booked,)), r, NOW)
    d = decisions(plan)["cs-1"]
    assert d.status is Status.DEFERRED and d.send_at == NOW + D + 3 * H + 20 * H
    assert "Kim's call call-1 (success, planned)" in d.reason


def test_a_booked_call_on_the_topic_covers_the_automated_email_around_it() -> None:
    rule = suppress(
        "call-covers-it",
        filter=Filter(
            categories=frozenset({"onboarding"}), channels=frozenset({"call", "meeting"})
        ),
        same=SameKey.TOPIC,
        within=D,
    )
    r = rules(suppress=(rule,))
    email = msg("prd-1", "product", "onboarding", H, topic="onboarding")
    booked = call("call-1", 10 * H, planned=True, topic="onboarding")
    d = decisions(plan_customer(context(email, history=(booked,)), r, NOW))["prd-1"]
    assert d.status is Status.SUPPRESSED and d.rule == "call-covers-it"
    assert "Kim's call call-1 (success, planned)" in d.reason and "is planned for" in d.reason
    # an email on the topic does not cover it: the rule counts only calls and meetings
    note = recorded("crm-1", "success", NOW - 2 * H, topic="onboarding")
    d = decisions(plan_customer(context(email, history=(note,)), r, NOW))["prd-1"]
    assert d.status is Status.SCHEDULED
    # a call two days away does not either
    far = call("call-2", 3 * D, planned=True, topic="onboarding")
    d = decisions(plan_customer(context(email, history=(far,)), r, NOW))["prd-1"]
    assert d.status is Status.SCHEDULED


def test_the_helpers_count_every_channel_unless_told_one() -> None:
    hist = (call("call-1", -D), recorded("crm-1", "sales", NOW - 3 * D))
    ctx = context(history=hist)
    scope = make_scope(ctx.customer, hist, {}, NOW)
    assert scope["sent_within"]("7d") == 2
    assert scope["sent_within"]("7d", channel="call") == 1
    assert scope["sent_within"]("7d", channel="email") == 1
    assert scope["days_since_contact"]() == 1.0  # the call yesterday: not a quiet customer
    assert scope["days_since_contact"](channel="email") == 3.0


CHANNELS = st.sampled_from(["email", "call", "meeting", "chat"])


@settings(max_examples=60, deadline=None)
@given(
    touches=st.lists(
        st.tuples(st.integers(min_value=-14 * 24, max_value=14 * 24), CHANNELS, st.booleans()),
        max_size=12,
    ),
    pending=st.integers(min_value=1, max_value=6),
    most=st.integers(min_value=1, max_value=3),
    filtered=st.booleans(),
)
def test_limits_hold_over_every_channel(
    touches: list[tuple[int, str, bool]], pending: int, most: int, filtered: bool
) -> None:
    """No 7-day window that holds an email of the plan holds more than `max` counted
    touches, and a limit filtered to channels counts only those."""
    channels = frozenset({"email", "call"}) if filtered else None
    r = rules(limits=(limit("cap", max=most, per=7 * D, filter=Filter(channels=channels)),))
    hist = tuple(
        call(f"t-{i}", h * H, channel=ch, planned=planned and h > 0)
        for i, (h, ch, planned) in enumerate(touches)
    )
    msgs = [msg(f"m-{i}", "sales", "offer", i * 5 * H) for i in range(pending)]
    plan = plan_customer(context(*msgs, history=hist), r, NOW)
    counted = sorted(
        [s.at for s in hist if channels is None or s.members[0].channel in channels]
        + [e.send_at for e in plan.emails]
    )
    placed = {e.send_at for e in plan.emails}
    for i, start in enumerate(counted):
        window = [t for t in counted[i:] if t < start + 7 * D]
        if any(t in placed for t in window):
            assert len(window) <= most, (start, window)
