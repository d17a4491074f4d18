"""One pass of the engine as of a time: the unit `run --once`, the daemon's tick and the demo
share. Events through playbooks, sweeps, re-planning what changed, sending what is due."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cadence import metrics
from cadence.flows.lifecycle import process_events, sweep_all
from cadence.flows.planning import plan_some
from cadence.flows.sending import Dispatcher, DispatchReport
from cadence.flows.sending import log as sending_log
from cadence.words import plural

if TYPE_CHECKING:
    from cadence.app import App
    from cadence.delivery.render import Renderer
    from cadence.delivery.transports import Transport
    from cadence.ledger.ledger import Ledger
    from cadence.rules.model import Rules


def daemon_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class PassReport:
    at: datetime
    created: int = 0
    cancelled: int = 0
    swept: int = 0
    planned: int = 0
    more_to_plan: bool = False  # stopped planning with customers left (the pass's time was up)
    dispatch: DispatchReport = field(default_factory=DispatchReport)

    @property
    def failed(self) -> list[str]:
        return self.dispatch.failed

    def summary(self) -> str:
        d = self.dispatch
        parts = [
            f"pass at {self.at.isoformat()}",
            f"playbooks created {self.created + self.swept} and cancelled {self.cancelled}",
            f"planned {plural(self.planned, 'customer')}",
            f"sent {len(d.sent)}",
        ]
        if d.failed:
            parts.append(f"failed {len(d.failed)}")
        if d.retried:  # the transport refused for now: each is tried again after a wait
            parts.append(f"{plural(d.retried, 'email')} to retry")
        if d.held:
            parts.append(f"held {len(d.held)} (template errors)")
        if d.unconfirmed:
            parts.append(f"{plural(d.unconfirmed, 'email')} became unconfirmed")
        return "; ".join(parts)


def live_version(rules: Rules, renderer: Renderer) -> str:
    """What the mail is made from: the rules and the templates. When either changes, held
    mail gets another chance (`adopt_rules`): a fixed template releases what it held."""
    return f"{rules.version}+{renderer.version()}"


def adopt_rules(store: Ledger, version: str) -> bool:
    """New rules (or templates fixed) since the last pass, `version` as `live_version` says:
    every customer is planned again under them and held messages get another chance. What
    was sent stays sent."""
    if store.reads.get_meta("rules_version") == version:
        return False
    store.sending.release_held()
    store.planning.mark_all_dirty()
    store.reads.set_meta("rules_version", version)
    return True


def run_pass(
    app: App,
    now: datetime,
    *,
    transport: Transport | None = None,
    sweep: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
    keep_claiming: Callable[[], bool] = lambda: True,
    keep_planning: Callable[[], bool] = lambda: True,
    plan_batch: int = 500,
    claim_batch: int | None = None,
    dispatch_log: logging.Logger | None = None,
) -> PassReport:
    """One pass as of `now`. `dispatch_log`: where the dispatch says what became of each
    email (default: the dispatch's own logger)."""
    from cadence.delivery.transports import make_transport

    rules = app.rules()
    store = app.store
    adopt_rules(store, live_version(rules, app.renderer()))
    report = PassReport(at=now)
    # leases that ran out first (a retry's wait over, a stopped daemon's claims): their
    # customers want a look again, which this pass's planning then gives, so the emails go
    # in this pass, not the next
    released, unconfirmed = store.sending.recover_leases(now)
    report.created, report.cancelled = process_events(store, rules, now)
    if sweep:
        report.swept = sweep_all(store, rules, now)

    def plan() -> tuple[int, bool]:
        return plan_some(
            store,
            rules,
            now,
            app.settings.default_timezone,
            batch=plan_batch,
            keep_planning=keep_planning,
        )

    report.planned, report.more_to_plan = plan()
    own_transport = transport is None
    transport = transport or make_transport(app.settings)
    try:
        dispatcher = Dispatcher(
            store=store,
            transport=transport,
            renderer=app.renderer(),
            settings=app.settings,
            secret=app.unsubscribe_secret(),
            owner=daemon_id(),
            should_stop=should_stop,
            keep_claiming=keep_claiming,
            max_delay=rules.max_delay,
            log=dispatch_log or sending_log,
        )
        report.dispatch = dispatcher.run(now, batch=claim_batch)
        d = report.dispatch
        d.released = released
        d.unconfirmed += unconfirmed  # and those the transport's answers left unsettled
        metrics.record_dispatch(len(d.sent), len(d.failed), d.retried, d.unconfirmed)
        if (d.sent or d.failed or d.retried) and not report.more_to_plan and keep_planning():
            # the customers whose emails went (or failed) want a look at once (their history
            # moved): the pass ends with their plans settled, not with them waiting for it
            more, report.more_to_plan = plan()
            report.planned += more
    finally:
        if own_transport:
            transport.close()
    return report
