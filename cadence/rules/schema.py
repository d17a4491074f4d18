"""The rule FILE format, as pydantic models: what a CSM may write, with a description of each
key. The loader validates every file against these, and `cadence rules schema` prints them as
a JSON Schema that YAML editors use for completion and checking while the CSM types."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Duration = str  # "90m", "20h", "7d", "2w": checked by the loader, which knows where it is


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Filters(_Strict):
    roles: list[str] | None = Field(None, description="only messages from these roles")
    categories: list[str] | None = Field(None, description="only messages of these categories")
    topics: list[str] | None = Field(None, description="only messages on these topics")
    human: bool | None = Field(
        None, description="true: only messages written by a person; false: only automated ones"
    )


class LimitFile(_Filters):
    name: str = Field(description="unique name, shown in every decision this limit makes")
    max: int | None = Field(None, ge=0, description="at most this many emails per `per`")
    per: Duration | None = Field(
        None, description="the window: 7d (rolling), or with window: calendar 1d, 7d or month"
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


class SendWindowFile(_Filters):
    name: str | None = Field(None, description="optional name, shown in decisions")
    days: str = Field("mon-sun", description="local days: mon-fri, sat,sun, mon-sun")
    hours: str = Field("00:00-24:00", description='local hours, e.g. "09:00-17:30"')


class SuppressFile(_Filters):
    name: str = Field(description="unique name, shown on every message it suppresses")
    when: str | None = Field(None, description="an expression; the message is suppressed when true")
    same: Literal["topic", "category", "template"] | None = Field(
        None, description="suppress a message when an earlier one had the same value"
    )
    within: Duration | None = Field(None, description="with `same`: how far back to look")


class MergeFile(_Filters):
    name: str = Field(description="unique name, shown on every merged message")
    window: Duration = Field("48h", description="messages going within this span become one email")
    max_items: int = Field(10, ge=2, description="at most this many messages in one email")
    template: str = Field("digest", description="the template that renders the merged email")
    at: str | None = Field(None, description='a fixed local time, e.g. "09:00": a daily digest')
    days: str | None = Field(None, description="with `at`: the days it goes, e.g. mon")


class SendFile(_Strict):
    role: str = Field("success", description="the role the check-in comes from")
    category: str | None = Field("check-in", description="its category")
    topic: str | None = None
    template: str | None = Field(None, description="template name (or subject + body_text)")
    data: dict[str, Any] = Field(default_factory=dict, description="data for the template")
    subject: str | None = None
    body_text: str | None = None
    priority: int | None = None
    transactional: bool = False
    expires_after: Duration | None = Field(None, description="how long it may wait to go")
    to: Literal["owner"] | None = Field(
        None, description="owner: an internal alert to customer.owner_email, never capped"
    )


class PlaybookFile(_Strict):
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

    priorities: dict[str, int] | None = Field(
        None, description="role -> priority; the higher wins a contested slot"
    )
    max_delay: Duration | None = Field(
        None, description="default lifetime of a deferred message (expires_at)"
    )
    limits: list[LimitFile] = Field(default_factory=list)
    send_windows: list[SendWindowFile] = Field(default_factory=list)
    suppress: list[SuppressFile] = Field(default_factory=list)
    merge: list[MergeFile] = Field(default_factory=list)
    playbooks: list[PlaybookFile] = Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one rule file (for `cadence rules schema` and editors)."""
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cadence rule file"
    return schema
