"""The store on real databases (SQLite and PostgreSQL, a fresh one per test)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from cadence.engine import plan_customer
from cadence.model import Customer, Event, Message, MessageKind, Status
from cadence.rules.model import Rules
from tests.support.ledger import save_plans

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _customers(store, *ids: str, account: str | None = "acme") -> None:  # type: ignore[no-untyped-def]
    store.ingest.upsert_customers(
        [
            (Customer(i, f"{i}@acme.test", i, "Europe/Berlin", account, {"plan": "pro"}), f"d-{i}")
            for i in ids
        ],
        now=NOW,
    )


def _msg(mid: str, cid: str = "c-1", after: timedelta = H, **kw) -> Message:  # type: ignore[no-untyped-def]
    return Message(
        mid,
        cid,
        kw.pop("role", "success"),
        subject="s",
        body_text="b",
        send_after=NOW + after,
        **kw,
    )


def _plan(store, rules: Rules, now: datetime = NOW) -> None:  # type: ignore[no-untyped-def]
    ids = store.planning.customers_to_plan(now, 100)
    ctxs = store.planning.load_contexts(ids, now, rules.lookback())
    save_plans(store, [plan_customer(c, rules, now) for c in ctxs], rules.version)


def test_round_trip_with_aware_times(store) -> None:  # type: ignore[no-untyped-def]
    _customers(store, "c-1")
    store.ingest.add_messages([(_msg("m1", category="tip", data={"x": 1}), "d1")], now=NOW)
    ((m, d),) = store.reads.messages_of("c-1")
    assert m.send_after == NOW + H and m.send_after.tzinfo is not None
    assert m.data == {"x": 1} and d.status is Status.SCHEDULED
    assert store.ingest.message_digests(["m1", "nope"]) == {"m1": "d1"}


def test_attribute_names_are_every_key_customers_and_events_carry(store) -> None:  # type: ignore[no-untyped-def]
    assert store.reads.attribute_names() == (set(), 0)
    _customers(store, "c-1", "c-2")  # {"plan": "pro"} each
    store.ingest.upsert_customers(
        [
            (
                Customer("c-3", "c-3@acme.test", "c-3", "UTC", None, {"health": "red", "seats": 4}),
                "d",
            )
        ],
        now=NOW,
    )
    # an event's attributes count before it is applied: the customers will have them then
    store.ingest.add_events(
        [(Event("e1", "c-1", "ticket_opened", NOW + H, {}, {"open_tickets": 1}), "x")], now=NOW
    )
    assert store.reads.attribute_names() == ({"plan", "health", "seats", "open_tickets"}, 3)


def test_events_apply_at_their_time_in_order(store) -> None:  # type: ignore[no-untyped-def]
    _customers(store, "c-1")
    store.ingest.add_events(
        [
            (Event("e2", "c-1", "resubscribed", NOW + H, {"categories": ["announcement"]}), "x"),
            (
                Event(
                    "e1",
                    "c-1",
                    "unsubscribed",
                    NOW,
                    {"categories": ["announcement", "tip"]},
                    {"open_tickets": 1},
                ),
                "y",
            ),
            (Event("e3", "c-1", "bounced", NOW + 2 * H, {"kind": "hard"}), "z"),
            (Event("e0", "c-1", "ticket_resolved", NOW - H, {}, {"open_tickets": 0}), "w"),
        ],
        now=NOW,
    )
    assert [e.id for e in store.ingest.unprocessed_events(10, until=NOW)] == ["e0", "e1"]
    store.ingest.apply_events(store.ingest.unprocessed_events(10, until=NOW))
    c = store.reads.customer("c-1")
    assert c.reach.unsubscribed_categories == {"announcement", "tip"}
    assert c.attributes["open_tickets"] == 1  # the later event wins, whatever the order given
    store.ingest.apply_events(store.ingest.unprocessed_events(10))
    c = store.reads.customer("c-1")
    assert c.reach.unsubscribed_categories == {"tip"} and c.reach.hard_bounced


def test_save_plans_writes_history_only_when_the_verdict_changes(store) -> None:  # type: ignore[no-untyped-def]
    _customers(store, "c-1")
    store.ingest.add_messages([(_msg("m1"), "d1"), (_msg("m2", after=2 * H), "d2")], now=NOW)
    rules = Rules(version="v1")
    _plan(store, rules)
    store.planning.mark_all_dirty()
    _plan(store, rules)  # the same verdicts: no new history
    assert len(store.reads.decision_history("m1")) == 1
    (_email, status), *_ = store.reads.emails_of("c-1")
    assert status == "planned"
    store.ingest.cancel_messages(["m2"], "kim", NOW)
    _plan(store, rules)
    hist = store.reads.decision_history("m2")
    assert [h.decision.status for h in hist] == [Status.SCHEDULED, Status.CANCELLED]
    assert "kim" in hist[-1].decision.reason
    assert [e.members for e, _ in store.reads.emails_of("c-1")] == [("m1",)]


def test_a_re_plan_keeps_an_emails_row_and_changes_it_where_the_plan_did(store) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from cadence.ledger.tables import emails

    def rows() -> dict[str, tuple[object, ...]]:
        with store.engine.connect() as conn:
            return {
                r.id: (r.send_at, r.created_at, r.updated_at, r.attempts)
                for r in conn.execute(select(emails))
            }

    _customers(store, "c-1")
    store.ingest.add_messages([(_msg("m1"), "d1"), (_msg("m2", after=2 * H), "d2")], now=NOW)
    rules = Rules(version="v1")
    _plan(store, rules)
    first = rows()
    assert len(first) == 2
    store.planning.mark_all_dirty()
    _plan(store, rules, NOW + timedelta(minutes=5))  # the same plan: not a row written
    assert rows() == first
    store.ingest.cancel_messages(["m2"], "kim", NOW)  # m2's email goes, m1's stays as it was
    _plan(store, rules, NOW + timedelta(minutes=10))
    ((m1_email, kept),) = rows().items()
    assert kept == first[m1_email]
    with store.engine.begin() as conn:  # as a temporary failure leaves it: one attempt made
        conn.execute(emails.update().values(attempts=1))
    store.planning.mark_all_dirty()
    _plan(store, rules, NOW + 3 * H)  # now past its time: the same email, due now
    ((same, (send_at, created, updated, attempts)),) = rows().items()
    assert same == m1_email and attempts == 1
    assert send_at == NOW + 3 * H and created == first[m1_email][1] and updated == NOW + 3 * H


def test_claim_lease_and_recovery(store) -> None:  # type: ignore[no-untyped-def]
    _customers(store, "c-1")
    store.ingest.add_messages(
        [
            (_msg("m1", after=timedelta(0)), "d1"),
            (_msg("m2", role="support", transactional=True), "d2"),
        ],
        now=NOW,
    )
    _plan(store, Rules(version="v1"))
    claimed = store.sending.claim_due(NOW, "a", timedelta(minutes=5), 10)
    assert [c.email.members for c in claimed] == [("m1",)]
    assert (
        store.sending.claim_due(NOW, "b", timedelta(minutes=5), 10) == []
    )  # nobody claims it twice
    assert claimed[0].email.id in store.sending.mark_sending_many([claimed[0].email.id], "a")
    # the daemon dies while sending: after the lease it is unconfirmed, never planned again
    assert store.sending.recover_leases(NOW + timedelta(minutes=6)) == (0, 1)
    ((_m, d),) = [x for x in store.reads.messages_of("c-1") if x[0].id == "m1"]
    assert d.status is Status.UNCONFIRMED
    _plan(store, Rules(version="v1"), NOW + timedelta(minutes=7))
    assert store.sending.claim_due(NOW + timedelta(minutes=7), "a", timedelta(minutes=5), 10) == []
    assert [e.id for e, _ in store.sending.unconfirmed_emails()] == [claimed[0].email.id]
    # a provider's drop that comes after the operator settled it changes nothing
    settled_first = store.sending.settle_emails(
        [claimed[0].email.id], sent=True, by="operator", at=NOW + timedelta(minutes=8)
    )
    assert settled_first == [claimed[0].email.id]
    assert not store.sending.fail_unconfirmed(claimed[0].email.id, "dropped", NOW)
    assert store.sending.unconfirmed_emails() == []
    ((_m, d),) = [x for x in store.reads.messages_of("c-1") if x[0].id == "m1"]
    assert d.status is Status.SENT and "settled by operator" in d.reason


def test_expired_claim_goes_back_to_planned(store) -> None:  # type: ignore[no-untyped-def]
    _customers(store, "c-1")
    store.ingest.add_messages([(_msg("m1", after=timedelta(0)), "d1")], now=NOW)
    _plan(store, Rules(version="v1"))
    (c,) = store.sending.claim_due(NOW, "a", timedelta(minutes=5), 10)
    later = NOW + timedelta(minutes=6)
    assert store.sending.recover_leases(later) == (1, 0)
    # six minutes late: its customer is planned again before it goes (the window may have
    # closed); the same message goes in a new email at once
    assert store.sending.claim_due(later, "b", timedelta(minutes=5), 10) == []
    _plan(store, Rules(version="v1"), later)
    (again,) = store.sending.claim_due(later, "b", timedelta(minutes=5), 10)
    assert again.members == c.members and again.email.send_at == later
    store.sending.mark_sending_many([again.email.id], "b")
    store.sending.mark_sent_many([(again.email.id, "prov-1")], later)
    ((m, d),) = store.reads.messages_of("c-1")
    assert d.status is Status.SENT and m.sent_at == later


def test_contexts_hold_history_and_the_account(store) -> None:  # type: ignore[no-untyped-def]
    _customers(store, "c-1", "c-2")
    store.ingest.add_messages(
        [
            (Message("r1", "c-2", "sales", kind=MessageKind.RECORDED, sent_at=NOW - H), "r"),
            (
                Message(
                    "r0",
                    "c-1",
                    "success",
                    kind=MessageKind.RECORDED,
                    sent_at=NOW - 2 * H,
                    human=True,
                ),
                "q",
            ),
            (_msg("m1"), "d1"),
        ],
        now=NOW,
    )
    (ctx,) = store.planning.load_contexts(["c-1"], NOW, timedelta(days=7))
    assert [m.id for m in ctx.pending] == ["m1"]
    assert [s.id for s in ctx.history] == ["r0"]
    assert [s.id for s in ctx.account_history] == ["r1"]
    assert ctx.last_contact["human"] == NOW - 2 * H


def test_playbook_messages_insert_once(store) -> None:  # type: ignore[no-untyped-def]
    _customers(store, "c-1")
    m = _msg("pb:x:ev-1", playbook="x", created_at=NOW)
    assert store.ingest.add_playbook_messages([m, m], now=NOW) == 1
    assert store.ingest.add_playbook_messages([m], now=NOW) == 0


def test_concurrent_claims_never_share_an_email(pg_url: str) -> None:
    from cadence.ledger.db import upgrade
    from cadence.ledger.ledger import Ledger

    upgrade(pg_url)
    stores = [Ledger(pg_url) for _ in range(3)]
    try:
        _customers(stores[0], *(f"c-{i}" for i in range(30)), account=None)
        stores[0].ingest.add_messages(
            [(_msg(f"m{i}", f"c-{i}", after=timedelta(0)), f"d{i}") for i in range(30)], now=NOW
        )
        _plan(stores[0], Rules(version="v1"))
        got: list[list[str]] = [[] for _ in stores]

        def worker(k: int) -> None:
            while batch := stores[k].sending.claim_due(NOW, f"w{k}", timedelta(minutes=5), 3):
                got[k] += [c.email.id for c in batch]

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        everything = [i for g in got for i in g]
        assert len(everything) == 30 and len(set(everything)) == 30
    finally:
        for s in stores:
            s.close()
