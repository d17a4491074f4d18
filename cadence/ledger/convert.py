"""Rows to domain values and back: the boundary nothing above the store crosses with a row."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cadence.model import (
    Customer,
    Decision,
    Email,
    Engagement,
    Event,
    Message,
    MessageKind,
    Reachability,
    Sender,
    Status,
)

#: a row as SQLAlchemy (a `RowMapping`) or the driver (a dict) hands it over
Row = Mapping[Any, Any]

# enum members by value, looked up directly rather than through Enum's call, which does far
# more for every row (an unknown value still raises as it did)
_STATUS = {s.value: s for s in Status}
_KIND = {k.value: k for k in MessageKind}


def customer(row: Row) -> Customer:
    return Customer(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        timezone=row["timezone"],
        account=row["account"],
        attributes=row["attributes"] or {},
        created_at=row["created_at"],
        reach=Reachability(
            unsubscribed_all=row["unsubscribed_all"],
            unsubscribed_categories=frozenset(row["unsubscribed_categories"] or ()),
            hard_bounced=row["hard_bounced"],
            soft_bounces=row["soft_bounces"],
            spam_reported=row["spam_reported"],
            max_per_week=row.get("max_per_week"),
        ),
        attributes_at=row.get("attributes_at"),
        engagement=_engagement(row.get("engagement") or {}),
    )


def _engagement(kept: Mapping[str, Any]) -> Engagement:
    return Engagement(
        last_open_at=_time(kept.get("last_open_at")),
        last_click_at=_time(kept.get("last_click_at")),
        last_reply_at=_time(kept.get("last_reply_at")),
        opens=int(kept.get("opens", 0)),
        clicks=int(kept.get("clicks", 0)),
        replies=int(kept.get("replies", 0)),
    )


def engagement_values(e: Engagement) -> dict[str, Any]:
    """A customer's engagement as its row keeps it (one JSON column)."""
    kept: dict[str, Any] = {"opens": e.opens, "clicks": e.clicks, "replies": e.replies}
    for key, at in (
        ("last_open_at", e.last_open_at),
        ("last_click_at", e.last_click_at),
        ("last_reply_at", e.last_reply_at),
    ):
        if at is not None:
            kept[key] = at.astimezone(UTC).isoformat()
    return {"engagement": kept}


def message(row: Row) -> Message:
    sender = Sender(row["sender_email"], row["sender_name"]) if row["sender_email"] else None
    return Message(
        id=row["id"],
        customer_id=row["customer_id"],
        role=row["role"],
        kind=_KIND.get(row["kind"]) or MessageKind(row["kind"]),
        category=row["category"],
        topic=row["topic"],
        template=row["template"],
        data=row["data"] or {},
        subject=row["subject"],
        body_text=row["body_text"],
        body_html=row["body_html"],
        sender=sender,
        human=row["human"],
        transactional=row["transactional"],
        priority=row["priority"],
        send_after=row["send_after"],
        expires_at=row["expires_at"],
        sent_at=row["sent_at"],
        channel=row["channel"],
        summary=row["summary"],
        planned=row["planned"],
        playbook=row["playbook"],
        origin=row["origin"],
        to=row["recipient"],
        created_at=row["created_at"],
    )


def recorded_reason(m: Message) -> str:
    """What a recorded touch's entry says: sent by another system, or a call held, or one
    planned for a time."""
    if m.channel == "email":
        return "sent by another system, recorded"
    what = f"a {m.channel}" + (f": {m.summary}" if m.summary else "")
    if m.planned:
        return f"{what}; planned elsewhere, it counts at its time"
    return f"{what}; recorded"


def message_values(m: Message, digest: str, now: datetime) -> dict[str, Any]:
    recorded = m.kind == MessageKind.RECORDED
    return {
        "id": m.id,
        "customer_id": m.customer_id,
        "kind": str(m.kind),
        "role": m.role,
        "category": m.category,
        "topic": m.topic,
        "template": m.template,
        "data": dict(m.data),
        "subject": m.subject,
        "body_text": m.body_text,
        "body_html": m.body_html,
        "sender_email": m.sender.email if m.sender else None,
        "sender_name": m.sender.name if m.sender else None,
        "human": m.human,
        "transactional": m.transactional,
        "priority": m.priority,
        "send_after": m.send_after,
        "expires_at": m.expires_at,
        "sent_at": m.sent_at,
        "channel": m.channel,
        "summary": m.summary,
        "planned": m.planned,
        "playbook": m.playbook,
        "origin": m.origin,
        "recipient": m.to,
        "created_at": m.created_at or now,
        "digest": digest,
        "status": str(Status.RECORDED if recorded else Status.SCHEDULED),
        "rule": None,
        "reason": recorded_reason(m) if recorded else "not planned yet",
        "send_at": m.sent_at if recorded else None,
        "email_id": None,
        "details": {},
        "rules_version": None,
        "final": recorded,
        "decided_at": now,
        "in_flight": False,
        "cancelled_by": None,
    }


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def email_values(e: Email) -> dict[str, Any]:
    """What a plan says of an email (its time and `columns.EMAIL_CONTENT`), as its row keeps
    it."""
    return {
        "send_at": e.send_at,
        "members": list(e.members),
        "role": e.role,
        "category": e.category,
        "transactional": e.transactional,
        "merge_rule": e.merge_rule,
        "template": e.template,
        "to_owner": e.to_owner,
    }


def reachability_values(reach: Reachability) -> dict[str, Any]:
    """A customer's reachability as its row keeps it."""
    return {
        "unsubscribed_all": reach.unsubscribed_all,
        "unsubscribed_categories": sorted(reach.unsubscribed_categories),
        "hard_bounced": reach.hard_bounced,
        "soft_bounces": reach.soft_bounces,
        "spam_reported": reach.spam_reported,
        "max_per_week": reach.max_per_week,
    }


def history_row(
    *,
    message_id: str,
    customer_id: str,
    decided_at: datetime,
    status: Status | str,
    send_at: datetime | None,
    email_id: str | None,
    rule: str | None,
    reason: str,
    details: Any,
    rules_version: str | None,
) -> dict[str, Any]:
    """A line of decision history (`decisions`), by name: whoever writes one writes these."""
    return {
        "message_id": message_id,
        "customer_id": customer_id,
        "decided_at": decided_at,
        "status": str(status),
        "send_at": send_at,
        "email_id": email_id,
        "rule": rule,
        "reason": reason,
        "details": details,
        "rules_version": rules_version,
    }


def details(d: Decision) -> dict[str, Any]:
    return {
        "counted": list(d.counted),
        "won_by": d.won_by,
        "next_allowed": d.next_allowed.isoformat() if d.next_allowed else None,
        "event": d.event,
    }


def decision(row: Row) -> Decision:
    extra = row["details"] or {}
    return Decision(
        message_id=row.get("message_id") or row["id"],
        status=_STATUS.get(row["status"]) or Status(row["status"]),
        reason=row["reason"],
        send_at=row["send_at"],
        email_id=row["email_id"],
        rule=row["rule"],
        counted=tuple(extra.get("counted") or ()),
        won_by=extra.get("won_by"),
        next_allowed=_time(extra.get("next_allowed")),
        event=extra.get("event"),
        rules_version=row["rules_version"],
        final=bool(row.get("final", False)),
    )


def email(row: Row) -> Email:
    return Email(
        id=row["id"],
        customer_id=row["customer_id"],
        send_at=row["send_at"],
        members=tuple(row["members"]),
        role=row["role"],
        category=row["category"],
        transactional=row["transactional"],
        merge_rule=row["merge_rule"],
        template=row["template"],
        to_owner=row["to_owner"],
    )


def event(row: Row) -> Event:
    return Event(
        id=row["id"],
        customer_id=row["customer_id"],
        type=row["type"],
        at=row["at"],
        data=row["data"] or {},
        attributes=row["attributes"] or {},
    )
