"""One readable sentence per decision: what a CSM needs to know without reading the rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from cadence.durations import format_duration
from cadence.engine.limits import OWN_CAP
from cadence.model import CustomerContext, Email, Message, MessageKind

if TYPE_CHECKING:
    from cadence.engine.limits import Blocked
    from cadence.engine.merge import Candidate
    from cadence.rules.model import SendWindow


def local(t: datetime, tz: ZoneInfo) -> str:
    """`Tue 24 Nov 09:00 EST`: the customer's own clock, which is what rules speak in."""
    key = (t, tz.key)
    text = _LOCAL.get(key)
    if text is None:
        if len(_LOCAL) > 65536:
            _LOCAL.clear()
        text = _LOCAL[key] = t.astimezone(tz).strftime("%a %d %b %H:%M %Z")
    return text


# Times repeat from customer to customer (a window opens at the same local 09:00 for all
# of a zone): each is formatted once.
_LOCAL: dict[tuple[datetime, str | None], str] = {}


def touch_label(message: Message) -> str:
    """A touch other than email, as decisions name it: "Kim's call c-9 (success)", "a
    meeting m-2 (sales, planned)"."""
    who = f"{message.sender.name}'s" if message.sender and message.sender.name else "a"
    planned = ", planned" if message.planned else ""
    return f"{who} {message.channel} {message.id} ({message.role}{planned})"


def _message_label(message: Message) -> str:
    if message.channel != "email":
        return touch_label(message)
    who = f"{message.role} note by a person" if message.human else message.role
    where = " from another system" if message.kind == MessageKind.RECORDED else ""
    return f"{who} {message.id}{where}"


class Planned:
    """The emails placed so far by the planners of customers planned together: a limit of
    the account may count another customer's email, placed a moment before."""

    def __init__(self) -> None:
        self.emails: dict[str, tuple[Sequence[Message], str]] = {}


class Labels:
    """Names for the emails and recorded messages a limit counted."""

    def __init__(self, ctx: CustomerContext, planned: Planned | None = None) -> None:
        # described only when a decision names them: most plans name none
        self._ctx = ctx
        self._labels: dict[str, str] = {}
        self._planned = planned if planned is not None else Planned()
        self._sent: dict[str, tuple[Sequence[Message], str]] | None = None

    @staticmethod
    def _describe(members: Sequence[Message], customer_id: str, ctx: CustomerContext) -> str:
        other = "" if customer_id == ctx.customer.id else f" to {customer_id}"
        if len(members) == 1:
            return _message_label(members[0]) + other
        return "digest of " + ", ".join(m.id for m in members) + other

    def _ledger(self) -> dict[str, tuple[Sequence[Message], str]]:
        """The customer's and the account's ledger by id, built at the first question."""
        if self._sent is None:
            self._sent = {
                s.id: (s.members, s.customer_id)
                for s in (*self._ctx.history, *self._ctx.account_history)
            }
        return self._sent

    @property
    def customer_name(self) -> str:
        return self._ctx.customer.name

    def is_email(self, item_id: str) -> bool:
        """Whether what a limit counted under this id is an email (not a call, a meeting)."""
        planned = self._planned.emails.get(item_id)
        if planned is not None:
            return True
        found = self._ledger().get(item_id)
        return found is None or all(m.channel == "email" for m in found[0])

    def add_email(self, email: Email, members: Sequence[Message]) -> None:
        self._planned.emails[email.id] = (members, email.customer_id)  # worded if named
        self._labels.pop(email.id, None)

    def __getitem__(self, item_id: str) -> str:
        if item_id in self._labels:
            return self._labels[item_id]
        planned = self._planned.emails.get(item_id)
        if planned is not None:
            members, customer_id = planned
            other = "" if customer_id == self._ctx.customer.id else f" to {customer_id}"
            if len(members) == 1:
                label = f"{_message_label(members[0])}{other} (planned)"
            else:
                label = "digest of " + ", ".join(m.id for m in members) + other
            self._labels[item_id] = label
            return label
        found = self._ledger().get(item_id)
        if found is None:
            return item_id
        label = self._labels[item_id] = self._describe(found[0], found[1], self._ctx)
        return label


def held(block: Blocked | None, until: datetime | None, tz: ZoneInfo, labels: Labels) -> str:
    """`: weekly-total already has 3 emails in 7d (sales s-41, ...)`."""
    if block is None:
        return ""
    limit = block.limit
    items = ", ".join(labels[i] for i in block.counted)
    if limit.name == OWN_CAP and limit.max is not None:
        emails = "one email" if limit.max == 1 else f"{limit.max} emails"
        text = f"; {labels.customer_name} asked for at most {emails} a week ({items})"
    elif limit.min_gap is not None and block.counted and limit.max is None:
        text = f"; {limit.name} keeps {format_duration(limit.min_gap)} after {items}"
    elif limit.calendar is not None:
        text = f"; {limit.name} already has {len(block.counted)} this {limit.calendar} ({items})"
    else:
        span = format_duration(limit.per) if limit.per else ""
        scope = " for the account" if limit.scope == "account" else ""
        n = len(block.counted)
        only_email = all(labels.is_email(i) for i in block.counted)
        noun = (
            ("email" if n == 1 else "emails") if only_email else ("touch" if n == 1 else "touches")
        )
        text = f"; {limit.name} already has {n} {noun} in {span}{scope} ({items})"
    if until is not None:
        text += f"; next allowed {local(until, tz)}"
    return text


def window_note(candidate: Candidate, t: datetime, tz: ZoneInfo) -> str:
    window = candidate.window
    if window is None:
        return ""
    note = f", when its send window {_described(window)} opens" if t > candidate.ready else ""
    if window.has_closures:
        # from the message's own time, not the plan's: the pass that sends it plans at the
        # moment it goes, and the days it waited out are still why it went then
        since = max(candidate.message.send_after or candidate.ready, t - _LOOK_BACK)
        shut = closures_between(window, min(since, candidate.ready), t, tz)
        if shut:
            note += f"; held past {', '.join(shut)}"
    return note


def closures_between(window: SendWindow, ready: datetime, t: datetime, tz: ZoneInfo) -> list[str]:
    """Why the window stayed shut from `ready` until `t`: each blackout or holiday on a day
    it would otherwise have opened after `ready`, once ("2026-12-24..2026-12-26 (a
    blackout)", "2026-12-25 (Christmas Day, a US holiday)")."""
    found: list[str] = []
    day, last = ready.astimezone(tz).date() - _ONE_DAY, t.astimezone(tz).date()
    while day <= last:
        if day.weekday() in window.days:
            why = window.closed(day)
            if why is not None and why not in found and _would_open(window, day, ready, t, tz):
                found.append(why)
        day += _ONE_DAY
    return found


def _would_open(window: SendWindow, day: date, ready: datetime, t: datetime, tz: ZoneInfo) -> bool:
    """Whether the window's hours on local `day`, were it not shut, reach past `ready` and
    begin before `t`: the day held the message back."""
    start = datetime.combine(day, window.start, tzinfo=tz)
    if window.start == window.end:
        end = datetime.combine(day + _ONE_DAY, time(0, 0), tzinfo=tz)  # to midnight
    elif window.end > window.start:
        end = datetime.combine(day, window.end, tzinfo=tz)
    else:
        end = datetime.combine(day + _ONE_DAY, window.end, tzinfo=tz)
    return end > ready and start < t


_ONE_DAY = timedelta(days=1)
#: how far back a decision looks for the shut days a message waited out
_LOOK_BACK = timedelta(days=31)


_DESCRIBED: dict[int, tuple[SendWindow, str]] = {}


def _described(window: SendWindow) -> str:
    """`window.describe()`, once per window (by identity, as in `windows._OPENINGS`)."""
    found = _DESCRIBED.get(id(window))
    if found is None or found[0] is not window:
        if len(_DESCRIBED) > 4096:
            _DESCRIBED.clear()
        found = _DESCRIBED[id(window)] = (window, window.describe())
    return found[1]
