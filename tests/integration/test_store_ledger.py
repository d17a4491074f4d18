"""The store's ledger side on real databases (SQLite and PostgreSQL, a fresh one per test):
what goes in comes back as the same values, what events and cancels do to a customer, what a
plan's context holds. No mocks: every assertion reads the database back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from cadence.ledger.db import make_engine, schema_state, upgrade
from cadence.ledger.ledger import Ledger
from cadence.model import (
    Customer,
    CustomerContext,
    Decision,
    Email,
    Event,
    Message,
    MessageKind,
    Plan,
    Sender,
    Status,
)
from tests.support.ledger import save_plans

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def _customer(cid: str, account: str | None = "acme", **kw: object) -> Customer:
    return Customer(cid, f"{cid}@acme.test", cid.upper(), "Europe/Berlin", account, **kw)  # type: ignore[arg-type]


def _msg(mid: str, cid: str = "c-1", after: timedelta = H, **kw: object) -> Message:
    return Message(mid, cid, kw.pop("role", "success"), send_after=NOW + after, **kw)  # type: ignore[arg-type]


def _recorded(
    mid: str, cid: str, at: datetime, role: str = "sales", human: bool = False
) -> Message:
    return Message(mid, cid, role, kind=MessageKind.RECORDED, sent_at=at, human=human)


def _dirty(store: Ledger) -> set[str]:
    return set(store.planning.customers_to_plan(NOW - 365 * D, 1000))


def _settle(store: Ledger) -> None:
    """Plan nothing, only clear every dirty mark (an empty plan per customer)."""
    save_plans(store, [Plan(c, NOW, (), (), None) for c in _dirty(store)], "v0")


def test_customer_round_trip_keeps_every_field_and_state(store: Ledger) -> None:
    created = datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    store.ingest.upsert_customers(
        [(_customer("c-1", attributes={"plan": "pro", "seats": 3}, created_at=created), "d1")],
        now=NOW,
    )
    c = store.reads.customer("c-1")
    assert c == _customer("c-1", attributes={"plan": "pro", "seats": 3}, created_at=created)
    assert c.created_at is not None and c.created_at.tzinfo is not None
    assert store.reads.customer("nobody") is None
    assert store.ingest.customer_digests(["c-1", "nobody"]) == {"c-1": "d1"}
    # state the customer's own actions set survives a re-import, which marks it dirty again
    store.ingest.add_events(
        [(Event("e1", "c-1", "unsubscribed", NOW, {"categories": ["tip"]}), "x")], now=NOW
    )
    store.ingest.apply_events(store.ingest.unprocessed_events(10))
    store.ingest.add_messages([(_recorded("r1", "c-1", NOW - H), "r")], now=NOW)
    _settle(store)
    store.ingest.upsert_customers([(_customer("c-1", attributes={"plan": "team"}), "d2")], now=NOW)
    c = store.reads.customer("c-1")
    assert c.reach.unsubscribed_categories == {"tip"}
    assert c.attributes == {"plan": "team", "seats": 3}  # the file's keys win, others stay
    assert store.ingest.customer_digests(["c-1"]) == {"c-1": "d2"}
    (ctx,) = store.planning.load_contexts(["c-1"], NOW, 7 * D)
    assert ctx.last_contact["any"] == NOW - H
    assert _dirty(store) == {"c-1"}


def test_message_round_trip_with_aware_utc_times(store: Ledger) -> None:
    store.ingest.upsert_customers([(_customer("c-1"), "d")], now=NOW)
    berlin = datetime(2026, 11, 23, 17, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    m = Message(
        "m1",
        "c-1",
        "support",
        category="tip",
        topic="t",
        template="tpl",
        data={"n": 1, "deep": {"list": [1, "a"]}},
        subject="s",
        body_text="b",
        body_html="<p>b</p>",
        sender=Sender("kim@us.test", "Kim"),
        human=True,
        transactional=False,
        priority=3,
        send_after=berlin,
        expires_at=NOW + D,
        playbook="pb",
        origin="ev-1",
        to="owner",
        created_at=NOW,
    )
    store.ingest.add_messages([(m, "dm")], now=NOW)
    ((back, d),) = store.reads.messages_of("c-1")
    assert back == m
    assert back.send_after is not None and back.send_after.utcoffset() == timedelta(0)
    assert d == Decision("m1", Status.SCHEDULED, "not planned yet")
    assert store.ingest.message_digests(["m1", "m2"]) == {"m1": "dm"}


def test_naive_times_are_refused(store: Ledger) -> None:
    store.ingest.upsert_customers([(_customer("c-1"), "d")], now=NOW)
    naive = Message("m1", "c-1", "success", send_after=datetime(2026, 1, 1))
    with pytest.raises(Exception, match="naive datetime"):
        store.ingest.add_messages([(naive, "d")], now=NOW)
    assert store.reads.messages_of("c-1") == []  # nothing half-written


def test_recorded_messages_are_final_and_set_last_contact(store: Ledger) -> None:
    store.ingest.upsert_customers([(_customer("c-1"), "d")], now=NOW)
    store.ingest.add_messages(
        [
            (_recorded("r1", "c-1", NOW - 3 * H, role="sales", human=True), "a"),
            (_recorded("r2", "c-1", NOW - H, role="support"), "b"),
        ],
        now=NOW,
    )
    decided = {m.id: d for m, d in store.reads.messages_of("c-1")}
    assert {d.status for d in decided.values()} == {Status.RECORDED}
    assert all(d.final for d in decided.values())
    (ctx,) = store.planning.load_contexts(["c-1"], NOW, 7 * D)
    assert ctx.pending == ()
    assert ctx.last_contact == {
        "any": NOW - H,
        "human": NOW - 3 * H,
        "role:sales": NOW - 3 * H,
        "role:sales:human": NOW - 3 * H,
        "role:support": NOW - H,
        "channel:email": NOW - H,
    }


def test_reachability_events_take_effect_in_time_order(store: Ledger) -> None:
    store.ingest.upsert_customers([(_customer("c-1"), "d"), (_customer("c-2"), "d")], now=NOW)
    store.ingest.add_events(
        [
            (Event("e3", "c-1", "resubscribed", NOW + 2 * H), "x"),
            (Event("e1", "c-1", "unsubscribed", NOW), "x"),
            (Event("e2", "c-1", "unsubscribed", NOW + H, {"categories": ["tip", "news"]}), "x"),
            (Event("e4", "c-2", "bounced", NOW, {"kind": "soft"}), "x"),
            (Event("e5", "c-2", "bounced", NOW + H, {"kind": "soft"}), "x"),
            (Event("e6", "c-2", "spam_reported", NOW + H), "x"),
        ],
        now=NOW,
    )
    assert store.ingest.event_digests(["e1", "e9"]) == {"e1": "x"}
    _settle(store)
    store.ingest.apply_events(store.ingest.unprocessed_events(10, until=NOW + H))
    one, two = store.reads.customer("c-1").reach, store.reads.customer("c-2").reach
    assert one.unsubscribed_all and one.unsubscribed_categories == {"tip", "news"}
    assert two.soft_bounces == 2 and two.spam_reported and not two.hard_bounced
    assert _dirty(store) == {"c-1", "c-2"}
    store.ingest.apply_events(store.ingest.unprocessed_events(10))
    one = store.reads.customer("c-1").reach
    assert not one.unsubscribed_all and one.unsubscribed_categories == frozenset()
    # an event is applied once, however often it is handed over
    store.ingest.apply_events([Event("e4", "c-2", "bounced", NOW, {"kind": "soft"})])
    assert store.reads.customer("c-2").reach.soft_bounces == 2


def test_opens_clicks_and_replies_are_kept_as_engagement_rules_can_read(store: Ledger) -> None:
    from cadence.views import customer_view

    store.ingest.upsert_customers([(_customer("c-1"), "d")], now=NOW)
    store.ingest.add_events(
        [
            (Event("o1", "c-1", "opened", NOW - 3 * H), "x"),
            (Event("o2", "c-1", "opened", NOW - H, {"machine_open": True}), "x"),  # a client
            (Event("o3", "c-1", "opened", NOW - 2 * H), "x"),
            (Event("k1", "c-1", "clicked", NOW - 2 * H, {"url": "https://x.test"}), "x"),
            (Event("r1", "c-1", "replied", NOW - H), "x"),
        ],
        now=NOW,
    )
    store.ingest.apply_events(store.ingest.unprocessed_events(10, until=NOW))
    customer = store.reads.customer("c-1")
    assert customer is not None
    e = customer.engagement
    assert (e.opens, e.clicks, e.replies) == (2, 1, 1)
    assert (e.last_open_at, e.last_click_at, e.last_reply_at) == (NOW - 2 * H, NOW - 2 * H, NOW - H)
    seen = customer_view(customer)
    assert seen.opens == 2 and seen.last_reply_at == NOW - H  # type: ignore[attr-defined]


def test_an_older_event_does_not_overwrite_newer_attributes(store: Ledger) -> None:
    store.ingest.upsert_customers([(_customer("c-1", attributes={"plan": "pro"}), "d")], now=NOW)
    store.ingest.add_events(
        [(Event("new", "c-1", "ticket", NOW, {}, {"open_tickets": 2}), "x")], now=NOW
    )
    store.ingest.apply_events(store.ingest.unprocessed_events(10))
    store.ingest.add_events(
        [(Event("old", "c-1", "ticket", NOW - H, {}, {"open_tickets": 0, "nps": 9}), "x")], now=NOW
    )
    store.ingest.apply_events(store.ingest.unprocessed_events(10))
    assert store.reads.customer("c-1").attributes == {"plan": "pro", "open_tickets": 2}


def test_cancel_cancels_what_it_can_and_says_why_not(store: Ledger) -> None:
    store.ingest.upsert_customers([(_customer("c-1"), "d")], now=NOW)
    store.ingest.add_messages(
        [
            (_msg("open"), "a"),
            (_msg("flying", after=-H), "b"),
            (_recorded("rec", "c-1", NOW - H), "c"),
        ],
        now=NOW,
    )
    save_plans(
        store,
        [
            Plan(
                "c-1",
                NOW,
                (Email("e-fly", "c-1", NOW - H, ("flying",), "success", None, False),),
                (
                    Decision("flying", Status.SCHEDULED, "r", NOW - H, "e-fly"),
                    Decision("open", Status.SCHEDULED, "r", NOW + H),
                ),
                None,
            )
        ],
        "v1",
    )
    assert len(store.sending.claim_due(NOW, "d", timedelta(minutes=5), 10)) == 1
    _settle(store)
    refused = store.ingest.cancel_messages(["open", "flying", "rec", "ghost"], "kim", NOW)
    assert set(refused) == {"flying", "rec", "ghost"}
    assert "being sent" in refused["flying"] and "recorded" in refused["rec"]
    decided = {m.id: d for m, d in store.reads.messages_of("c-1")}
    assert decided["open"].status is Status.CANCELLED and decided["open"].final
    assert decided["open"].reason == "cancelled by kim"
    assert decided["flying"].status is Status.SCHEDULED
    hist = store.reads.decision_history("open")
    assert [(h.decided_at, h.decision.status) for h in hist][-1] == (NOW, Status.CANCELLED)
    assert _dirty(store) == {"c-1"}
    assert "already cancelled" in store.ingest.cancel_messages(["open"], "kim", NOW)["open"]


def test_save_plans_keeps_history_of_changes_only(store: Ledger) -> None:
    store.ingest.upsert_customers([(_customer("c-1"), "d")], now=NOW)
    store.ingest.add_messages([(_msg("m1"), "a")], now=NOW)
    first = Decision("m1", Status.SCHEDULED, "goes at 16:00", NOW + H, "e1", rules_version="v1")
    email = Email("e1", "c-1", NOW + H, ("m1",), "success", None, False)
    save_plans(store, [Plan("c-1", NOW, (email,), (first,), NOW + H)], "v1")
    assert store.planning.customers_to_plan(NOW, 10) == []
    assert store.planning.customers_to_plan(NOW + H, 10) == ["c-1"]  # its next moment has come
    save_plans(store, [Plan("c-1", NOW + D, (email,), (first,), NOW + H)], "v1")
    assert [h.decision for h in store.reads.decision_history("m1")] == [first]
    later = Decision("m1", Status.DEFERRED, "a limit", NOW + 2 * H, "e2", rule="r", counted=("x",))
    moved = Email("e2", "c-1", NOW + 2 * H, ("m1",), "success", None, False)
    save_plans(store, [Plan("c-1", NOW + D, (moved,), (later,), None)], "v1")
    assert [h.decision.status for h in store.reads.decision_history("m1")] == [
        Status.SCHEDULED,
        Status.DEFERRED,
    ]
    assert store.reads.decision_history("m1")[-1].decided_at == NOW + D
    ((_m, d),) = store.reads.messages_of("c-1")
    assert d == later
    assert [(e.id, s) for e, s in store.reads.emails_of("c-1")] == [("e2", "planned")]


def test_contexts_hold_history_the_account_and_previous_decisions(store: Ledger) -> None:
    store.ingest.upsert_customers(
        [(_customer("c-1"), "d"), (_customer("c-2"), "d"), (_customer("x", account="other"), "d")],
        now=NOW,
    )
    store.ingest.add_messages(
        [
            (_msg("sent1", after=-2 * D), "a"),
            (_msg("open1"), "a"),
            (_msg("peer-sent", "c-2", after=-H), "a"),
            (_msg("peer-planned", "c-2", after=H), "a"),
            (_msg("stranger", "x", after=-H), "a"),
            (_recorded("old", "c-1", NOW - 30 * D), "a"),
            (_recorded("peer-rec", "c-2", NOW - D), "a"),
        ],
        now=NOW,
    )

    def plan(cid: str, mid: str, at: datetime, eid: str) -> Plan:
        e = Email(eid, cid, at, (mid,), "success", None, False)
        return Plan(cid, NOW - 3 * D, (e,), (Decision(mid, Status.SCHEDULED, "r", at, eid),), None)

    save_plans(
        store,
        [
            plan("c-1", "sent1", NOW - 2 * D, "e-sent1"),
            plan("c-2", "peer-sent", NOW - H, "e-peer-sent"),
            plan("x", "stranger", NOW - H, "e-stranger"),
        ],
        "v1",
    )
    for c in store.sending.claim_due(NOW, "d", timedelta(minutes=5), 10):
        assert c.email.id in store.sending.mark_sending_many([c.email.id], "d", NOW)
        store.sending.mark_sent_many([(c.email.id, "p")], c.email.send_at)
    save_plans(store, [plan("c-2", "peer-planned", NOW + H, "e-peer-planned")], "v1")
    save_plans(store, [plan("c-1", "open1", NOW + H, "e-open1")], "v1")

    (ctx,) = store.planning.load_contexts(["c-1"], NOW, 7 * D)
    assert ctx.customer.id == "c-1"
    assert [m.id for m in ctx.pending] == ["open1"]
    assert ctx.previous["open1"].email_id == "e-open1"
    assert [(s.id, s.at, [m.id for m in s.members]) for s in ctx.history] == [
        ("e-sent1", NOW - 2 * D, ["sent1"])
    ]
    # what the account's other customers were sent; what is planned for them is planned
    # again with this customer (the customers of an account are planned together)
    peers = {s.id: s for s in ctx.account_history}
    assert set(peers) == {"peer-rec", "e-peer-sent"}
    assert peers["peer-rec"].members[0].kind is MessageKind.RECORDED
    assert ctx.last_contact["any"] == NOW - 2 * D
    # a batch reads several customers at once, each with its own slice
    both = {c.customer.id: c for c in store.planning.load_contexts(["c-1", "c-2", "x"], NOW, 7 * D)}
    assert [m.id for m in both["c-2"].pending] == ["peer-planned"]
    assert {s.id for s in both["c-2"].account_history} == {"e-sent1"}
    assert both["x"].account_history == ()


def test_customers_to_plan_and_mark_all_dirty(store: Ledger) -> None:
    store.ingest.upsert_customers([(_customer(f"c-{i}"), "d") for i in range(3)], now=NOW)
    assert _dirty(store) == {"c-0", "c-1", "c-2"}
    save_plans(store, [Plan(f"c-{i}", NOW, (), (), NOW + i * H) for i in range(3)], "v1")
    assert store.planning.customers_to_plan(NOW + H, 10) == ["c-0", "c-1"]
    assert store.planning.customers_to_plan(NOW + H, 1) == ["c-0"]
    store.planning.mark_all_dirty()
    assert set(store.planning.customers_to_plan(NOW - D, 10)) == {"c-0", "c-1", "c-2"}


def test_meta_values(store: Ledger) -> None:
    assert store.reads.get_meta("unsubscribe_secret") is None
    store.reads.set_meta("unsubscribe_secret", "s1")
    store.reads.set_meta("unsubscribe_secret", "s2")
    assert store.reads.get_meta("unsubscribe_secret") == "s2"


def test_schema_state_empty_current_outdated(db_url: str) -> None:
    assert schema_state(db_url) == "empty"
    upgrade(db_url)
    assert schema_state(db_url) == "current"
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    finally:
        engine.dispose()
    assert schema_state(db_url) == "outdated"


def test_a_memo_reads_what_a_ledger_without_one_reads_as_rows_change(db_url: str) -> None:
    """A ledger that keeps converted rows (`Ledger(memo=True)`: a scratch copy, the demo's)
    gives the same contexts as one that converts every read, after each change to the rows
    it keeps (a customer's attributes and contact times, an email going planned -> sent, a
    message settled), and shares the values of rows that did not change."""
    upgrade(db_url)
    plain, kept = Ledger(db_url), Ledger(db_url, memo=True)
    try:
        plain.ingest.upsert_customers(
            [(_customer("c-1", attributes={"plan": "pro"}), "d"), (_customer("c-2"), "d")],
            now=NOW,
        )
        plain.ingest.add_messages(
            [(_msg("m1", after=-H), "a"), (_msg("m2", after=H), "a"), (_msg("p1", "c-2"), "a")],
            now=NOW,
        )

        def same() -> dict[str, CustomerContext]:
            """Both ledgers' contexts, equal; c-1's."""
            ids = ["c-1", "c-2"]
            read = kept.planning.load_contexts(ids, NOW, 7 * D)
            assert read == plain.planning.load_contexts(ids, NOW, 7 * D)
            return {c.customer.id: c for c in read}

        first = same()
        assert same()["c-1"].customer is first["c-1"].customer  # nothing changed: the value is kept
        plain.ingest.upsert_customers(
            [(_customer("c-1", attributes={"plan": "team"}), "e")], now=NOW
        )
        assert same()["c-1"].customer.attributes["plan"] == "team"

        def plan(mid: str, at: datetime, eid: str) -> Plan:
            e = Email(eid, "c-1", at, (mid,), "success", None, False)
            return Plan("c-1", NOW, (e,), (Decision(mid, Status.SCHEDULED, "r", at, eid),), None)

        save_plans(plain, [plan("m1", NOW - H, "e-1")], "v1")
        assert [s.id for s in same()["c-1"].history] == []
        for c in plain.sending.claim_due(NOW, "d", timedelta(minutes=5), 10):
            assert c.email.id in plain.sending.mark_sending_many([c.email.id], "d", NOW)
            assert [s.id for s in same()["c-1"].history] == ["e-1"]  # sending counts already
            plain.sending.mark_sent_many([(c.email.id, "p")], NOW)
        ctx = same()["c-1"]
        assert [(s.id, [m.id for m in s.members]) for s in ctx.history] == [("e-1", ["m1"])]
        assert ctx.history[0].members[0].sent_at == NOW  # the member as settled, not as kept
        assert ctx.last_contact["any"] == NOW
    finally:
        plain.close()
        kept.close()


def test_a_sweep_pages_through_the_reachable_customers_only(store: Ledger) -> None:
    """`reachable_customer_ids`: in id order, a page at a time, without the customers who
    hard-bounced, reported spam or unsubscribed from everything (a category alone leaves a
    customer reachable)."""
    store.ingest.upsert_customers([(_customer(f"c-{i}"), "d") for i in range(7)], now=NOW)
    gone = [
        Event("e1", "c-1", "bounced", NOW, {"kind": "hard"}),
        Event("e2", "c-3", "spam_reported", NOW),
        Event("e3", "c-4", "unsubscribed", NOW),
        Event("e4", "c-5", "unsubscribed", NOW, {"categories": ["tip"]}),
        Event("e5", "c-6", "bounced", NOW, {"kind": "soft"}),
    ]
    store.ingest.add_events([(e, "x") for e in gone], now=NOW)
    store.ingest.apply_events(store.ingest.unprocessed_events(10))
    reads = store.reads
    assert reads.reachable_customer_ids(None, 10) == ["c-0", "c-2", "c-5", "c-6"]
    assert reads.reachable_customer_ids(None, 2) == ["c-0", "c-2"]
    assert reads.reachable_customer_ids("c-2", 2) == ["c-5", "c-6"]
    assert reads.reachable_customer_ids("c-6", 2) == []
