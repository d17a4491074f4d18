"""Hold rules and limits for a segment: what makes a message wait rather than drop, and for
whom a limit applies. Pure, like the rest of the planner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cadence.engine.scope import ScopeFactory
from cadence.engine.suppress import Verdict, evaluate
from cadence.engine.windows import next_local_time, next_open
from cadence.model import Message
from cadence.rules.model import ExpressionError, Limit, Rules, SendWindow

_STEP = timedelta(seconds=1)


def waiting(
    rules: Rules,
    message: Message,
    ready: datetime,
    scopes: ScopeFactory,
) -> Verdict | None:
    """The first hold rule whose `while` holds for the message as of `ready`: it waits (and
    is looked at again), it is not dropped. `held` on the verdict: the expression failed."""
    scope: dict[str, Any] = {}
    for rule in rules.index.applicable(message).hold:
        try:
            hit = bool(evaluate(rule.while_, scopes, ready, message, scope))
        except ExpressionError as exc:
            return Verdict(rule.name, f"held: rule {rule.name} failed: {exc}", held=True)
        if hit:
            return Verdict(rule.name, f"waits while `{rule.while_.source}` holds ({rule.name})")
    return None


def next_look(start: datetime, window: SendWindow | None, tz: ZoneInfo) -> datetime | None:
    """When a waiting message is asked again at the latest: the next opening of its send
    window after `start` (a whole-day window or none: the next local midnight); None if the
    window never opens."""
    opened = next_open(start, window, tz)
    if opened is None or opened > start:
        return opened
    at = window.start if window is not None else time(0, 0)
    found = next_local_time(start + _STEP, at, window.days if window else None, tz)
    if window is not None and window.has_closures:  # not on a day the window stays shut
        return next_open(found, window, tz)
    return found


def limit_condition_failed(
    rules: Rules, message: Message, applies: Callable[[Limit], bool]
) -> Verdict | None:
    """A limit's `when` that fails for this customer holds the messages the limit would
    judge (whether it applies cannot be known); None when every such `when` evaluates."""
    for lim in rules.index.applicable(message).limits:
        if lim.when is not None:
            try:
                applies(lim)
            except ExpressionError as exc:
                return Verdict(lim.name, f"held: limit {lim.name} failed: {exc}", held=True)
    return None
