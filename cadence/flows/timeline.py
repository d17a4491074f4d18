"""The passes over a stretch of time, stepped from one due moment to the next: one engine
loop, many clocks. `simulate` and `preview` run it on a scratch copy of the ledger with a
transport that only records, `demo` on its own ledger with the file transport; the daemon
keeps the wall clock and wakes at the same moments.

A moment is when something is due: a planned email, a customer's next look (a suppression
whose time comes, an expiry), an event taking effect, a sweep period beginning. Between two
moments nothing changes, so a pass at each of them does what a daemon ticking all the while
would do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cadence.engine.playbooks import next_sweep
from cadence.ledger import scratch

if TYPE_CHECKING:
    from cadence.app import App
    from cadence.config import Settings
    from cadence.delivery.transports import RecordingTransport, Transport
    from cadence.flows.passes import PassReport
    from cadence.ledger.ledger import Ledger
    from cadence.model import Decision, Email, Message
    from cadence.rules.model import Rules

log = logging.getLogger("cadence.timeline")
#: what the passes on a scratch copy log of each email: only errors. An email held for its
#: template is in the run's decisions, which `preview` and `simulate` print; logged as well,
#: every preview a daemon answers would log the customer's held emails again, as if live.
SCRATCH_LOG = logging.getLogger("cadence.scratch")
SCRATCH_LOG.setLevel(logging.ERROR)

#: what signs the unsubscribe links of emails rendered on a scratch copy: never a live secret
SCRATCH_SECRET = "scratch copy: links made here unsubscribe nobody"

#: passes at one moment, at most, before a run steps on: a pass seldom leaves anything due
#: at its own moment, and the next pass settles it
SAME_MOMENT = 3
#: how far a run steps when passes at a moment leave something due at it (never seen), so
#: that it cannot spin
STUCK_STEP = timedelta(minutes=1)


def next_moment(store: Ledger, rules: Rules, after: datetime) -> datetime | None:
    """The earliest moment anything is due after a pass at `after`."""
    times = [t for t in (store.planning.next_wakeup(), next_sweep(rules, after)) if t is not None]
    return min(times) if times else None


def run_between(
    app: App,
    start: datetime,
    end: datetime,
    transport: Transport,
    on_pass: Callable[[PassReport], None] = lambda _: None,
    dispatch_log: logging.Logger | None = None,
) -> int:
    """Run a pass at `start` and at every due moment up to `end` (included), on `app`'s
    ledger and rules, handing what is due to `transport`; returns how many passes ran.
    `dispatch_log`: where the dispatch says what became of each email (see `run_pass`)."""
    from cadence.flows.passes import run_pass

    rules = app.rules()
    t = start
    passes = again = 0
    while True:
        on_pass(run_pass(app, t, transport=transport, dispatch_log=dispatch_log))
        passes += 1
        later = next_moment(app.store, rules, t)
        if later is None:
            return passes
        if later <= t:
            # the pass left something due at its own moment (a retry due at once, planning
            # it stopped early): another pass at the same moment, as the daemon's next tick
            # would run; never many in a row
            again += 1
            if again <= SAME_MOMENT:
                continue
            log.warning("something is due at %s that passes did not settle", later.isoformat())
            later = t + STUCK_STEP
        again = 0
        if later > end:
            return passes
        t = later


@dataclass
class ScratchRun:
    """The passes run over a stretch of time on a scratch copy of the ledger (all of it, or
    some customers'): what became of every message, and what was sent, read from the copy."""

    store: Ledger
    transport: RecordingTransport
    start: datetime
    end: datetime
    passes: int
    settled_before: frozenset[str]  # messages whose fate was settled before `start`

    def outcomes(self, customer_ids: Sequence[str] | None = None) -> list[Outcome]:
        return scratch.outcomes(self.store, self.start, customer_ids)

    def sent(self, customer_ids: Sequence[str] | None = None) -> list[Email]:
        return scratch.sent_between(self.store, self.start, self.end, customer_ids)

    def close(self) -> None:
        self.store.close()


Outcome = tuple["Message", "Decision"]


def run_on_scratch(
    live: Ledger,
    settings: Settings,
    rules: Rules,
    start: datetime,
    end: datetime,
    *,
    customer_ids: Sequence[str] | None = None,
    replay_history: bool = False,
    bodies: bool = False,
    on_pass: Callable[[PassReport], None] = lambda _: None,
) -> ScratchRun:
    """Copy the ledger (or these customers of it), wind it back to `start`, and run the
    passes on the copy until `end`, as `rules` say, recording what they send. With
    `replay_history`, what other systems sent in between is replayed as candidates."""
    from cadence.app import UNSUBSCRIBE_SECRET, App
    from cadence.delivery.render import frozen_renderer
    from cadence.delivery.transports import RecordingTransport

    store = scratch.scratch_store()
    try:
        scratch.copy_ledger(live, store, customer_ids)
        scratch.rewind(store, start, replay_until=end if replay_history else None)
        settled = scratch.settled_ids(store)
        # links minted on the copy must not work: a secret of its own, not the live one (the
        # same every time, so the same preview shows the same email)
        store.reads.set_meta(UNSUBSCRIBE_SECRET, SCRATCH_SECRET)
        quiet = settings.model_copy(
            update={"unsubscribe": settings.unsubscribe.model_copy(update={"secret_env": None})}
        )
        transport = RecordingTransport(bodies=bodies)
        renderer = frozen_renderer(Path(settings.templates_dir))
        app = App(quiet, _store=store, _rules=rules, _renderer=renderer)
        passes = run_between(app, start, end, transport, on_pass, SCRATCH_LOG)
    except BaseException:
        store.close()
        raise
    return ScratchRun(store, transport, start, end, passes, settled)
