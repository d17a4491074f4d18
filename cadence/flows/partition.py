"""A scratch run split by account, one part per core: what `simulate` runs on a large ledger.

Customers of different accounts never meet in a plan: a limit counts a customer's mail or
its account's, a merge joins one customer's messages, a playbook looks at one customer. So
the passes over a part of the ledger made of whole accounts do for those customers exactly
what the passes over all of it do, at the same moments (a pass at a moment that is due
only for another part changes nothing for this one: between two of its own moments nothing
is due). Each part runs in a process of its own, on its own scratch copy; the results are
put together in the order a single run gives them.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cadence.ledger.db import IN_MEMORY
from cadence.ledger.driver import Driver
from cadence.progress import Progress, quiet

if TYPE_CHECKING:
    from cadence.config import Settings
    from cadence.flows.passes import PassReport
    from cadence.ledger.ledger import Ledger
    from cadence.model import Decision, Email, Message
    from cadence.rules.model import Rules

#: fewer customers than this per part and a process of its own costs more than it saves
MIN_PER_PART = 250
#: parts at most, whatever the cores
MAX_PARTS = 8
#: seconds between two looks at how far the children have got
PROGRESS_LOOK = 0.1


@dataclass(frozen=True)
class PartRun:
    """What the passes did on one scratch copy (or several, put together)."""

    moments: frozenset[datetime]  # when passes ran
    zones: dict[str, str | None]  # every customer's time zone (None: the default)
    emails: list[Email]  # sent, in the order sent
    subjects: dict[str, str | None]  # by email id
    outcomes: list[tuple[Message, Decision]]  # by customer, then message id
    settled: frozenset[str]  # messages whose fate was settled before the start


def default_parts() -> int:
    return max(1, min(MAX_PARTS, len(os.sched_getaffinity(0))))


def run_parts(
    store: Ledger,
    settings: Settings,
    rules: Rules,
    start: datetime,
    end: datetime,
    *,
    replay_history: bool = False,
    parts: int | None = None,
    progress: Progress = quiet,
) -> PartRun:
    """The passes from `start` to `end` on scratch copies of the ledger, each holding whole
    accounts: in `parts` processes, or by default one per core for a ledger large enough.
    Progress counts virtual seconds passed, of every part: each child writes how far its
    passes have got into memory it shares with this process, which reads it while it waits."""
    groups = account_groups(store)
    count = (
        min(default_parts(), sum(len(g) for g in groups) // MIN_PER_PART)
        if parts is None
        else min(parts, len(groups))
    )
    if count <= 1 or store.url == IN_MEMORY:
        # one part: here, in this process (a ledger in memory cannot be opened again anyway)
        return run_part(store, settings, rules, start, end, None, replay_history, progress)
    split = balance(groups, count)
    context = multiprocessing.get_context("fork")
    # one count per part, written by its child alone: no lock needed
    reached = context.RawArray("q", len(split))
    total = _seconds(start, end) * len(split)
    global _JOB
    _JOB = (store, settings, rules, start, end, replay_history, split, reached)
    try:
        # forked: the children start with the rules and settings already loaded
        with context.Pool(len(split)) as pool:
            running = pool.map_async(_run_child, range(len(split)))
            while not running.ready():
                progress(sum(reached), total)
                running.wait(PROGRESS_LOOK)
            results = running.get()
    finally:
        _JOB = None
    progress(total, total)
    return merge(results)


def _seconds(start: datetime, end: datetime) -> int:
    return max(1, int((end - start).total_seconds()))


#: what the forked children read: set just before they are made
_JOB: tuple[Any, ...] | None = None


def _run_child(index: int) -> PartRun:
    assert _JOB is not None
    store, settings, rules, start, end, replay_history, split, reached = _JOB
    # the parent's connections are the parent's: this process opens its own
    store.engine.dispose(close=False)

    def progress(done: int, total: int | None) -> None:
        reached[index] = done

    return run_part(store, settings, rules, start, end, split[index], replay_history, progress)


def run_part(
    store: Ledger,
    settings: Settings,
    rules: Rules,
    start: datetime,
    end: datetime,
    customer_ids: Sequence[str] | None,
    replay_history: bool,
    progress: Progress = quiet,
) -> PartRun:
    """The passes over these customers (None: all) on a scratch copy of the ledger; progress
    in virtual seconds from `start`, as each pass ends."""
    from cadence.flows.timeline import run_on_scratch

    moments: set[datetime] = set()
    span = _seconds(start, end)

    def passed(report: PassReport) -> None:
        moments.add(report.at)
        progress(min(span, int((report.at - start).total_seconds())), span)

    progress(0, span)
    run = run_on_scratch(
        store,
        settings,
        rules,
        start,
        end,
        customer_ids=customer_ids,
        replay_history=replay_history,
        on_pass=passed,
    )
    progress(span, span)
    try:
        return PartRun(
            moments=frozenset(moments),
            zones=run.store.reads.customer_zones(),
            emails=run.sent(),
            subjects=dict(run.transport.subjects),
            outcomes=run.outcomes(),
            settled=run.settled_before,
        )
    finally:
        run.close()


def account_groups(store: Ledger) -> list[list[str]]:
    """Every customer, in the groups no part may split: an account's customers together,
    a customer with no account alone. Sorted, so the same ledger splits the same way."""
    groups: dict[str, list[str]] = {}
    with store.engine.connect() as conn:
        for cid, account in Driver(conn).fetch("SELECT id, account FROM customers", []):
            groups.setdefault(f"a:{account}" if account else f"c:{cid}", []).append(cid)
    return [sorted(groups[k]) for k in sorted(groups)]


def balance(groups: Sequence[Sequence[str]], count: int) -> list[list[str]]:
    """The groups dealt into `count` parts of about as many customers each (largest group
    first, each to the smallest part so far)."""
    parts: list[list[str]] = [[] for _ in range(count)]
    for group in sorted(groups, key=lambda g: (-len(g), g[0])):
        smallest = min(range(count), key=lambda i: (len(parts[i]), i))
        parts[smallest].extend(group)
    return [sorted(p) for p in parts if p]


def merge(runs: Sequence[PartRun]) -> PartRun:
    """Parts put together in a single run's order: emails by time, customer and id (the
    order `sent_between` reads them in), outcomes by customer and message id."""
    return PartRun(
        moments=frozenset().union(*(r.moments for r in runs)),
        zones={k: v for r in runs for k, v in r.zones.items()},
        emails=sorted(
            (e for r in runs for e in r.emails), key=lambda e: (e.send_at, e.customer_id, e.id)
        ),
        subjects={k: v for r in runs for k, v in r.subjects.items()},
        outcomes=sorted(
            (o for r in runs for o in r.outcomes), key=lambda o: (o[0].customer_id, o[0].id)
        ),
        settled=frozenset().union(*(r.settled for r in runs)),
    )
