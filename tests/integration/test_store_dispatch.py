"""Claims, leases and outcomes on real databases (SQLite and PostgreSQL, fresh each test).

What must hold: a due email is claimed by one daemon only; a message is in at most one email
on its way; an email whose daemon died while sending is `unconfirmed`, never planned again.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from cadence.ledger.db import upgrade
from cadence.ledger.ledger import Ledger
from cadence.model import Customer, Decision, Email, Message, Plan, Status
from tests.support.ledger import save_plans

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
M = timedelta(minutes=1)
LEASE = 5 * M


def _email(eid: str, members: tuple[str, ...], at: datetime, cid: str = "c-1") -> Email:
    return Email(eid, cid, at, members, "success", "tip", False)


def _setup(store: Ledger, emails: list[Email], customers: tuple[str, ...] = ("c-1",)) -> None:
    """Customers, one open message per member, and a saved plan placing these emails."""
    store.ingest.upsert_customers(
        [(Customer(c, f"{c}@x.test", c), "d") for c in customers], now=NOW
    )
    ids = sorted({(m, e.customer_id) for e in emails for m in e.members})
    store.ingest.add_messages(
        [(Message(m, c, "success", subject="s", send_after=NOW - M), "d") for m, c in ids], now=NOW
    )
    plans = []
    for c in customers:
        mine = tuple(e for e in emails if e.customer_id == c)
        decisions = tuple(
            Decision(m, Status.SCHEDULED, "r", e.send_at, e.id) for e in mine for m in e.members
        )
        plans.append(Plan(c, NOW - M, mine, decisions, None))
    save_plans(store, plans, "v1")


def _status(store: Ledger, cid: str = "c-1") -> dict[str, str]:
    return {e.id: s for e, s in store.reads.emails_of(cid)}


def _decided(store: Ledger, cid: str = "c-1") -> dict[str, Decision]:
    return {m.id: d for m, d in store.reads.messages_of(cid)}


def _pending(store: Ledger, cid: str = "c-1") -> list[str]:
    (ctx,) = store.planning.load_contexts([cid], NOW, timedelta(days=7))
    return [m.id for m in ctx.pending]


def test_claims_take_due_emails_in_order_once(store: Ledger) -> None:
    _setup(
        store,
        [
            _email("late", ("m3",), NOW + M),
            _email("second", ("m2",), NOW - M),
            _email("first", ("m1",), NOW - 2 * M),
        ],
    )
    (one,) = store.sending.claim_due(NOW, "a", LEASE, 1)
    assert one.email.id == "first" and one.customer.id == "c-1"
    assert [m.id for m in one.members] == ["m1"] and one.attempts == 0
    assert [c.email.id for c in store.sending.claim_due(NOW, "b", LEASE, 10)] == ["second"]
    assert store.sending.claim_due(NOW, "c", LEASE, 10) == []  # nobody claims an email twice
    assert _status(store) == {"first": "claimed", "second": "claimed", "late": "planned"}
    assert _pending(store) == ["m3"]  # in flight: the planner no longer touches them


def test_transactional_mail_is_claimed_before_the_backlog(store: Ledger) -> None:
    receipt = Email("receipt", "c-1", NOW, ("m9",), "billing", None, True)
    _setup(
        store,
        [_email("old", ("m1",), NOW - 3 * M), _email("older", ("m2",), NOW - 4 * M), receipt],
    )
    claimed = store.sending.claim_due(NOW, "a", LEASE, 2)
    # due last, but a receipt does not wait behind proactive mail, whatever the batch size
    assert [c.email.id for c in claimed] == ["receipt", "older"]


def test_mark_sending_needs_the_claim_and_its_lease(store: Ledger) -> None:
    _setup(store, [_email("e1", ("m1",), NOW)])
    store.sending.claim_due(NOW, "a", LEASE, 10)
    assert "e1" not in store.sending.mark_sending_many(["e1"], "b", NOW)  # not the owner
    assert "e1" not in store.sending.mark_sending_many(
        ["e1"], "a", NOW + LEASE + M
    )  # the lease ran out
    assert "e1" in store.sending.mark_sending_many(["e1"], "a", NOW + M)
    assert "e1" not in store.sending.mark_sending_many(["e1"], "a", NOW + M)  # already sending
    assert store.sending.mark_sending_many(["e1", "ghost"], "a") == set()


def test_sent_settles_members_and_last_contact(store: Ledger) -> None:
    _setup(store, [_email("e1", ("m1", "m2"), NOW)])
    store.sending.claim_due(NOW, "a", LEASE, 10)
    assert "e1" in store.sending.mark_sending_many(["e1"], "a")
    store.sending.mark_sent_many([("e1", "prov-1")], NOW + M)
    assert _status(store) == {"e1": "sent"}
    decided = _decided(store)
    assert {d.status for d in decided.values()} == {Status.SENT}
    assert all(d.final and d.email_id == "e1" for d in decided.values())
    assert {m.sent_at for m, _ in store.reads.messages_of("c-1")} == {NOW + M}
    (ctx,) = store.planning.load_contexts(["c-1"], NOW + M, timedelta(days=7))
    assert ctx.last_contact["role:success"] == NOW + M
    assert [(s.id, len(s.members)) for s in ctx.history] == [("e1", 2)]
    assert [h.decision.status for h in store.reads.decision_history("m1")][-1] is Status.SENT


def test_failed_settles_members_with_the_error(store: Ledger) -> None:
    _setup(store, [_email("e1", ("m1",), NOW)])
    store.sending.claim_due(NOW, "a", LEASE, 10)
    store.sending.mark_sending_many(["e1"], "a")
    store.sending.mark_failed("e1", "550 mailbox unavailable", NOW)
    assert _status(store) == {"e1": "failed"}
    d = _decided(store)["m1"]
    assert d.status is Status.FAILED and d.final and "550 mailbox unavailable" in d.reason
    assert store.planning.customers_to_plan(NOW, 10) == ["c-1"]


def test_release_returns_a_claim_but_never_a_sending_email(store: Ledger) -> None:
    _setup(store, [_email("e1", ("m1",), NOW), _email("e2", ("m2",), NOW)])
    store.sending.claim_due(NOW, "a", LEASE, 10)
    save_plans(store, [Plan("c-1", NOW, (), (), None)], "v1")  # clears the dirty mark
    store.sending.release("e1")
    assert store.planning.customers_to_plan(NOW, 10) == ["c-1"]
    assert "e2" in store.sending.mark_sending_many(["e2"], "a")
    store.sending.release("e2")  # too late: it may be on its way
    assert _status(store) == {"e1": "planned", "e2": "sending"}
    assert _pending(store) == ["m1"]
    (again,) = store.sending.claim_due(NOW, "b", LEASE, 10)
    assert again.email.id == "e1"


def test_a_dirty_customers_due_email_waits_for_its_new_plan(store: Ledger) -> None:
    """Something changed since the plan (an unsubscribe, a cancel, new mail): a daemon that
    sends before it has planned everyone again must not send on the old plan."""
    _setup(
        store,
        [_email("e1", ("m1",), NOW), _email("e2", ("m2",), NOW, "c-2")],
        customers=("c-1", "c-2"),
    )
    store.ingest.add_messages(
        [(Message("m9", "c-1", "sales", subject="s", send_after=NOW), "d")], now=NOW
    )
    assert [c.email.id for c in store.sending.claim_due(NOW, "a", LEASE, 10)] == ["e2"]
    assert store.planning.customers_to_plan(NOW, 10) == ["c-1"]
    save_plans(store, [Plan("c-1", NOW, (_email("e1", ("m1",), NOW),), (), None)], "v1")
    assert [c.email.id for c in store.sending.claim_due(NOW, "a", LEASE, 10)] == ["e1"]


def test_an_email_just_due_goes_on_its_plan_a_late_one_waits_for_a_new_plan(
    store: Ledger,
) -> None:
    """The planner wakes each customer at its emails' times; a daemon busy with a burst may
    send an email whose time has just come before that new plan, never a late one."""
    _setup(
        store,
        [_email("now", ("m1",), NOW), _email("late", ("m2",), NOW - 2 * M, "c-2")],
        customers=("c-1", "c-2"),
    )
    plans = [
        Plan("c-1", NOW - M, (_email("now", ("m1",), NOW),), (), NOW),
        Plan("c-2", NOW - 3 * M, (_email("late", ("m2",), NOW - 2 * M, "c-2"),), (), NOW - 2 * M),
    ]
    save_plans(store, plans, "v1")
    assert sorted(store.planning.customers_to_plan(NOW, 10)) == [
        "c-1",
        "c-2",
    ]  # both due a new plan
    assert [c.email.id for c in store.sending.claim_due(NOW, "a", LEASE, 10)] == ["now"]


def test_customers_with_unplanned_transactional_mail_are_planned_first(store: Ledger) -> None:
    customers = tuple(f"c-{i}" for i in range(5))
    _setup(store, [], customers)
    waiting = store.planning.unplanned_transactional_probe()
    assert not waiting()
    store.ingest.add_messages(
        [(Message(f"s{i}", f"c-{i}", "sales", subject="s", send_after=NOW), "d") for i in range(4)]
        + [(Message("r1", "c-4", "billing", subject="Receipt", transactional=True), "d")],
        now=NOW,
    )
    assert waiting()
    assert store.planning.customers_to_plan(NOW, 2)[0] == "c-4"
    assert sorted(store.planning.customers_to_plan(NOW, 10)) == list(customers)
    save_plans(
        store,
        [Plan("c-4", NOW, (), (Decision("r1", Status.SCHEDULED, "r", rules_version="v1"),), None)],
        "v1",
    )
    assert not waiting()  # planned: no longer waiting
    assert "c-4" not in store.planning.customers_to_plan(NOW, 10)
    waiting.close()


def test_the_daemons_look_for_receipts_sees_what_another_process_writes(db_url: str) -> None:
    """The daemon's probe (its own connection, and on SQLite a look at the files first)
    finds a receipt another connection wrote, looks after looks that found nothing."""
    upgrade(db_url)
    daemon, other = Ledger(db_url), Ledger(db_url)
    probe = daemon.planning.unplanned_transactional_probe()
    try:
        _setup(other, [], ("c-1",))
        assert not probe() and not probe()  # nothing, twice (the second from the files)
        other.ingest.add_messages(
            [(Message("r1", "c-1", "billing", subject="Receipt", transactional=True), "d")],
            now=NOW,
        )
        assert probe() and probe()
        decided = Decision("r1", Status.SCHEDULED, "r", rules_version="v1")
        save_plans(other, [Plan("c-1", NOW, (), (decided,), None)], "v1")
        assert not probe()
        time.sleep(1.1)  # the files stand still long enough to be trusted
        assert not probe() and not probe()
        other.ingest.add_messages(
            [(Message("r2", "c-1", "billing", subject="Receipt", transactional=True), "d")],
            now=NOW,
        )
        assert probe()
    finally:
        probe.close()
        daemon.close()
        other.close()


def test_recover_leases_releases_claims_and_never_resends(store: Ledger) -> None:
    _setup(
        store,
        [
            _email("idle", ("m1",), NOW),
            _email("lost", ("m2",), NOW),
            _email("fresh", ("m3",), NOW + 2 * M),
        ],
    )
    store.sending.claim_due(NOW, "dead", LEASE, 2)
    assert "lost" in store.sending.mark_sending_many(["lost"], "dead")
    store.sending.claim_due(NOW + 3 * M, "alive", LEASE, 10)  # "fresh", lease until NOW + 8m
    assert store.sending.recover_leases(NOW + LEASE) == (0, 0)  # the leases run until, not through
    assert store.sending.recover_leases(NOW + 6 * M) == (1, 1)
    assert _status(store) == {"idle": "planned", "lost": "unconfirmed", "fresh": "claimed"}
    d = _decided(store)["m2"]
    assert d.status is Status.UNCONFIRMED and d.final and "daemon stopped" in d.reason
    assert [e.id for e, _ in store.sending.unconfirmed_emails()] == ["lost"]
    # the dead daemon's email is planned again, the one it was sending is not
    assert sorted(_pending(store)) == ["m1"]
    # six minutes late: it waits for its customer's new plan (here, the same email again)
    assert store.sending.claim_due(NOW + 6 * M, "b", LEASE, 10) == []
    assert store.planning.customers_to_plan(NOW + 6 * M, 10) == ["c-1"]
    replanned = Plan(
        "c-1",
        NOW + 6 * M,
        (_email("idle", ("m1",), NOW + 6 * M),),
        (Decision("m1", Status.SCHEDULED, "r", NOW + 6 * M, "idle"),),
        None,
    )
    save_plans(store, [replanned], "v1")
    assert [c.email.id for c in store.sending.claim_due(NOW + 6 * M, "b", LEASE, 10)] == ["idle"]
    assert store.sending.recover_leases(NOW + 6 * M) == (0, 0)


def test_an_email_whose_message_is_already_on_its_way_is_dropped(store: Ledger) -> None:
    # two emails share m1 (an older plan's email, say): only the first may go
    _setup(store, [_email("a", ("m1",), NOW - M), _email("b", ("m1", "m2"), NOW)])
    claimed = store.sending.claim_due(NOW, "d", LEASE, 10)
    assert [c.email.id for c in claimed] == ["a"]
    assert _status(store) == {"a": "claimed"}
    assert _pending(store) == ["m2"]  # given back, and its customer planned again
    assert store.planning.customers_to_plan(NOW, 10) == ["c-1"]


def test_concurrent_claims_are_disjoint(db_url: str) -> None:
    upgrade(db_url)
    stores = [Ledger(db_url) for _ in range(3)]
    try:
        customers = tuple(f"c-{i}" for i in range(12))
        emails = [_email(f"e{i}", (f"m{i}",), NOW, f"c-{i % 12}") for i in range(36)]
        # and some emails sharing a message with another: each message may go once
        emails += [_email(f"x{i}", (f"m{i}", f"n{i}"), NOW, f"c-{i % 12}") for i in range(12)]
        _setup(stores[0], emails, customers)
        got: list[list[str]] = [[] for _ in stores]
        start = threading.Barrier(len(stores))

        def worker(k: int) -> None:
            start.wait()
            while batch := stores[k].sending.claim_due(NOW, f"w{k}", LEASE, 2):
                got[k] += [m.id for c in batch for m in c.members]

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        members = [m for g in got for m in g]
        assert len(members) == len(set(members))  # no message in two claimed emails
        assert {f"m{i}" for i in range(36)} <= set(members)
    finally:
        for s in stores:
            s.close()
