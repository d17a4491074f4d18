"""Merging: messages of one customer that would go close together become one email.

A cluster goes at the latest of its members' own times (so none goes before its
`send_after`), which is at most the rule's `window` after the earliest (so none is delayed by
more than the window), inside every member's send window, and before every member expires.
A rule with `at` instead gathers members into the next fixed local time (a daily digest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from cadence.engine.windows import next_local_time, next_open_all
from cadence.model import Message
from cadence.rules.model import Limit, MergeRule, Rules, SendWindow

if TYPE_CHECKING:
    from cadence.engine.limits import PointSet


@dataclass(slots=True)
class Candidate:
    """A message that survived suppression, with the times the planner derives for it."""

    message: Message
    ready: datetime  # max(send_after, now)
    expires: datetime
    priority: int
    window: SendWindow | None
    base: datetime  # ready, moved into its send window


@dataclass(slots=True)
class Unit:
    """What the limits schedule: one email, of one or several candidates (fixed once made)."""

    members: list[Candidate]
    ready: datetime
    rule: MergeRule | None = None
    held_for_digest: bool = False  # waits for a fixed `at` time, not just its window
    # `ready` is known to be inside every member's window (next_open said so): the slot
    # search need not ask again, each time the unit is placed anew
    ready_open: bool = False
    windows: list[SendWindow | None] = field(init=False)
    limits: list[tuple[Limit, PointSet]] | None = None  # set by the planner, once
    # worked out once: the planner compares units by them again and again while placing
    priority: int = field(init=False)
    expires: datetime = field(init=False)
    lead: Candidate = field(init=False)
    rank: tuple[int, datetime, str] = field(init=False)  # who goes first at the same slot

    def __post_init__(self) -> None:
        members = self.members
        self.windows = [c.window for c in members]
        if len(members) == 1:  # most units
            self.lead = lead = members[0]
            self.priority, self.expires = lead.priority, lead.expires
        else:
            self.priority = max(c.priority for c in members)
            self.expires = min(c.expires for c in members)
            self.lead = min(members, key=lambda c: (-c.priority, c.base, c.message.id))
        # who goes first at the same slot: the higher priority, then who asked first (its
        # own send_after, not when it became ready: a plan made later, once every waiting
        # message is ready "now", must keep the order an earlier plan gave them)
        asked = self.lead.message.send_after or self.ready
        self.rank = (-self.priority, asked, self.lead.message.id)


def form_units(candidates: list[Candidate], rules: Rules, tz: ZoneInfo) -> list[Unit]:
    """Cluster candidates under the merge rules (first matching rule wins); the rest go
    alone."""
    units: list[Unit] = []
    remaining = sorted(candidates, key=lambda c: (c.base, -c.priority, c.message.id))
    for rule in rules.merge:
        matching = [c for c in remaining if rule.filter.matches(c.message)]
        if len(matching) < 2 and rule.at is None:
            continue
        taken: set[str] = set()
        clusters = _at_clusters(matching, rule, tz) if rule.at else _rolling(matching, rule, tz)
        for members, when in clusters:
            if len(members) < 2 and rule.at is None:
                continue
            units.append(
                Unit(members, when, rule, held_for_digest=rule.at is not None, ready_open=True)
            )
            taken.update(c.message.id for c in members)
        remaining = [c for c in remaining if c.message.id not in taken]
    units.extend(Unit([c], c.base, ready_open=True) for c in remaining)
    return units


def _rolling(
    matching: list[Candidate], rule: MergeRule, tz: ZoneInfo
) -> list[tuple[list[Candidate], datetime]]:
    clusters: list[tuple[list[Candidate], datetime]] = []
    i = 0
    while i < len(matching):
        first = matching[i]
        members = [first]
        j = i + 1
        while (
            j < len(matching)
            and len(members) < rule.max_items
            and matching[j].base - first.base <= rule.window
        ):
            members.append(matching[j])
            j += 1
        # alone, the first is no cluster (form_units lets it go on its own): no time to fit
        when = _fit(members, first.base + rule.window, tz) if len(members) > 1 else None
        while when is None and len(members) > 1:
            members.pop()  # the last one starts the next cluster instead
            when = _fit(members, first.base + rule.window, tz)
        # first.base for one alone: inside its own window, as a cluster's time is
        clusters.append((members, when if when is not None else first.base))
        i += len(members)
    return clusters


def _fit(members: list[Candidate], latest: datetime, tz: ZoneInfo) -> datetime | None:
    """The time a cluster can go: after every member is ready, inside every window, no later
    than `latest` (the merge window) nor any member's expiry."""
    start = max(c.base for c in members)
    when = next_open_all(start, [c.window for c in members], tz)
    if when is None or when > latest or any(when > c.expires for c in members):
        return None
    return when


def _at_clusters(
    matching: list[Candidate], rule: MergeRule, tz: ZoneInfo
) -> list[tuple[list[Candidate], datetime]]:
    """Fixed-time digests: each member waits for the next `at` after it is ready; those that
    would expire first go alone instead."""
    assert rule.at is not None
    slots: dict[datetime, list[Candidate]] = {}
    for c in matching:
        slot = next_local_time(c.base, rule.at, rule.days, tz)
        opened = next_open_all(slot, [c.window], tz)
        if opened is None or opened > c.expires:
            continue
        slots.setdefault(slot, []).append(c)
    clusters: list[tuple[list[Candidate], datetime]] = []
    for slot in sorted(slots):
        group = slots[slot]
        for k in range(0, len(group), rule.max_items):
            chunk = group[k : k + rule.max_items]
            when = next_open_all(slot, [c.window for c in chunk], tz)
            if when is not None and all(when <= c.expires for c in chunk):
                clusters.append((chunk, when))
    return clusters
