"""Reading what the planner needs, in a few queries a batch, and writing its plans back."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, false, func, insert, select, text, true, update

from cadence.model import CustomerContext, Message, Plan, Sent
from cadence.store import convert
from cadence.store.tables import (
    UNPLANNED_TRANSACTIONAL,
    customers,
    decisions,
    emails,
    events,
    messages,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

IN_LEDGER = ("claimed", "sending", "sent", "unconfirmed")  # went, or may have


class PlanningOps:
    engine: Engine
    is_postgres: bool

    def customers_to_plan(self, now: datetime, limit: int) -> list[str]:
        """Customers with transactional mail not planned yet, then those marked dirty, then
        those whose next planned moment has come. Each lookup on an index of its own (an `OR`
        would scan every customer): an idle tick must cost the same at ten thousand
        customers as at a million. Receipts first: they must leave within a second even
        while a burst of other mail is being planned."""
        with self.engine.connect() as conn:
            found = self._unplanned_transactional(conn, limit)
            if len(found) < limit:
                found += conn.scalars(
                    # `= true`, not `IS true`: PostgreSQL uses an index only for the former
                    select(customers.c.id).where(customers.c.dirty == true()).limit(limit)
                )
            found = list(dict.fromkeys(found))
            if len(found) >= limit:
                return found[:limit]
            due = conn.scalars(
                select(customers.c.id)
                .where(customers.c.next_plan_at <= now)
                .order_by(customers.c.next_plan_at)
                .limit(limit - len(found))
            )
            return list(dict.fromkeys([*found, *due]))

    def has_unplanned_transactional(self) -> bool:
        """Whether a receipt (or other transactional mail) waits for its first plan: what a
        daemon asks several times a second to start a pass at once (a partial index of the
        few such messages, so the question costs the same at any size)."""
        with self.engine.connect() as conn:
            return bool(self._unplanned_transactional(conn, 1))

    def _unplanned_transactional(self, conn: Connection, limit: int) -> list[str]:
        where = UNPLANNED_TRANSACTIONAL["postgresql" if self.is_postgres else "sqlite"]
        return list(
            conn.scalars(
                text(f"SELECT DISTINCT customer_id FROM messages WHERE {where} LIMIT :n"),
                {"n": limit},
            )
        )

    def mark_all_dirty(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(customers).values(dirty=True))

    def due_count(self, now: datetime) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(emails)
                    .where(emails.c.status == "planned", emails.c.send_at <= now)
                )
                or 0
            )

    def next_wakeup(self) -> datetime | None:
        """The earliest time anything is due: a planned email, or a customer's next plan."""
        with self.engine.connect() as conn:
            a = conn.scalar(select(func.min(emails.c.send_at)).where(emails.c.status == "planned"))
            b = conn.scalar(select(func.min(customers.c.next_plan_at)))
            c = conn.scalar(select(func.min(events.c.at)).where(events.c.processed == false()))
        times = [t for t in (a, b, c) if t is not None]
        if times and any(isinstance(t, str) for t in times):  # SQLite aggregate: text
            times = [datetime.fromisoformat(str(t)).replace(tzinfo=None) for t in times]
        from datetime import UTC

        times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]
        return min(times) if times else None

    def load_contexts(
        self, ids: Sequence[str], now: datetime, lookback: timedelta, *, account: bool = True
    ) -> list[CustomerContext]:
        with self.engine.connect() as conn:
            return self._load_contexts(conn, ids, now, lookback, account=account)

    def plan_batch(
        self,
        ids: Sequence[str],
        now: datetime,
        lookback: timedelta,
        plan: Callable[[CustomerContext], Plan],
        rules_version: str,
    ) -> int:
        """Read, plan and write back a batch in one transaction. On PostgreSQL each customer
        is locked for the transaction (an advisory lock; customers another daemon holds are
        left to it), so limits hold however many daemons run."""
        with self.engine.begin() as conn:
            if self.is_postgres:
                ids = list(
                    conn.scalars(
                        text(
                            "SELECT x FROM unnest(CAST(:ids AS text[])) AS x "
                            "WHERE pg_try_advisory_xact_lock(hashtext(x))"
                        ),
                        {"ids": list(ids)},
                    )
                )
            read: dict[str, Any] = {}
            contexts = self._load_contexts(conn, ids, now, lookback, pending_rows=read)
            plans = [plan(ctx) for ctx in contexts]
            self._save_plans(conn, plans, rules_version, current=read)
            return len(plans)

    def _load_contexts(
        self,
        conn: Connection,
        ids: Sequence[str],
        now: datetime,
        lookback: timedelta,
        *,
        account: bool = True,
        pending_rows: dict[str, Any] | None = None,
    ) -> list[CustomerContext]:
        """The customers' contexts; with `pending_rows`, their open messages' rows are left
        there by id (what `_save_plans` compares the new decisions with)."""
        if not ids:
            return []
        since = now - lookback
        rows = conn.execute(select(customers).where(customers.c.id.in_(ids))).mappings().all()
        custs = [convert.customer(r) for r in rows]
        if not custs:
            return []
        contact = {r["id"]: r["last_contact"] for r in rows}
        open_rows = (
            conn.execute(
                select(messages)
                .where(
                    messages.c.customer_id.in_(ids),
                    messages.c.final.is_(False),
                    messages.c.in_flight.is_(False),
                )
                .order_by(messages.c.id)
            )
            .mappings()
            .all()
        )
        accounts = sorted({c.account for c in custs if c.account}) if account else []
        peers: dict[str, list[str]] = defaultdict(list)
        if accounts:
            for cid, acct in conn.execute(
                select(customers.c.id, customers.c.account).where(customers.c.account.in_(accounts))
            ):
                peers[acct].append(cid)
        scope_ids = sorted(set(ids) | {p for group in peers.values() for p in group})
        history = self._history(conn, scope_ids, since, peers=bool(accounts))
        runs = defaultdict(dict)
        for cid, playbook, last in conn.execute(
            select(messages.c.customer_id, messages.c.playbook, func.max(messages.c.created_at))
            .where(
                messages.c.customer_id.in_(ids),
                messages.c.playbook.is_not(None),
                messages.c.status != "cancelled",
            )
            .group_by(messages.c.customer_id, messages.c.playbook)
        ):
            runs[cid][playbook] = _aware(last)
        pending: dict[str, list[Message]] = defaultdict(list)
        previous: dict[str, dict[str, Any]] = defaultdict(dict)
        for r in open_rows:
            pending[r["customer_id"]].append(convert.message(r))
            previous[r["customer_id"]][r["id"]] = convert.decision(r)
            if pending_rows is not None:
                pending_rows[r["id"]] = r
        out = []
        for c in custs:
            others = [p for p in peers.get(c.account or "", []) if p != c.id] if c.account else []
            out.append(
                CustomerContext(
                    customer=c,
                    pending=tuple(pending[c.id]),
                    # its own planned emails are what this plan replaces; a peer's count
                    # (even one planned in this same batch: the conservative reading)
                    history=tuple(s for s in history.get(c.id, ()) if not s.planned),
                    account_history=tuple(s for o in others for s in history.get(o, ())),
                    last_contact={
                        k: datetime.fromisoformat(v) for k, v in (contact.get(c.id) or {}).items()
                    },
                    previous=previous[c.id],
                    playbook_runs=runs.get(c.id, {}),
                )
            )
        return out

    def _history(
        self, conn: Connection, ids: Sequence[str], since: datetime, *, peers: bool
    ) -> dict[str, list[Sent]]:
        """Sent (or in-flight) emails and recorded messages since `since`, and with `peers`
        the planned emails too (`Sent.planned`), which count for the other customers of an
        account. Each email counts at the time it went, else the time it is due."""
        statuses = (*IN_LEDGER, "planned") if peers else IN_LEDGER
        rows = (
            conn.execute(
                select(emails).where(
                    emails.c.customer_id.in_(ids),
                    emails.c.status.in_(statuses),
                    func.coalesce(emails.c.sent_at, emails.c.send_at) >= since,
                )
            )
            .mappings()
            .all()
        )
        member_ids = sorted({i for r in rows for i in r["members"]})
        members: dict[str, Message] = {}
        for i in range(0, len(member_ids), 500):
            for m in conn.execute(
                select(messages).where(messages.c.id.in_(member_ids[i : i + 500]))
            ).mappings():
                members[m["id"]] = convert.message(m)
        out: dict[str, list[Sent]] = defaultdict(list)
        for r in rows:
            at = r["sent_at"] or r["send_at"]
            group = tuple(members[i] for i in r["members"] if i in members)
            out[r["customer_id"]].append(
                Sent(r["id"], at, r["customer_id"], group, planned=r["status"] == "planned")
            )
        for m in conn.execute(
            select(messages).where(
                messages.c.customer_id.in_(ids),
                messages.c.kind == "recorded",
                messages.c.sent_at >= since,
            )
        ).mappings():
            msg = convert.message(m)
            assert msg.sent_at is not None
            out[msg.customer_id].append(Sent(msg.id, msg.sent_at, msg.customer_id, (msg,)))
        for group in out.values():
            group.sort(key=lambda s: (s.at, s.id))
        return out

    def save_plans(self, plans: Sequence[Plan], rules_version: str) -> None:
        with self.engine.begin() as conn:
            self._save_plans(conn, plans, rules_version)

    def _save_plans(
        self,
        conn: Connection,
        plans: Sequence[Plan],
        rules_version: str,
        current: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the plans: each changed decision, the emails, the customers' next moment.
        `current` holds the decided messages' rows as read in this transaction (read here
        when not given)."""
        if not plans:
            return
        ids = [p.customer_id for p in plans]
        conn.execute(
            delete(emails).where(emails.c.customer_id.in_(ids), emails.c.status == "planned")
        )
        new_emails = [e for p in plans for e in p.emails]
        taken = (
            set(
                conn.scalars(select(emails.c.id).where(emails.c.id.in_([e.id for e in new_emails])))
            )
            if new_emails
            else set()
        )
        rows = []
        for p in plans:
            for e in p.emails:
                if e.id in taken:
                    # a claimed/sent email keeps its row: ids derive from the members, so
                    # this is the plan re-proposing what is already on its way
                    log.warning(
                        "plan for %s proposes email %s, which exists and is no longer "
                        "planned: kept as it is",
                        p.customer_id,
                        e.id,
                    )
                    continue
                rows.append(
                    {
                        "id": e.id,
                        "customer_id": e.customer_id,
                        "send_at": e.send_at,
                        "status": "planned",
                        "members": list(e.members),
                        "role": e.role,
                        "category": e.category,
                        "transactional": e.transactional,
                        "merge_rule": e.merge_rule,
                        "template": e.template,
                        "to_owner": e.to_owner,
                        "lease_owner": None,
                        "lease_until": None,
                        "attempts": 0,
                        "provider_id": None,
                        "error": None,
                        "sent_at": None,
                        "created_at": p.as_of,
                        "updated_at": p.as_of,
                        "rules_version": rules_version,
                    }
                )
        if rows:
            conn.execute(insert(emails), rows)
        decided = [d.message_id for p in plans for d in p.decisions]
        current = (
            current
            if current is not None
            else {
                r["id"]: r
                for i in range(0, len(decided), 500)
                for r in conn.execute(
                    select(
                        messages.c.id,
                        messages.c.customer_id,
                        messages.c.status,
                        messages.c.send_at,
                        messages.c.email_id,
                        messages.c.rule,
                        messages.c.reason,
                        messages.c.final,
                        messages.c.rules_version,
                        messages.c.details,
                    ).where(messages.c.id.in_(decided[i : i + 500]))
                ).mappings()
            }
        )
        history = []
        updates = []
        for p in plans:
            for d in p.decisions:
                old = current.get(d.message_id)
                if old is None:
                    continue
                details = convert.details(d)
                verdict_changed = (
                    old["status"] != str(d.status)
                    or _aware(old["send_at"]) != d.send_at
                    or old["email_id"] != d.email_id
                    or old["rule"] != d.rule
                    or old["reason"] != d.reason
                )
                if (
                    verdict_changed
                    or old["final"] != d.final
                    or old["rules_version"] != d.rules_version
                    or (old["details"] or {}) != details
                ):
                    updates.append(
                        {
                            "m_id": d.message_id,
                            "m_status": str(d.status),
                            "m_rule": d.rule,
                            "m_reason": d.reason,
                            "m_send_at": d.send_at,
                            "m_email_id": d.email_id,
                            "m_details": details,
                            "m_rules_version": d.rules_version,
                            "m_final": d.final,
                            "m_decided_at": p.as_of,
                        }
                    )
                if verdict_changed:
                    history.append(
                        {
                            "message_id": d.message_id,
                            "customer_id": p.customer_id,
                            "decided_at": p.as_of,
                            "status": str(d.status),
                            "send_at": d.send_at,
                            "email_id": d.email_id,
                            "rule": d.rule,
                            "reason": d.reason,
                            "details": details,
                            "rules_version": d.rules_version,
                        }
                    )
        if updates:  # one statement, many rows: a plan that changed nothing writes nothing here
            conn.execute(
                update(messages)
                .where(messages.c.id == bindparam("m_id"))
                .values(
                    status=bindparam("m_status"),
                    rule=bindparam("m_rule"),
                    reason=bindparam("m_reason"),
                    send_at=bindparam("m_send_at"),
                    email_id=bindparam("m_email_id"),
                    details=bindparam("m_details"),
                    rules_version=bindparam("m_rules_version"),
                    final=bindparam("m_final"),
                    decided_at=bindparam("m_decided_at"),
                ),
                updates,
            )
        if history:
            conn.execute(insert(decisions), history)
        conn.execute(
            update(customers)
            .where(customers.c.id == bindparam("c_id"))
            .values(dirty=False, next_plan_at=bindparam("c_next")),
            [{"c_id": p.customer_id, "c_next": p.next_plan_at} for p in plans],
        )


def _aware(t: datetime | None) -> datetime | None:
    from datetime import UTC

    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
