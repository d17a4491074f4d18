"""Playbooks and cancel rules against the store: events in, check-ins created, pending
messages cancelled; periodic sweeps.

The decisions are the pure functions of `cadence.engine.playbooks`; this module reads what
they need and writes what they return. Created messages have ids derived from what fired them
and are inserted only if absent, so doing the same work twice (re-ingested events, a second
daemon sweeping at once) changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from cadence.engine.events import apply_event, in_order
from cadence.engine.playbooks import (
    Cancellation,
    PlaybookRun,
    on_event,
    sweep,
    sweep_period,
    swept,
)
from cadence.model import Customer, CustomerContext, Message

if TYPE_CHECKING:
    from cadence.ledger.ledger import Ledger
    from cadence.rules.model import Playbook, Rules

log = logging.getLogger("cadence.lifecycle")


def process_events(
    store: Ledger, rules: Rules, now: datetime, *, batch: int = 500
) -> tuple[int, int]:
    """Apply every event whose time has come (reachability, attributes) and run it through
    the playbooks; returns (check-ins created, cancelled)."""
    created = cancelled = 0
    while True:
        events = store.ingest.unprocessed_events(batch, until=now)
        if not events:
            return created, cancelled
        ids = sorted({e.customer_id for e in events})
        # the playbooks read no other customer's mail
        contexts = {
            c.customer.id: c
            for c in store.planning.load_contexts(ids, now, rules.lookback(), account=False)
        }
        new: list[Message] = []
        cancels: list[Cancellation] = []
        gone: set[str] = set()  # cancelled in this batch: no longer open, no cooldown
        changed: dict[str, Customer] = {}
        for event in in_order(events):
            ctx = contexts.get(event.customer_id)
            if ctx is None or not (rules.playbooks or rules.cancel):
                continue
            # the playbook sees the customer as the event leaves them (its attributes merged)
            customer = changed[event.customer_id] = apply_event(
                changed.get(event.customer_id, ctx.customer), event
            )
            mine = [m for m in new if m.customer_id == event.customer_id and m.id not in gone]
            fired = on_event(
                event,
                customer,
                rules,
                history=ctx.history,
                last_contact=ctx.last_contact,
                runs=runs_of(ctx) + [PlaybookRun(m.playbook or "", event.at) for m in mine],
                open_messages=[m for m in (*ctx.pending, *mine) if m.id not in gone],
            )
            new.extend(fired.messages)
            cancels.extend(fired.cancellations)
            gone.update(c.message_id for c in fired.cancellations)
            for skip in fired.skipped:
                log.info(
                    "rule %s skipped customer=%s event=%s: %s",
                    skip.playbook,
                    event.customer_id,
                    event.id,
                    skip.reason,
                )
        # what an event created and a later one cancelled is stored too, then cancelled: its
        # entry says which event cancelled it, as for any other check-in
        created += store.ingest.add_playbook_messages(new, now=now)
        for c in cancels:
            refused = store.ingest.cancel_messages(
                [c.message_id],
                c.reason,
                c.event.at,
                event=c.event.id,
                rule=c.rule,
            )
            cancelled += 0 if refused else 1
        store.ingest.apply_events(events)


#: where the start of the last period each swept playbook ran for is kept (`meta`)
SWEPT = "swept:"


def due_sweeps(store: Ledger, rules: Rules, now: datetime) -> list[tuple[Playbook, datetime]]:
    """The swept playbooks whose current period (the one holding `now`) has not been swept
    yet, each with the start of that period."""
    due = []
    for playbook in swept(rules):
        period = sweep_period(playbook, now)
        last = store.reads.get_meta(SWEPT + playbook.name)
        if last is None or datetime.fromisoformat(last) < period:
            due.append((playbook, period))
    return due


def sweep_all(store: Ledger, rules: Rules, now: datetime, *, batch: int = 500) -> int:
    """Sweep every reachable customer for each swept playbook whose period began since its
    last sweep, as of that period's start; returns messages created. Once a period: a pass
    that comes again in the same period sweeps nothing, whoever runs it."""
    due = due_sweeps(store, rules, now)
    if not due:
        return 0
    created = 0
    after: str | None = None
    while True:
        ids = store.reads.reachable_customer_ids(after, batch)
        if not ids:
            break
        after = ids[-1]
        new: list[Message] = []
        # a sweep reads the customer, its own sent mail and contact times, and when each
        # playbook last ran (`playbook_runs` covers open messages too): not the open messages
        # themselves nor the account's other customers, most of a full context's reading
        contexts = store.planning.load_contexts(
            ids, now, rules.lookback(), account=False, open_messages=False
        )
        for ctx in contexts:
            runs = runs_of(ctx)
            for playbook, period in due:
                fired = sweep(
                    ctx.customer,
                    playbook,
                    period,
                    history=ctx.history,
                    last_contact=ctx.last_contact,
                    runs=runs,
                )
                new.extend(fired.messages)
        created += store.ingest.add_playbook_messages(new, now=now)
    for playbook, period in due:
        store.reads.set_meta(SWEPT + playbook.name, period.isoformat())
    return created


def runs_of(ctx: CustomerContext) -> list[PlaybookRun]:
    """When each playbook last created a message for this customer (for cooldowns)."""
    members = [m for sent in ctx.history for m in sent.members]
    runs = [PlaybookRun(name, at) for name, at in ctx.playbook_runs.items()]
    return runs + [
        PlaybookRun(m.playbook, m.created_at)
        for m in (*ctx.pending, *members)
        if m.playbook is not None and m.created_at is not None
    ]
