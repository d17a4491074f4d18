"""Reading the ledger for people and tools: customers, a customer's messages and emails, a
message's decision history, pages of customers, small settings (`meta`), and what
`cadence report` counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from cadence.ledger import convert
from cadence.ledger.driver import Driver
from cadence.ledger.statements import chunks, upsert
from cadence.ledger.tables import customers, decisions, emails, events, messages, meta
from cadence.model import Customer, Decision, Email, EmailStatus, Message
from cadence.progress import Progress, quiet

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cadence.ledger.report_reading import ReportRows


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    decided_at: datetime
    decision: Decision


class Reads:
    """The ledger read for people and tools: customers, a customer's messages and emails, a
    message's history, settings in `meta`, what `cadence report` counts."""

    def __init__(self, engine: Engine, is_postgres: bool) -> None:
        self.engine, self.is_postgres = engine, is_postgres

    def customers_with_email(self, address: str) -> list[Customer]:
        """The customers whose address is `address`, ignoring case (as mail systems do), by
        id. Several customers may share one address (one person in two accounts)."""
        wanted = address.strip().lower()
        if not wanted:
            return []
        query = (
            select(customers)
            .where(func.lower(customers.c.email) == wanted)
            .order_by(customers.c.id)
        )
        with self.engine.connect() as conn:
            return [convert.customer(r) for r in conn.execute(query).mappings()]

    def emails_by_id(self, ids: Sequence[str]) -> dict[str, Email]:
        """The planned or sent emails with these ids; ids the ledger does not have are left
        out."""
        out: dict[str, Email] = {}
        with self.engine.connect() as conn:
            for part in chunks(sorted(set(ids))):
                rows = conn.execute(select(emails).where(emails.c.id.in_(part))).mappings()
                out.update({r["id"]: convert.email(r) for r in rows})
        return out

    def customers_by_id(self, ids: Sequence[str]) -> dict[str, Customer]:
        out: dict[str, Customer] = {}
        with self.engine.connect() as conn:
            for part in chunks(list(ids)):
                rows = conn.execute(select(customers).where(customers.c.id.in_(part))).mappings()
                out.update({r["id"]: convert.customer(r) for r in rows})
        return out

    def customer(self, customer_id: str) -> Customer | None:
        return self.customers_by_id([customer_id]).get(customer_id)

    def messages_of(self, customer_id: str) -> list[tuple[Message, Decision]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(messages)
                .where(messages.c.customer_id == customer_id)
                .order_by(messages.c.send_after, messages.c.sent_at, messages.c.id)
            ).mappings()
            return [(convert.message(r), convert.decision(r)) for r in rows]

    def message(self, message_id: str) -> tuple[Message, Decision] | None:
        """One message and its current decision."""
        with self.engine.connect() as conn:
            row = conn.execute(select(messages).where(messages.c.id == message_id)).mappings()
            found = row.first()
            return None if found is None else (convert.message(found), convert.decision(found))

    def emails_of(self, customer_id: str) -> list[tuple[Email, EmailStatus]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(emails).where(emails.c.customer_id == customer_id).order_by(emails.c.send_at)
            ).mappings()
            return [(convert.email(r), EmailStatus(r["status"])) for r in rows]

    def decision_history(self, message_id: str) -> list[DecisionRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(decisions)
                .where(decisions.c.message_id == message_id)
                .order_by(decisions.c.id)
            ).mappings()
            return [DecisionRecord(r["decided_at"], convert.decision(r)) for r in rows]

    def customer_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(select(customers.c.id).order_by(customers.c.id)))

    def customers_of_account(self, account: str) -> list[str]:
        """The customers of an account, by id."""
        with self.engine.connect() as conn:
            query = select(customers.c.id).where(customers.c.account == account)
            return sorted(conn.scalars(query))

    def customer_zones(self) -> dict[str, str | None]:
        """Every customer's time zone (None: the default), by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(customers.c.id, customers.c.timezone))
            return {r.id: r.timezone for r in rows}

    def reachable_customer_ids(self, after: str | None, limit: int) -> list[str]:
        """Customers a sweep may check in with: not bounced, not complaining, not gone.
        Every sweep asks, a batch at a time: through the driver, a statement SQLAlchemy need
        not build each time (the three flags are never NULL)."""
        text = (
            "SELECT id FROM customers "
            "WHERE hard_bounced = ? AND spam_reported = ? AND unsubscribed_all = ?"
        )
        params: list[Any] = [False, False, False]
        if after is not None:
            text += " AND id > ?"
            params.append(after)
        with self.engine.connect() as conn:
            rows = Driver(conn).fetch(f"{text} ORDER BY id LIMIT ?", [*params, limit])
            return [i for (i,) in rows]

    def event_types(self) -> set[str]:
        """Every event type the ledger has had, from files, webhooks and links alike."""
        with self.engine.connect() as conn:
            return set(conn.scalars(select(events.c.type).distinct()))

    def attribute_names(self) -> tuple[set[str], int]:
        """(every key of a customer's attributes, or of attributes an event brings, that the
        ledger holds; how many customers it holds): what `rules check` holds the rules'
        `customer.<name>` against. One scan of each table, in the database's JSON functions."""
        if self.is_postgres:
            keys = (
                "SELECT DISTINCT json_object_keys(attributes) FROM {table} "
                "WHERE json_typeof(attributes) = 'object'"
            )
        else:
            keys = (
                "SELECT DISTINCT j.key FROM {table}, json_each({table}.attributes) AS j "
                "WHERE json_type({table}.attributes) = 'object'"
            )
        with self.engine.connect() as conn:
            db = Driver(conn)
            names = {
                row[0]
                for t in ("customers", "events")
                for row in db.fetch(keys.format(table=t), [])
            }
            count = db.fetch("SELECT count(*) FROM customers", [])[0][0]
        return names, int(count)

    def get_meta(self, key: str) -> str | None:
        # every pass asks (the rules version, the sweeps): through the driver, a statement
        # SQLAlchemy need not build each time
        with self.engine.connect() as conn:
            found = Driver(conn).fetch("SELECT value FROM meta WHERE key = ?", [key])
            return str(found[0][0]) if found else None

    def meta_once(self, key: str, value: str) -> str:
        """The value kept under `key`: `value` if none was, else the one kept already."""
        with self.engine.begin() as conn:
            statement = upsert(conn, meta).values(key=key, value=value)
            conn.execute(statement.on_conflict_do_nothing(index_elements=[meta.c.key]))
            kept = conn.scalar(select(meta.c.value).where(meta.c.key == key))
            return str(kept)

    def set_meta(self, key: str, value: str) -> None:
        # one upsert: three daemons starting together all write the rules version, and a
        # look-then-insert let two of them insert it (a unique violation that stopped them);
        # every sweep writes its period: through the driver (both databases take this form)
        with self.engine.begin() as conn:
            Driver(conn).execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    def report_rows(
        self,
        since: datetime,
        until: datetime,
        account: str | None = None,
        written_from: datetime | None = None,
        progress: Progress = quiet,
    ) -> ReportRows:
        """What `cadence report` counts for the period (see `report_reading`)."""
        from cadence.ledger.report_reading import report_rows

        return report_rows(self.engine, since, until, account, written_from, progress)
