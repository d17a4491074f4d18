"""The customer's own cap (`preferences_changed`): at most N emails a week across every role,
transactional mail excepted, named in the decisions as the customer's wish."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.engine.events import apply_event
from cadence.engine.planner import plan_customer
from cadence.model import Event, Reachability, Status
from tests.unit.engine_helpers import NOW, context, customer, msg, recorded, rules

H = timedelta(hours=1)
D = timedelta(days=1)


def capped(most: int | None):  # type: ignore[no-untyped-def]
    return replace(customer(), name="Ana", reach=Reachability(max_per_week=most))


def test_a_preferences_event_sets_the_cap_and_the_categories_left() -> None:
    ana = customer(reach=Reachability(unsubscribed_categories=frozenset({"offer"})))
    wish = Event(
        "p-1", "c-17", "preferences_changed", NOW, {"categories": ["tip"], "max_per_week": 1}
    )
    after = apply_event(ana, wish).reach
    assert after.max_per_week == 1 and after.unsubscribed_categories == {"tip"}  # her whole choice
    again = Event("p-2", "c-17", "preferences_changed", NOW + H, {"max_per_week": None})
    assert apply_event(replace(ana, reach=after), again).reach.max_per_week is None


def test_the_cap_holds_across_roles_and_names_the_customer() -> None:
    mail = (
        msg("mkt-1", "marketing", "announcement", H),
        msg("cs-1", "success", "check-in", 2 * H),
        msg("rcpt-1", "billing", "receipt", 3 * H, transactional=True),
    )
    plan = plan_customer(context(*mail, customer_=capped(1)), rules(), NOW)
    d = {x.message_id: x for x in plan.decisions}
    assert d["rcpt-1"].status is Status.SCHEDULED  # a receipt never waits
    going = [m for m in ("mkt-1", "cs-1") if d[m].status is Status.SCHEDULED]
    waiting = [m for m in ("mkt-1", "cs-1") if d[m].status is Status.DEFERRED]
    assert len(going) == 1 and len(waiting) == 1
    assert "Ana asked for at most one email a week" in d[waiting[0]].reason
    plan = plan_customer(context(*mail, customer_=capped(None)), rules(), NOW)
    assert {x.status for x in plan.decisions} == {Status.SCHEDULED}


@settings(max_examples=80, deadline=None)
@given(
    most=st.integers(min_value=1, max_value=3),
    sent=st.lists(st.integers(min_value=-7 * 24, max_value=-1), max_size=5),
    offsets=st.lists(st.integers(min_value=0, max_value=10 * 24), min_size=1, max_size=8),
)
def test_no_customer_ever_exceeds_the_cap_they_chose(
    most: int, sent: list[int], offsets: list[int]
) -> None:
    history = tuple(recorded(f"s-{i}", "sales", NOW + h * H) for i, h in enumerate(sent))
    pending = [msg(f"m-{i}", "product", "tip", h * H) for i, h in enumerate(offsets)]
    plan = plan_customer(context(*pending, history=history, customer_=capped(most)), rules(), NOW)
    times = sorted([s.at for s in history] + [e.send_at for e in plan.emails])
    placed = {e.send_at for e in plan.emails}
    for i, start in enumerate(times):
        window = [t for t in times[i:] if t < start + 7 * D]
        if any(t in placed for t in window):
            assert len(window) <= most, (start, window)


def test_a_reply_counts_as_contact_and_a_new_customer_counts_from_when_first_known() -> None:
    from cadence.engine.scope import make_scope
    from cadence.model import Engagement

    quiet = customer()  # first known 60 days before NOW, never contacted
    scope = make_scope(quiet, (), {}, NOW)
    assert scope["days_since_contact"]() == 60.0
    wrote = replace(quiet, engagement=Engagement(last_reply_at=NOW - 2 * D, replies=1))
    scope = make_scope(wrote, (), {}, NOW)
    assert scope["days_since_contact"]() == 2.0
    assert scope["days_since_contact"](role="success") == 60.0  # a role's contact is ours
