"""Virtual time for one customer: the daemon's loop with the clock replaced."""

from __future__ import annotations

from datetime import timedelta

from cadence.engine.simulation import apply_event, simulate_customer
from cadence.model import Event, Status

from .engine_helpers import NOW, categories, customer, limit, merge, msg, rules

D = timedelta(days=1)
H = timedelta(hours=1)


def test_limits_hold_over_time_and_every_message_ends_decided() -> None:
    r = rules(
        limits=(limit("weekly", max=2, per=7 * D),),
        merge=(merge("digest", categories("tip"), 24 * H),),
    )
    pending = [msg(f"m{i}", "marketing", "offer", i * D) for i in range(6)]
    pending += [msg("t1", "product", "tip", H), msg("t2", "success", "tip", 3 * H)]
    out = simulate_customer(customer(), pending, (), (), r, NOW, NOW + 28 * D)
    times = sorted(e.send_at for e in out.emails)
    for i in range(len(times) - 2):
        assert times[i + 2] - times[i] >= 7 * D
    assert {d.message_id for d in out.decisions} == {m.id for m in pending}
    assert any(len(e.members) == 2 for e in out.emails)


def test_unsubscribe_event_takes_effect_at_its_time() -> None:
    unsub = Event("ev-u", "c-17", "unsubscribed", NOW + 2 * D, {"categories": ["announcement"]})
    pending = [
        msg("a1", "marketing", "announcement", H),
        msg("a2", "marketing", "announcement", 3 * D),
    ]
    out = simulate_customer(customer(), pending, (), (unsub,), rules(), NOW, NOW + 7 * D)
    sent = {i for e in out.emails for i in e.members}
    assert sent == {"a1"}
    last = {d.message_id: d for d in out.decisions}
    assert last["a2"].status is Status.SUPPRESSED and last["a2"].rule == "unsubscribed"


def test_apply_event_resubscribe() -> None:
    c = apply_event(customer(), Event("e1", "c-17", "unsubscribed", NOW))
    assert c.reach.unsubscribed_all
    c = apply_event(c, Event("e2", "c-17", "resubscribed", NOW))
    assert not c.reach.unsubscribed_all


def test_a_suppressed_message_stays_suppressed_as_time_passes() -> None:
    from cadence.model import Message as M
    from cadence.model import MessageKind, Sent

    from .engine_helpers import suppress

    r = rules(suppress=(suppress("same-topic", same="topic", within=14 * D),))
    note = M("crm-1", "c-17", "success", kind=MessageKind.RECORDED, topic="x", sent_at=NOW - D)
    history = (Sent("crm-1", NOW - D, "c-17", (note,)),)
    pending = [
        msg("m1", "marketing", "announcement", H, topic="x"),
        msg("m2", "sales", "offer", 20 * D),
    ]
    out = simulate_customer(customer(), pending, history, (), r, NOW, NOW + 28 * D)
    last = {d.message_id: d for d in out.decisions}
    assert last["m1"].status is Status.SUPPRESSED and last["m1"].rule == "same-topic"
