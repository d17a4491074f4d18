"""Planning against the store: re-plan the customers whose inputs changed, and preview one.

Cost grows with the work that arrived: only customers marked dirty (or whose next planned
moment has come) are read, planned and written back, a batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cadence.engine import plan_customer
from cadence.engine.playbooks import PlaybookRun, sweep, sweep_times
from cadence.model import SETTLED, Customer, CustomerContext, Decision, Email, Message, Plan

if TYPE_CHECKING:
    from cadence.config import SenderSettings
    from cadence.delivery.render import Renderer
    from cadence.rules.model import Rules
    from cadence.store.gateway import Store


def plan_due(
    store: Store, rules: Rules, now: datetime, default_timezone: str, *, batch: int = 500
) -> int:
    """Re-plan every customer that needs it; returns how many were planned."""
    return plan_some(store, rules, now, default_timezone, batch=batch)[0]


def plan_some(
    store: Store,
    rules: Rules,
    now: datetime,
    default_timezone: str,
    *,
    batch: int = 500,
    keep_planning: Callable[[], bool] = lambda: True,
) -> tuple[int, bool]:
    """Re-plan customers that need it, a batch at a time, while `keep_planning()` holds
    (asked after each batch; customers with transactional mail waiting come first). Returns
    how many were planned and whether some were left for later.

    A daemon stops after a while so that it sends between batches: a customer left dirty
    has none of its emails claimed until it is planned again (`claim_due`), so stopping
    early delays that customer's mail but never sends it on a stale plan."""
    from cadence import metrics

    def plan(ctx: CustomerContext) -> Plan:
        result = plan_customer(ctx, rules, now, default_timezone)
        metrics.record_decisions(result.decisions)
        return result

    # A planned customer leaves the queue (not dirty, next_plan_at > now: the planner promises
    # it); one that is back at once was marked dirty again meanwhile and is rightly planned
    # again. Only the last batch is remembered, not every id of the pass (at a million
    # customers that set alone would be ~100 MB): customers another daemon has locked come
    # back unplanned, and must end the pass rather than spin on it.
    planned = 0
    previous: set[str] = set()
    while True:
        ids = [i for i in store.customers_to_plan(now, batch) if i not in previous]
        if not ids:
            return planned, False
        previous = set(ids)
        planned += store.plan_batch(ids, now, rules.lookback(), plan, rules.version)
        if not keep_planning():
            return planned, True


@dataclass(frozen=True)
class Preview:
    customer_id: str
    customer: Customer
    as_of: datetime
    days: int
    timezone: str
    plan: Plan
    emails: tuple[Email, ...]  # within the horizon
    messages: dict[str, Message]
    decisions: tuple[Decision, ...]  # open messages' new decisions, then settled ones
    swept: tuple[Message, ...]  # check-ins a sweep would create within the horizon


class UnknownCustomer(LookupError):
    pass


def preview(
    store: Store,
    rules: Rules,
    customer_id: str,
    as_of: datetime,
    days: int,
    default_timezone: str,
) -> Preview:
    """The customer's plan as of `as_of`, as the daemon would make it, sending nothing.

    Swept playbooks are looked ahead too: a check-in that a sweep would create within the
    horizon is planned alongside the real messages, marked as such.
    """
    contexts = store.load_contexts([customer_id], as_of, rules.lookback())
    if not contexts:
        raise UnknownCustomer(customer_id)
    ctx = contexts[0]
    horizon = as_of + timedelta(days=days)
    swept = _future_sweeps(ctx, rules, as_of, horizon)
    if swept:
        ctx = CustomerContext(
            customer=ctx.customer,
            pending=ctx.pending + swept,
            history=ctx.history,
            account_history=ctx.account_history,
            last_contact=ctx.last_contact,
            previous=ctx.previous,
        )
    plan = plan_customer(ctx, rules, as_of, default_timezone)
    messages = {m.id: m for m in ctx.pending}
    settled: list[Decision] = []
    for message, decision in store.messages_of(customer_id):
        messages.setdefault(message.id, message)
        when = message.sent_at or decision.send_at or message.send_after
        if decision.status in SETTLED and (when is None or when >= as_of - timedelta(days=days)):
            settled.append(decision)
    emails = tuple(e for e in plan.emails if e.send_at <= horizon)
    return Preview(
        customer_id=customer_id,
        customer=ctx.customer,
        as_of=as_of,
        days=days,
        timezone=ctx.customer.timezone or default_timezone,
        plan=plan,
        emails=emails,
        messages=messages,
        decisions=plan.decisions + tuple(settled),
        swept=swept,
    )


def _future_sweeps(
    ctx: CustomerContext, rules: Rules, start: datetime, end: datetime
) -> tuple[Message, ...]:
    """What sweeps would create between start and end if nothing else happened (each
    playbook once: after that, its cooldown or the check-in itself changes the picture)."""
    existing = {m.id for m in ctx.pending}
    runs = runs_of(ctx)
    out: list[Message] = []
    for playbook in rules.playbooks:
        for at in sweep_times(playbook, start, end):
            fired = sweep(
                ctx.customer,
                _only(rules, playbook.name),
                at,
                history=ctx.history,
                last_contact=ctx.last_contact,
                runs=runs,
            )
            new = [m for m in fired.messages if m.id not in existing]
            if new:
                out.extend(new)
                break
    return tuple(out)


def _only(rules: Rules, name: str) -> Rules:
    from dataclasses import replace

    return replace(rules, playbooks=tuple(p for p in rules.playbooks if p.name == name))


def runs_of(ctx: CustomerContext) -> list[PlaybookRun]:
    """When each playbook last created a message for this customer (for cooldowns)."""
    members = [m for sent in ctx.history for m in sent.members]
    runs = [PlaybookRun(name, at) for name, at in ctx.playbook_runs.items()]
    return runs + [
        PlaybookRun(m.playbook, m.created_at)
        for m in (*ctx.pending, *members)
        if m.playbook is not None and m.created_at is not None
    ]


def render_preview(
    p: Preview, renderer: Renderer, sender: SenderSettings, *, bodies: bool
) -> dict[str, dict[str, str | None]]:
    """Each upcoming email's subject (and with `bodies`, its text and HTML) exactly as it would
    go out; a template error is shown in place of the email, as the daemon would hold it."""
    from cadence.delivery.compose import compose
    from cadence.delivery.render import RenderError

    out: dict[str, dict[str, str | None]] = {}
    for email in p.emails:
        members = [p.messages[i] for i in email.members if i in p.messages]
        try:
            composed = compose(
                email, p.customer, members, renderer, sender, "(unsubscribe link)", p.as_of
            )
        except (RenderError, ValueError) as exc:
            out[email.id] = {"subject": f"(held: {exc})", "error": str(exc)}
            continue
        item: dict[str, str | None] = {"subject": composed.subject}
        if bodies:
            item["text"] = composed.text
            item["html"] = composed.html
        out[email.id] = item
    return out
