"""Domain types shared by every layer: plain frozen values, no I/O.

The planner (`cadence.engine`) works only on these; the store turns rows into them and its
results back into rows. Times are always timezone-aware UTC `datetime`s; the local time of a
customer is computed where it is needed (send windows, calendar limits, display).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})


class Status(StrEnum):
    """Where a message stands. Every message has exactly one, with the reason for it."""

    SCHEDULED = "scheduled"  # will go as its own email at `send_at`
    MERGED = "merged"  # will go inside a merged email (a digest)
    DEFERRED = "deferred"  # a limit pushed it later; it has a `send_at`
    SUPPRESSED = "suppressed"  # will never be sent (a rule, an unsubscribe, a bounce, a drop)
    EXPIRED = "expired"  # could not go before its `expires_at`
    CANCELLED = "cancelled"  # withdrawn by a person or by a playbook's `cancel_on` event
    HELD = "held"  # an error (expression, template) stops it; fixed rules release it
    SENT = "sent"
    RECORDED = "recorded"  # sent elsewhere, written into the ledger
    FAILED = "failed"  # the transport refused it for good
    UNCONFIRMED = "unconfirmed"  # the provider may have it; settled by an event or an operator


#: statuses after which the planner never looks at the message again
SETTLED = frozenset(
    {Status.SENT, Status.RECORDED, Status.CANCELLED, Status.FAILED, Status.UNCONFIRMED}
)
#: statuses whose message is on its way (an email is planned for it)
PLANNED = frozenset({Status.SCHEDULED, Status.MERGED, Status.DEFERRED})


class MessageKind(StrEnum):
    SUBMITTED = "submitted"  # cadence is asked to send it
    RECORDED = "recorded"  # already sent by another system


class EmailStatus(StrEnum):
    PLANNED = "planned"  # decided by the planner; rebuilt freely until claimed
    CLAIMED = "claimed"  # a daemon holds a lease on it; nothing has left yet
    SENDING = "sending"  # handed to the transport; outcome not yet written
    SENT = "sent"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"  # a daemon died while SENDING: never re-sent automatically


@dataclass(frozen=True, slots=True)
class Sender:
    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Reachability:
    """What the customer's own actions allow, whatever the rules say."""

    unsubscribed_all: bool = False
    unsubscribed_categories: frozenset[str] = frozenset()
    hard_bounced: bool = False
    soft_bounces: int = 0
    spam_reported: bool = False
    #: the most non-transactional emails a week the customer asked for, across every role
    #: (their preference page, or a CRM's `preferences_changed`); None: as they come
    max_per_week: int | None = None


@dataclass(frozen=True, slots=True)
class Engagement:
    """How the customer answers our mail, from the provider's events and their replies:
    what rules read as `customer.last_open_at`, `customer.opens`, and so on."""

    last_open_at: datetime | None = None
    last_click_at: datetime | None = None
    last_reply_at: datetime | None = None
    opens: int = 0
    clicks: int = 0
    replies: int = 0


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    email: str
    name: str
    timezone: str | None = None  # None: the configured default_timezone
    account: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    created_at: datetime | None = None
    reach: Reachability = Reachability()
    #: when the attributes were last set by an event (an older event does not overwrite them)
    attributes_at: datetime | None = None
    engagement: Engagement = Engagement()


@dataclass(frozen=True, slots=True)
class Message:
    """One customer-facing communication from one role."""

    id: str
    customer_id: str
    role: str
    kind: MessageKind = MessageKind.SUBMITTED
    category: str | None = None
    topic: str | None = None
    template: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    sender: Sender | None = None
    human: bool = False
    transactional: bool = False
    priority: int | None = None
    send_after: datetime | None = None  # None only for recorded messages
    expires_at: datetime | None = None  # None: send_after + the rules' max_delay
    sent_at: datetime | None = None  # recorded messages
    playbook: str | None = None  # the playbook that created it
    origin: str | None = None  # the event id (or sweep) that created it
    to: str | None = None  # "owner": an internal alert to customer.owner_email
    created_at: datetime | None = None
    #: how it reached the customer: cadence sends `email`; recorded touches may be a `call`,
    #: a `meeting`, a `chat`, or any channel a team names
    channel: str = "email"
    summary: str | None = None  # a recorded touch's short account, in place of a body
    #: a touch planned elsewhere (a booked call): `sent_at` is when it is planned for, and it
    #: counts then, as a planned email does, until it is recorded again as done
    planned: bool = False

    def expires(self, max_delay: timedelta, now: datetime) -> datetime:
        """When it can no longer go: its own `expires_at`, else `max_delay` after it may
        first go (`now` for one with no `send_after`). The planner expires it then, and a
        retry is never put past it."""
        return self.expires_at or (self.send_after or now) + max_delay


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    customer_id: str
    type: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    attributes: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Sent:
    """One email as it counts against the rules: sent (or on its way), or recorded from
    another system. A merged email counts once, through its members."""

    id: str
    at: datetime
    customer_id: str
    members: tuple[Message, ...]

    @property
    def transactional(self) -> bool:
        return all(m.transactional for m in self.members)


@dataclass(frozen=True, slots=True)
class Email:
    """What the planner proposes to send: one message, or several merged into one."""

    id: str
    customer_id: str
    send_at: datetime
    members: tuple[str, ...]
    role: str
    category: str | None
    transactional: bool
    merge_rule: str | None = None
    template: str | None = None  # the merge rule's template for a digest
    to_owner: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The planner's verdict on one message, with everything a person needs to read it."""

    message_id: str
    status: Status
    reason: str
    send_at: datetime | None = None
    email_id: str | None = None
    rule: str | None = None
    counted: tuple[str, ...] = ()  # ids of the emails/recorded messages that filled the limit
    won_by: str | None = None  # the message that took the slot
    next_allowed: datetime | None = None  # the earliest time every rule allows
    event: str | None = None  # the event that cancelled it
    rules_version: str | None = None
    final: bool = False  # True: the planner never revisits it


@dataclass(frozen=True, slots=True)
class CustomerContext:
    """Everything the planner needs for one customer, read by the store in a few queries."""

    customer: Customer
    pending: tuple[Message, ...]  # open messages (not settled)
    history: tuple[Sent, ...] = ()  # this customer's sent emails and recorded messages
    # what the account's other customers were sent: they are planned with this customer
    # (`plan_account`), so what is planned for them is not history
    account_history: tuple[Sent, ...] = ()
    last_contact: Mapping[str, datetime] = field(default_factory=dict)
    previous: Mapping[str, Decision] = field(default_factory=dict)  # current decisions
    # when each playbook last created a (not cancelled) message for this customer: cooldowns
    # reach further back than the ledger slice
    playbook_runs: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    customer_id: str
    as_of: datetime
    emails: tuple[Email, ...]
    decisions: tuple[Decision, ...]
    next_plan_at: datetime | None  # when this plan must be looked at again, if nothing changes
