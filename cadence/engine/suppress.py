"""Why a message must never go: the customer's own choices first, then the team's rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cadence.durations import format_duration
from cadence.engine.explain import touch_label
from cadence.engine.scope import ScopeFactory
from cadence.model import CustomerContext, Message, MessageKind
from cadence.rules.model import Expression, ExpressionError, Rules, SameKey
from cadence.views import message_view

#: built-in rule names, for the customer's own actions (they beat every rule file)
HARD_BOUNCE = "hard-bounce"
SPAM_REPORT = "spam-report"
UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True)
class Verdict:
    rule: str
    reason: str
    held: bool = False  # an error, not a decision: the message waits for fixed rules


def reachability(ctx: CustomerContext, message: Message) -> Verdict | None:
    """What the customer asked for, or what their mailbox said, whatever the rules say."""
    reach = ctx.customer.reach
    if message.to == "owner":
        return None  # an internal alert goes to our own staff, not to this address
    if reach.hard_bounced:
        return Verdict(HARD_BOUNCE, "the address hard-bounced; nothing more is sent to it")
    if message.transactional:
        return None
    if reach.spam_reported:
        return Verdict(SPAM_REPORT, "the customer reported our mail as spam")
    if reach.unsubscribed_all:
        return Verdict(UNSUBSCRIBED, "the customer unsubscribed from all non-transactional mail")
    if message.category is not None and message.category in reach.unsubscribed_categories:
        return Verdict(UNSUBSCRIBED, f"the customer unsubscribed from {message.category} mail")
    return None


def _key(message: Message, same: SameKey) -> str | None:
    if same == SameKey.TOPIC:
        return message.topic
    if same == SameKey.CATEGORY:
        return message.category
    return message.template


def describe(message: Message) -> str:
    """A message as a decision names it: "an sales message m-1", "Kim's call m-2 (success)"."""
    if message.channel != "email":
        return touch_label(message)
    origin = " (recorded from another system)" if message.kind == MessageKind.RECORDED else ""
    who = "a person's" if message.human else "an"
    return f"{who} {message.role} message {message.id}{origin}"


def by_rules(
    ctx: CustomerContext,
    rules: Rules,
    message: Message,
    ready: datetime,
    planned_before: Sequence[tuple[datetime, Message]],
    scopes: ScopeFactory | None = None,
) -> Verdict | None:
    """The first suppress rule that matches, evaluated as of the message's own time `ready`.

    `planned_before` holds the messages that will go and come earlier in this plan: a later
    message on the same topic as one of them is the redundant one.
    """
    scope: dict[str, Any] = {}  # the message's scope, made by the first `when` that needs it
    for rule in rules.index.applicable(message).suppress:  # those whose filter matches
        redundant = None
        if rule.same is not None and rule.within is not None:
            redundant = _earlier_same(
                ctx, rule.same, rule.within, message, ready, planned_before, rule.filter.channels
            )
            if redundant is None:
                continue
        if rule.when is not None:
            scopes = scopes or ScopeFactory(ctx.customer, ctx.history, ctx.last_contact)
            try:
                hit = bool(evaluate(rule.when, scopes, ready, message, scope))
            except ExpressionError as exc:
                return Verdict(rule.name, f"held: rule {rule.name} failed: {exc}", held=True)
            if not hit:
                continue
        if redundant is not None:
            return Verdict(rule.name, f"{rule.name}: {redundant}")
        if rule.when is not None:
            return Verdict(rule.name, f"{rule.name}: `{rule.when.source}` holds")
        # a rule with filters only suppresses everything it matches: the way to turn off a
        # kind of redundant automated mail altogether
        return Verdict(rule.name, f"{rule.name}: turned off for {rule.filter.describe()}")
    return None


_CUSTOMER_ONLY = frozenset({"customer"})


def evaluate(
    when: Expression,
    scopes: ScopeFactory,
    ready: datetime,
    message: Message,
    scope: dict[str, Any],
) -> Any:
    """`when` as of `ready` for `message`; `scope` is filled at the first call for the
    message (with the message's view only once an expression reads `message`)."""
    if when.names is not None and when.names <= _CUSTOMER_ONLY:
        return scopes.customer_only(when, ready)
    if not scope:
        scope.update(scopes.scope(ready))
    if "message" not in scope and when.reads("message"):
        scope["message"] = message_view(message)
    return when.evaluate(scope)


def _earlier_same(
    ctx: CustomerContext,
    same: SameKey,
    within: timedelta,
    message: Message,
    ready: datetime,
    planned_before: Sequence[tuple[datetime, Message]],
    channels: frozenset[str] | None,
) -> str | None:
    """Why `message` is redundant under `same`/`within`, or None if it is not. Earlier mail
    makes a later message redundant; a touch recorded from elsewhere (a call, a meeting, an
    email a person wrote) does so on either side, since nothing moves it: a call booked for
    tomorrow covers today's automated email on its topic. Only touches of the rule's
    `channels` count, when it names them."""
    key = _key(message, same)
    if key is None:
        return None
    since = ready - within
    for sent in ctx.history:
        if not since <= sent.at <= ready + within:
            continue
        for other in sent.members:
            if other.id == message.id or _key(other, same) != key:
                continue
            if channels is not None and other.channel not in channels:
                continue
            if sent.at > ready and other.kind != MessageKind.RECORDED:
                continue
            if sent.at > ready or other.planned:
                when = f"is planned for {sent.at:%Y-%m-%d %H:%M} UTC"
            else:
                when = f"went out {sent.at:%Y-%m-%d %H:%M} UTC"
            return (
                f"redundant: {describe(other)} on the same {same} `{key}` {when}, "
                f"within {format_duration(within)}"
            )
    for at, other in planned_before:
        if since <= at <= ready and _key(other, same) == key:
            return (
                f"redundant: {describe(other)} on the same {same} `{key}` is planned "
                f"earlier, within {format_duration(within)}"
            )
    return None
