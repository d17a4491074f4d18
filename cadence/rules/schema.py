"""The rule FILE format, as pydantic models: what a CSM may write, with a description of each
key. The loader validates every file against these, and `cadence rules schema` prints them as
a JSON Schema that YAML editors use for completion and checking while the CSM types."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Durations, days, hours and times are text here and parsed by the loader, which knows where
# each value is in the file and can say what is wrong with it there; the patterns only serve
# the JSON Schema, so that an editor flags a typo while the CSM types.
DURATION_PATTERN = r"^\s*\d+\s*[smhdw]\s*$"
Duration = Annotated[
    str, Field(json_schema_extra={"pattern": DURATION_PATTERN, "examples": ["20h", "7d"]})
]
CalendarPer = Annotated[
    str,
    Field(
        json_schema_extra={
            "pattern": r"^\s*(\d+\s*[smhdw]|month|1mo)\s*$",
            "examples": ["7d", "1d", "month"],
        }
    ),
]
Hours = Annotated[
    str,
    Field(
        json_schema_extra={
            "pattern": r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*$",
            "examples": ["09:00-17:00"],
        }
    ),
]
ClockTime = Annotated[
    str, Field(json_schema_extra={"pattern": r"^\s*\d{1,2}:\d{2}\s*$", "examples": ["09:00"]})
]
# a day or a span of days (the loader keeps an unquoted 2027-01-01 as text, and parses it
# where it can say what is wrong with it)
Blackout = Annotated[
    str,
    Field(
        json_schema_extra={
            "pattern": r"^\s*\d{4}-\d{2}-\d{2}(\s*\.\.\s*\d{4}-\d{2}-\d{2})?\s*$",
            "examples": ["2026-12-24..2026-12-26", "2027-01-01"],
        }
    ),
]
# YAML has real integers: `max: true` or `max: "3"` is a mistake, not a number to coerce
Count = Annotated[int, Field(strict=True)]

#: which parser the loader uses for a text field, by key: for messages about a wrong value
TEXT_KINDS = {
    "per": "duration",
    "min_gap": "duration",
    "within": "duration",
    "every": "duration",
    "wait": "duration",
    "cooldown": "duration",
    "expires_after": "duration",
    "max_delay": "duration",
    "window": "duration",  # a merge window; a limit's `window` is rolling|calendar
    "days": "days",
    "hours": "hours",
    "at": "time",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Filters(_Strict):
    roles: list[str] | None = Field(None, description="only messages from these roles")
    categories: list[str] | None = Field(None, description="only messages of these categories")
    topics: list[str] | None = Field(None, description="only messages on these topics")
    human: bool | None = Field(
        None, description="true: only messages written by a person; false: only automated ones"
    )
    channels: list[str] | None = Field(
        None,
        description="only touches on these channels (email, call, meeting, chat, ...); "
        "none: every channel counts",
    )


class LimitFile(_Filters):
    """A frequency cap: `max` emails per `per`, and/or `min_gap` between two. Messages that
    match the filters (none: all) count; transactional ones never do."""

    name: str = Field(description="unique name, shown in every decision this limit makes")
    max: Count | None = Field(None, ge=0, description="at most this many emails per `per`")
    per: CalendarPer | None = Field(
        None,
        description="the span of `max`: a duration (rolling), or with window: calendar "
        "1d (a day), 7d or 1w (a week from Monday) or month",
    )
    min_gap: Duration | None = Field(None, description="at least this long between two emails")
    scope: Literal["customer", "account"] = Field(
        "customer", description="count per customer, or across the whole account"
    )
    over: Literal["defer", "drop"] = Field(
        "defer", description="over the limit: defer to the next allowed time, or drop"
    )
    window: Literal["rolling", "calendar"] = Field(
        "rolling", description="rolling window, or calendar day/week (from Monday)/month"
    )
    when: str | None = Field(
        None,
        description="an expression over the customer: the limit applies only to the "
        "customers for whom it is true (a cap for a segment)",
    )


class SendWindowFile(_Filters):
    """Local days and hours when matching mail may go; the first window that matches wins."""

    name: str | None = Field(None, description="optional name, shown in decisions")
    days: str = Field(
        "mon-sun",
        description="local days: mon-fri, sat,sun, mon-sun, wed; ranges may wrap: fri-mon",
    )
    hours: Hours = Field(
        "00:00-24:00",
        description='local hours, e.g. "09:00-17:30"; an end before the start runs past '
        'midnight; "00:00-24:00" is all day',
    )
    blackouts: list[Blackout] | None = Field(
        None,
        description="local days the window stays shut: dates or ranges, e.g. "
        '["2026-12-24..2026-12-26", "2027-01-01"]',
    )
    holidays: str | None = Field(
        None,
        description="stay shut on public holidays: a country code (US, GB, DE, or a "
        "subdivision like DE-BY), or `customer` for the country in attributes.country",
        json_schema_extra={"examples": ["US", "customer"]},
    )


class HoldFile(_Filters):
    """Matching messages wait while `while` holds, then go through every other rule; one
    that waits past its `expires_at` expires, naming this rule."""

    name: str = Field(description="unique name, shown on every message it holds back")
    while_: str = Field(
        alias="while",
        description="an expression over customer, message, now and the helpers; the message "
        "waits while it is true (looked at again whenever the customer changes, and at each "
        "opening of its send window)",
    )


class CancelFile(_Filters):
    """Pending messages an event cancels: when an event of an `on` type comes for the
    customer, every message of theirs not yet sent that matches the filters (and `when`) is
    cancelled, naming the event and this rule. Transactional mail is never cancelled."""

    name: str = Field(description="unique name, shown on every message it cancels")
    on: str | list[str] = Field(description="the event type(s) that cancel, e.g. replied")
    when: str | None = Field(
        None,
        description="an expression over customer, message, event and the helpers; cancels "
        "only when it is true (e.g. event.data.role == message.role)",
    )


class SuppressFile(_Filters):
    """Matching messages are never sent: always, when `when` is true, or when redundant
    (`same` value within `within`)."""

    name: str = Field(description="unique name, shown on every message it suppresses")
    when: str | None = Field(
        None,
        description="an expression over customer, message, now and the helpers; the message "
        "is suppressed when it is true",
    )
    same: Literal["topic", "category", "template"] | None = Field(
        None, description="suppress a message when an earlier one had the same value"
    )
    within: Duration | None = Field(None, description="with `same`: how far back to look")


class MergeFile(_Filters):
    """Matching messages going out close together become one email (a digest)."""

    name: str = Field(description="unique name, shown on every merged message")
    window: Duration = Field("48h", description="messages going within this span become one email")
    max_items: Count = Field(10, ge=2, description="at most this many messages in one email")
    template: str = Field("digest", description="the template that renders the merged email")
    at: ClockTime | None = Field(
        None, description='a fixed local time, e.g. "09:00": a daily (or with `days` weekly) digest'
    )
    days: str | None = Field(None, description="with `at`: the days it goes, e.g. mon")


class SendFile(_Strict):
    """The message a playbook creates: `template` (with `data`), or `subject` + `body_text`."""

    role: str = Field("success", description="the role the check-in comes from")
    category: str | None = Field("check-in", description="its category")
    topic: str | None = Field(None, description="its topic (same-topic rules compare it)")
    template: str | None = Field(None, description="template name (or subject + body_text)")
    data: dict[str, Any] = Field(default_factory=dict, description="data for the template")
    subject: str | None = Field(None, description="a ready subject, with body_text")
    body_text: str | None = Field(None, description="a ready plain-text body, with subject")
    priority: Count | None = Field(None, description="overrides the role's priority")
    transactional: bool = Field(False, description="true: never held back by fatigue rules")
    expires_after: Duration | None = Field(None, description="how long it may wait to go")
    to: Literal["owner"] | None = Field(
        None, description="owner: an internal alert to customer.owner_email, never capped"
    )


class PlaybookFile(_Strict):
    """A proactive check-in, fired by events (`on`) or by a sweep (`every`)."""

    name: str = Field(description="unique name, shown on every check-in it creates")
    on: str | list[str] | None = Field(None, description="the event type(s) that fire it")
    every: Duration | None = Field(None, description="or: swept this often for every customer")
    when: str | None = Field(None, description="an expression; fires only when true")
    wait: Duration = Field("0m", description="how long after the event the check-in is planned")
    send: SendFile = Field(description="the message it creates")
    cancel_on: list[str] = Field(
        default_factory=list, description="event types that cancel a check-in not yet sent"
    )
    cooldown: Duration | None = Field(
        None, description="no second check-in from this playbook within this span"
    )


class RuleFile(_Strict):
    """One file in the rules folder. Every key is optional; files are combined."""

    priorities: dict[str, Count] | None = Field(
        None, description="role -> priority; the higher wins a contested slot"
    )
    max_delay: Duration | None = Field(
        None, description="default lifetime of a deferred message (expires_at)"
    )
    limits: list[LimitFile] = Field(default_factory=list, description="frequency caps")
    send_windows: list[SendWindowFile] = Field(
        default_factory=list, description="when mail may go, in the customer's local time"
    )
    suppress: list[SuppressFile] = Field(default_factory=list, description="messages never to send")
    hold: list[HoldFile] = Field(
        default_factory=list, description="messages that wait while a condition holds"
    )
    merge: list[MergeFile] = Field(
        default_factory=list, description="messages to send together as one email"
    )
    cancel: list[CancelFile] = Field(
        default_factory=list, description="pending messages an event cancels (a reply, say)"
    )
    playbooks: list[PlaybookFile] = Field(
        default_factory=list, description="proactive check-ins on events or sweeps"
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one rule file (for `cadence rules schema` and editors)."""
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cadence rule file"
    return schema
