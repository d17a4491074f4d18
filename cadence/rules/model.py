"""Compiled rules: what the planner reads. Built once at load by `cadence.rules.loader`, frozen.

These are not the file format (that is `cadence.rules.schema`, pydantic); they are the checked,
resolved form, with durations as `timedelta`, days as weekday numbers and expressions compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cadence.model import Message
from cadence.rules.calendars import CUSTOMER, DateRange, describe_range, holiday_on
from cadence.rules.index import RuleIndex

DEFAULT_PRIORITIES: Mapping[str, int] = MappingProxyType(
    {"support": 100, "billing": 90, "success": 70, "sales": 50, "product": 30, "marketing": 10}
)
DEFAULT_PRIORITY = 0  # a role missing from `priorities`


@dataclass(frozen=True, slots=True)
class Location:
    """Where a rule was written, for messages that point a person at it."""

    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ExpressionError(Exception):
    """An expression failed while being evaluated (not at load: those are RuleErrors)."""


@dataclass(frozen=True, slots=True)
class Expression:
    """A `when` expression compiled once at load; `evaluate` runs it over a scope of names
    (`customer`, `message`, `event`, `now` and the helper functions)."""

    source: str
    location: Location
    run: Callable[[Mapping[str, Any]], Any] = field(repr=False, compare=False)
    #: the names it reads, found at compile time; None: not known, any of them
    names: frozenset[str] | None = field(default=None, repr=False, compare=False)

    def reads(self, name: str) -> bool:
        return self.names is None or name in self.names

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        try:
            return self.run(scope)
        except ExpressionError:
            raise
        except Exception as exc:  # any failure of user code is reported, never raised as is
            # a reason is never empty: a bare MemoryError or KeyError() still names itself
            why = str(exc) or type(exc).__name__
            raise ExpressionError(f"`{self.source}` ({self.location}): {why}") from exc


@dataclass(frozen=True, slots=True)
class Filter:
    """Which messages a rule is about; an unset field matches everything."""

    roles: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    topics: frozenset[str] | None = None
    human: bool | None = None
    #: the channels it counts and judges (none: every channel, calls and meetings included)
    channels: frozenset[str] | None = None

    def matches(self, message: Message) -> bool:
        return self.matches_fields(
            message.role, message.category, message.topic, message.human, message.channel
        )

    def matches_fields(
        self, role: object, category: object, topic: object, human: bool, channel: object
    ) -> bool:
        """`matches` on the five fields a filter reads (the rule index asks it of classes
        of messages, not of messages)."""
        return (
            (self.roles is None or role in self.roles)
            and (self.categories is None or category in self.categories)
            and (self.topics is None or topic in self.topics)
            and (self.human is None or human == self.human)
            and (self.channels is None or channel in self.channels)
        )

    def describe(self) -> str:
        parts = []
        if self.roles is not None:
            parts.append("roles " + ", ".join(sorted(self.roles)))
        if self.categories is not None:
            parts.append("categories " + ", ".join(sorted(self.categories)))
        if self.topics is not None:
            parts.append("topics " + ", ".join(sorted(self.topics)))
        if self.human is not None:
            parts.append("human" if self.human else "automated")
        if self.channels is not None:
            parts.append("channels " + ", ".join(sorted(self.channels)))
        return "; ".join(parts) or "all messages"


class Scope(StrEnum):
    CUSTOMER = "customer"
    ACCOUNT = "account"


class Over(StrEnum):
    DEFER = "defer"
    DROP = "drop"


class CalendarUnit(StrEnum):
    DAY = "day"
    WEEK = "week"  # from Monday, local time
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Limit:
    """A frequency cap: at most `max` matching emails in any window of `per` (rolling), or in
    each calendar `calendar` period; and/or at least `min_gap` between two matching emails."""

    name: str
    location: Location
    filter: Filter = Filter()
    max: int | None = None
    per: timedelta | None = None
    calendar: CalendarUnit | None = None  # set when `window: calendar`
    min_gap: timedelta | None = None
    scope: Scope = Scope.CUSTOMER
    over: Over = Over.DEFER
    when: Expression | None = None  # over the customer: for whom the limit applies


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Local days and hours when a matching non-transactional email may go. `end` before
    `start` means the window runs past midnight into the next day."""

    location: Location
    filter: Filter = Filter()
    days: frozenset[int] = frozenset(range(7))  # 0 = Monday
    start: time = time(0, 0)
    end: time = time(0, 0)  # start == end: the whole day
    name: str | None = None
    #: local days it stays shut, each a (first, last) span, both ends included
    blackouts: tuple[DateRange, ...] = ()
    #: a holiday calendar (`US`, `DE-BY`), or `customer`: the planner swaps in the customer's
    #: own country (`for_country`) before it asks for an opening
    holidays: str | None = None

    def describe(self) -> str:
        names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        days = ",".join(names[d] for d in sorted(self.days))
        label = f"{days} {self.start:%H:%M}-{self.end:%H:%M}"
        return f"{self.name} ({label})" if self.name else label

    @property
    def has_closures(self) -> bool:
        return bool(self.blackouts) or self.holidays is not None

    def closed(self, day: date) -> str | None:
        """Why local `day` is shut ("2026-12-24..2026-12-26 (a blackout)", "2026-12-25
        (Christmas Day, a US holiday)"), or None when the window may open on it. `holidays:
        customer` not yet resolved to a country closes nothing."""
        for span in self.blackouts:
            if span[0] <= day <= span[1]:
                return f"{describe_range(span)} (a blackout)"
        if self.holidays is not None and self.holidays != CUSTOMER:
            name = holiday_on(self.holidays, day)
            if name is not None:
                return f"{day} ({name}, a {self.holidays} holiday)"
        return None

    def for_country(self, country: str | None) -> SendWindow:
        """This window with `holidays: customer` read as `country`'s calendar (none: no
        holidays); a window with a fixed calendar, or none, is itself."""
        if self.holidays != CUSTOMER:
            return self
        return replace(self, holidays=country)


class SameKey(StrEnum):
    TOPIC = "topic"
    CATEGORY = "category"
    TEMPLATE = "template"


@dataclass(frozen=True, slots=True)
class SuppressRule:
    name: str
    location: Location
    filter: Filter = Filter()
    when: Expression | None = None
    same: SameKey | None = None
    within: timedelta | None = None


@dataclass(frozen=True, slots=True)
class HoldRule:
    """Matching messages wait while `while_` holds (then every other rule applies)."""

    name: str
    location: Location
    while_: Expression
    filter: Filter = Filter()


@dataclass(frozen=True, slots=True)
class CancelRule:
    """When an event of one of the `on` types comes for a customer, their pending messages
    that match (and for which `when`, over the event and the message, holds) are cancelled:
    a reply ends the automated follow-ups, say. Only messages created before the event."""

    name: str
    location: Location
    on: tuple[str, ...]
    filter: Filter = Filter()
    when: Expression | None = None


@dataclass(frozen=True, slots=True)
class MergeRule:
    name: str
    location: Location
    filter: Filter = Filter()
    window: timedelta = timedelta(hours=48)
    max_items: int = 10
    template: str = "digest"
    at: time | None = None  # a fixed local time: a daily/weekly digest
    days: frozenset[int] | None = None  # with `at`: the days it goes


@dataclass(frozen=True, slots=True)
class PlaybookSend:
    """The message a playbook creates; the fields of a submitted message."""

    role: str = "success"
    category: str | None = "check-in"
    topic: str | None = None
    template: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    subject: str | None = None
    body_text: str | None = None
    priority: int | None = None
    transactional: bool = False
    expires_after: timedelta | None = None
    to: str | None = None  # "owner": an internal alert to customer.owner_email


@dataclass(frozen=True, slots=True)
class Playbook:
    name: str
    location: Location
    send: PlaybookSend
    on: tuple[str, ...] = ()  # event types; empty with `every` set: a sweep
    every: timedelta | None = None
    when: Expression | None = None
    wait: timedelta = timedelta(0)
    cancel_on: tuple[str, ...] = ()
    cooldown: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    """One consistent set of rules, as read from a rules folder at one moment."""

    version: str  # a digest of the rule files' bytes: decisions say which rules made them
    priorities: Mapping[str, int] = field(default_factory=lambda: DEFAULT_PRIORITIES)
    max_delay: timedelta = timedelta(days=7)
    limits: tuple[Limit, ...] = ()
    send_windows: tuple[SendWindow, ...] = ()
    suppress: tuple[SuppressRule, ...] = ()
    merge: tuple[MergeRule, ...] = ()
    playbooks: tuple[Playbook, ...] = ()
    files: tuple[str, ...] = ()
    hold: tuple[HoldRule, ...] = ()
    cancel: tuple[CancelRule, ...] = ()
    #: which rules can apply to which messages, built with the rules (never passed in)
    index: RuleIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", RuleIndex(self))

    def priority_of(self, message: Message) -> int:
        if message.priority is not None:
            return message.priority
        return self.priorities.get(message.role, DEFAULT_PRIORITY)

    @property
    def plans_accounts(self) -> bool:
        """Whether the customers of an account are planned together: a limit counts the
        account's mail, so each customer's plan depends on the others'."""
        return any(lim.scope == Scope.ACCOUNT for lim in self.limits)

    def lookback(self) -> timedelta:
        """How far back the planner must see the ledger to apply every rule."""
        spans = [timedelta(days=1)]
        spans += [lim.per for lim in self.limits if lim.per is not None]
        spans += [lim.min_gap for lim in self.limits if lim.min_gap is not None]
        spans += [rule.within for rule in self.suppress if rule.within is not None]
        spans += [rule.window for rule in self.merge]
        spans += [timedelta(days=31) for lim in self.limits if lim.calendar is not None]
        return max(spans)

    def templates(self) -> frozenset[str]:
        """Every template the rules name (merge digests and playbook messages)."""
        names = {rule.template for rule in self.merge}
        names |= {pb.send.template for pb in self.playbooks if pb.send.template}
        return frozenset(names)


EMPTY_RULES = Rules(version="none")
