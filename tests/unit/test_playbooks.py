"""Playbooks, pure: what events and sweeps create and cancel."""

from __future__ import annotations

from datetime import timedelta

from cadence.engine.playbooks import PlaybookRun, next_sweep, on_event, sweep, sweep_period
from cadence.model import Event
from cadence.rules.model import Expression, Playbook, PlaybookSend

from .engine_helpers import LOC, NOW, customer, rules

D = timedelta(days=1)


def _plan_is_paid(scope):  # type: ignore[no-untyped-def]
    return scope["customer"].plan != "free"


AFTER_ONBOARDING = Playbook(
    name="after-onboarding",
    location=LOC,
    send=PlaybookSend(template="checkin_after_onboarding", expires_after=7 * D),
    on=("onboarding_completed",),
    when=Expression('customer.plan != "free"', LOC, _plan_is_paid),
    wait=14 * D,
    cancel_on=("ticket_opened", "churned"),
    cooldown=60 * D,
)
QUIET = Playbook(
    name="quiet-customer",
    location=LOC,
    send=PlaybookSend(template="checkin_quiet"),
    every=D,
    cooldown=30 * D,
)


def test_event_creates_a_check_in_after_the_wait_with_a_stable_id() -> None:
    ev = Event("ev-1", "c-17", "onboarding_completed", NOW)
    fired = on_event(ev, customer(plan="pro"), rules(playbooks=(AFTER_ONBOARDING,)))
    (m,) = fired.messages
    assert m.id == "pb:after-onboarding:ev-1" and m.send_after == NOW + 14 * D
    assert m.expires_at == NOW + 21 * D and m.playbook == "after-onboarding"
    again = on_event(ev, customer(plan="pro"), rules(playbooks=(AFTER_ONBOARDING,)))
    assert again.messages == fired.messages


def test_when_filters_and_cooldown_holds() -> None:
    r = rules(playbooks=(AFTER_ONBOARDING,))
    ev = Event("ev-1", "c-17", "onboarding_completed", NOW)
    assert on_event(ev, customer(plan="free"), r).messages == ()
    runs = [PlaybookRun("after-onboarding", NOW - 10 * D)]
    fired = on_event(ev, customer(plan="pro"), r, runs=runs)
    assert fired.messages == () and fired.skipped


def test_cancel_on_names_the_event() -> None:
    r = rules(playbooks=(AFTER_ONBOARDING,))
    created = on_event(Event("ev-1", "c-17", "onboarding_completed", NOW), customer(plan="pro"), r)
    ticket = Event("ev-2", "c-17", "ticket_opened", NOW + 3 * D)
    fired = on_event(ticket, customer(plan="pro"), r, open_messages=created.messages)
    (c,) = fired.cancellations
    assert c.message_id == "pb:after-onboarding:ev-1" and c.event.id == "ev-2"


def test_sweep_is_one_message_per_period_made_as_of_its_start() -> None:
    r = rules(playbooks=(QUIET,))
    period = sweep_period(QUIET, NOW)
    assert period <= NOW < period + D
    (a,) = sweep(customer(), QUIET, period).messages
    assert a.created_at == period and a.send_after == period + QUIET.wait
    assert a.id == f"pb:quiet-customer:c-17:{period:%Y%m%dT%H%M}"
    # whichever pass of the period sweeps, the period is the same
    assert sweep_period(QUIET, NOW + timedelta(hours=5)) == period
    assert next_sweep(r, NOW) == period + D
    assert next_sweep(r, period) == period + D
    assert next_sweep(rules(), NOW) is None
