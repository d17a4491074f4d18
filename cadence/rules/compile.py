"""From validated rule files to the frozen objects the planner reads: durations, days, hours and
expressions parsed here (days and hours by `clock_text`), with the file position of anything
that does not make sense."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cadence.durations import parse_duration
from cadence.rules.calendars import read_closures
from cadence.rules.clock_text import parse_at, parse_days, parse_hours
from cadence.rules.errors import RuleError
from cadence.rules.expressions import ExpressionSyntaxError, compile_expression
from cadence.rules.model import (
    DEFAULT_PRIORITIES,
    CalendarUnit,
    CancelRule,
    Expression,
    Filter,
    HoldRule,
    Limit,
    Location,
    MergeRule,
    Over,
    Playbook,
    PlaybookSend,
    Rules,
    SameKey,
    Scope,
    SendWindow,
    SuppressRule,
)
from cadence.rules.schema import _Filters

if TYPE_CHECKING:
    from cadence.rules.loader import Positions

# the day and hour parsers are read from here too, where they used to live
__all__ = ["Builder", "parse_at", "parse_days", "parse_hours"]

# spans that mean nothing at zero (a window of no time, a sweep that never ends); a zero
# `wait` or `cooldown` is fine
_POSITIVE = frozenset({"per", "min_gap", "within", "window", "every", "max_delay"})
_CALENDAR = {
    "1d": CalendarUnit.DAY,
    "7d": CalendarUnit.WEEK,
    "1w": CalendarUnit.WEEK,
    "month": CalendarUnit.MONTH,
    "1mo": CalendarUnit.MONTH,
}


def _filter(item: _Filters) -> Filter:
    def fs(values: list[str] | None) -> frozenset[str] | None:
        return frozenset(values) if values is not None else None

    return Filter(
        fs(item.roles), fs(item.categories), fs(item.topics), item.human, fs(item.channels)
    )


class Builder:
    """Collects rules from every file, checking what one file alone cannot (unique names,
    one `max_delay`, consistent priorities)."""

    def __init__(self) -> None:
        self.errors: list[RuleError] = []
        self.priorities: dict[str, int] = dict(DEFAULT_PRIORITIES)
        self._priority_set: dict[str, tuple[int, Location]] = {}
        self.max_delay: timedelta | None = None
        self._max_delay_at: Location | None = None
        self.names: dict[str, Location] = {}
        self.limits: list[Limit] = []
        self.windows: list[SendWindow] = []
        self.suppress: list[SuppressRule] = []
        self.hold: list[HoldRule] = []
        self.merge: list[MergeRule] = []
        self.playbooks: list[Playbook] = []
        self.cancel: list[CancelRule] = []

    # -- helpers that turn a bad value into an error at its place ---------------------------

    def _loc(self, p: Positions, loc: Sequence[str | int]) -> Location:
        line, col = p.at(loc)
        return Location(p.file, line, col)

    def _fail(self, p: Positions, loc: Sequence[str | int], message: str) -> None:
        self.errors.append(p.error(loc, message))

    def _duration(
        self, p: Positions, loc: Sequence[str | int], text: str | None
    ) -> timedelta | None:
        if text is None:
            return None
        try:
            value = parse_duration(text)
        except ValueError as exc:
            self._fail(p, loc, str(exc))
            return None
        if value <= timedelta(0) and loc[-1] in _POSITIVE:
            self._fail(p, loc, f"`{loc[-1]}` must be longer than 0, e.g. 7d")
            return None
        return value

    def _expr(self, p: Positions, loc: Sequence[str | int], text: str | None) -> Expression | None:
        if text is None:
            return None
        try:
            return compile_expression(text, self._loc(p, loc))
        except ExpressionSyntaxError as exc:
            self._fail(p, loc, str(exc))
            return None

    def _name(self, p: Positions, loc: Sequence[str | int], name: str) -> None:
        here = self._loc(p, loc)
        if name in self.names:
            self._fail(p, loc, f"the name `{name}` is already used at {self.names[name]}")
        else:
            self.names[name] = here

    # -- one file ---------------------------------------------------------------------------

    def add_top(
        self, p: Positions, priorities: dict[str, int] | None, max_delay: str | None
    ) -> None:
        if priorities:
            for role, value in priorities.items():
                seen = self._priority_set.get(role)
                if seen is None:  # the first place it is set is the one to point at
                    self._priority_set[role] = (value, self._loc(p, ("priorities", role)))
                    self.priorities[role] = value
                elif seen[0] != value:
                    self._fail(
                        p,
                        ("priorities", role),
                        f"priority of `{role}` is already {seen[0]} at {seen[1]}",
                    )
        if max_delay is not None:
            if self._max_delay_at is not None:
                self._fail(p, ("max_delay",), f"max_delay is already set at {self._max_delay_at}")
            else:
                self._max_delay_at = self._loc(p, ("max_delay",))
                self.max_delay = self._duration(p, ("max_delay",), max_delay)

    def add_item(self, p: Positions, section: str, index: int, item: Any) -> None:
        handler = {
            "limits": self._limit,
            "send_windows": self._window,
            "suppress": self._suppress,
            "hold": self._hold,
            "merge": self._merge,
            "playbooks": self._playbook,
            "cancel": self._cancel,
        }[section]
        handler(p, (section, index), item)

    def _limit(self, p: Positions, at: tuple[str, int], x: Any) -> None:
        self._name(p, (*at, "name"), x.name)
        if x.min_gap is None and x.max is None and x.per is None:
            self._fail(p, at, f"limit `{x.name}` needs `max` with `per`, or `min_gap`")
            return
        if (x.max is None) != (x.per is None):
            missing = "per" if x.per is None else "max"
            self._fail(p, at, f"limit `{x.name}`: `max` and `per` go together; add `{missing}`")
            return
        calendar = per = None
        if x.window == "calendar":
            calendar = _CALENDAR.get((x.per or "").strip())
            if calendar is None:
                self._fail(
                    p,
                    (*at, "per" if x.per is not None else "window"),
                    "with window: calendar, `per` is 1d (a day), 7d or 1w (a week from Monday) "
                    "or month",
                )
                return
        elif x.per is not None and x.per.strip() in ("month", "1mo"):
            self._fail(
                p,
                (*at, "per"),
                "`per: month` is a calendar month: add `window: calendar`, or write a "
                "rolling span like 30d",
            )
            return
        else:
            per = self._duration(p, (*at, "per"), x.per)
        gap = self._duration(p, (*at, "min_gap"), x.min_gap)
        self.limits.append(
            Limit(
                name=x.name,
                location=self._loc(p, at),
                filter=_filter(x),
                max=x.max,
                per=per,
                calendar=calendar,
                min_gap=gap,
                scope=Scope(x.scope),
                over=Over(x.over),
                when=self._customer_expr(p, (*at, "when"), x.when, f"limit `{x.name}`"),
            )
        )

    def _customer_expr(
        self, p: Positions, loc: Sequence[str | int], text: str | None, what: str
    ) -> Expression | None:
        """An expression that may read only the customer (and `now` and the helpers): it
        says for whom a rule applies, before any message is looked at."""
        expression = self._expr(p, loc, text)
        if expression is not None and expression.reads("message"):
            self._fail(p, loc, f"{what}: `when` is about the customer; it cannot read `message`")
            return None
        return expression

    def _window(self, p: Positions, at: tuple[str, int], x: Any) -> None:
        try:
            days = parse_days(x.days)
        except ValueError as exc:
            self._fail(p, (*at, "days"), str(exc))
            return
        try:
            start, end = parse_hours(x.hours)
        except ValueError as exc:
            self._fail(p, (*at, "hours"), str(exc))
            return
        blackouts, holidays, problems = read_closures(x.blackouts, x.holidays)
        for where, problem in problems:
            self._fail(p, (*at, *where), problem)
        self.windows.append(
            SendWindow(
                location=self._loc(p, at),
                filter=_filter(x),
                days=days,
                start=start,
                end=end,
                name=x.name,
                blackouts=blackouts,
                holidays=holidays,
            )
        )

    def _suppress(self, p: Positions, at: tuple[str, int], x: Any) -> None:
        self._name(p, (*at, "name"), x.name)
        within = self._duration(p, (*at, "within"), x.within)
        if x.same is not None and x.within is None:
            self._fail(
                p,
                (*at, "same"),
                f"suppress rule `{x.name}`: `same` needs `within` (e.g. within: 14d)",
            )
            return
        self.suppress.append(
            SuppressRule(
                name=x.name,
                location=self._loc(p, at),
                filter=_filter(x),
                when=self._expr(p, (*at, "when"), x.when),
                same=SameKey(x.same) if x.same else None,
                within=within,
            )
        )

    def _hold(self, p: Positions, at: tuple[str, int], x: Any) -> None:
        self._name(p, (*at, "name"), x.name)
        condition = self._expr(p, (*at, "while"), x.while_)
        if condition is None:
            return
        self.hold.append(
            HoldRule(name=x.name, location=self._loc(p, at), while_=condition, filter=_filter(x))
        )

    def _cancel(self, p: Positions, at: tuple[str, int], x: Any) -> None:
        self._name(p, (*at, "name"), x.name)
        on = (x.on,) if isinstance(x.on, str) else tuple(x.on)
        when = self._expr(p, (*at, "when"), x.when)
        self.cancel.append(CancelRule(x.name, self._loc(p, at), on, _filter(x), when))

    def _merge(self, p: Positions, at: tuple[str, int], x: Any) -> None:
        self._name(p, (*at, "name"), x.name)
        window = self._duration(p, (*at, "window"), x.window) or timedelta(hours=48)
        at_time = days = None
        failed = False
        if x.at is not None:
            try:
                at_time = parse_at(x.at)
            except ValueError as exc:
                self._fail(p, (*at, "at"), str(exc))
                failed = True
        if x.days is not None:
            try:
                days = parse_days(x.days)
            except ValueError as exc:
                self._fail(p, (*at, "days"), str(exc))
                failed = True
            if x.at is None:
                self._fail(p, (*at, "days"), '`days` goes with `at` (e.g. at: "09:00")')
                failed = True
        if failed:
            return
        self.merge.append(
            MergeRule(
                name=x.name,
                location=self._loc(p, at),
                filter=_filter(x),
                window=window,
                max_items=x.max_items,
                template=x.template,
                at=at_time,
                days=days,
            )
        )

    def _playbook(self, p: Positions, at: tuple[str, int], x: Any) -> None:
        self._name(p, (*at, "name"), x.name)
        on = (x.on,) if isinstance(x.on, str) else tuple(x.on or ())
        every = self._duration(p, (*at, "every"), x.every)
        if not on and x.every is None:
            self._fail(p, at, f"playbook `{x.name}` needs `on` (event types) or `every` (a sweep)")
            return
        s = x.send
        if s.template is None and (s.subject is None or s.body_text is None):
            self._fail(
                p,
                (*at, "send"),
                f"playbook `{x.name}`: `send` needs `template`, or `subject` and `body_text`",
            )
            return
        send = PlaybookSend(
            role=s.role,
            category=s.category,
            topic=s.topic,
            template=s.template,
            data=dict(s.data),
            subject=s.subject,
            body_text=s.body_text,
            priority=s.priority,
            transactional=s.transactional,
            expires_after=self._duration(p, (*at, "send", "expires_after"), s.expires_after),
            to=s.to,
        )
        self.playbooks.append(
            Playbook(
                name=x.name,
                location=self._loc(p, at),
                send=send,
                on=on,
                every=every,
                when=self._expr(p, (*at, "when"), x.when),
                wait=self._duration(p, (*at, "wait"), x.wait) or timedelta(0),
                cancel_on=tuple(x.cancel_on),
                cooldown=self._duration(p, (*at, "cooldown"), x.cooldown),
            )
        )

    def rules(self, *, version: str, files: tuple[str, ...]) -> Rules:
        return Rules(
            version=version,
            priorities=dict(self.priorities),
            max_delay=self.max_delay or timedelta(days=7),
            limits=tuple(self.limits),
            send_windows=tuple(self.windows),
            suppress=tuple(self.suppress),
            hold=tuple(self.hold),
            merge=tuple(self.merge),
            playbooks=tuple(self.playbooks),
            cancel=tuple(self.cancel),
            files=files,
        )
