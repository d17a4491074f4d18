"""SendGrid's event webhook, pure: the signature check, and a batch turned into ledger events.

No I/O here, so both halves are tested without a server or a database (`cadence.feedback.ledger`
does the storing). What SendGrid does, as its docs and its own Python helper say: with "Signed
Event Webhook Requests" on, every POST carries `X-Twilio-Email-Event-Webhook-Timestamp` and
`X-Twilio-Email-Event-Webhook-Signature`; the signature is ECDSA P-256 with SHA-256 over the
timestamp header followed by the raw body, sent as base64 DER; the verification key shown in
the settings is base64 DER SubjectPublicKeyInfo (a PEM file's body without its armour).

A batch is a JSON array of event objects. Our emails carry `custom_args` (see
`cadence.delivery.transports.sendgrid`), which SendGrid copies as top-level keys into each
event: that is how an event finds its customer and email. Events without them (other systems
sharing the account) are none of our business and are only counted. Events with them must be
well formed, or the whole batch is refused: half a batch stored is worse than a retry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from cadence.delivery.transports.sendgrid import (
    ARG_CATEGORIES,
    ARG_CUSTOMER,
    ARG_EMAIL,
    ARG_MESSAGES,
)
from cadence.model import EmailStatus, Event

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

#: The one place that says which SendGrid events settle an `unconfirmed` email of ours, and
#: as what. Each of them proves SendGrid took the email, so it is never sent again. `dropped`
#: says SendGrid took it and will not deliver it (a suppressed or invalid address, spam
#: content): the email failed, with SendGrid's reason. Every other one says it went on.
SETTLING: Mapping[str, EmailStatus] = MappingProxyType(
    {
        "processed": EmailStatus.SENT,
        "delivered": EmailStatus.SENT,
        "deferred": EmailStatus.SENT,
        "bounce": EmailStatus.SENT,
        "open": EmailStatus.SENT,
        "click": EmailStatus.SENT,
        "spamreport": EmailStatus.SENT,
        "unsubscribe": EmailStatus.SENT,
        "group_unsubscribe": EmailStatus.SENT,
        "group_resubscribe": EmailStatus.SENT,
        "dropped": EmailStatus.FAILED,
    }
)


#: a signed post is a replay when its timestamp is older than this: SendGrid posts within
#: seconds and retries a failed post for up to a day, so anything older is someone re-sending
#: a post they captured (a bounce or an unsubscribe, applied again)
MAX_SIGNATURE_AGE = timedelta(days=1)
#: clocks differ: a timestamp this far ahead of ours is still SendGrid's, one further is not
MAX_SIGNATURE_AHEAD = timedelta(minutes=5)


class BadPublicKey(ValueError):
    """The configured verification key is not an ECDSA P-256 public key."""


class MalformedBatch(ValueError):
    """The body is not a batch of SendGrid events; the message says what is wrong."""


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The key as SendGrid shows it (base64 DER SubjectPublicKeyInfo), or as a PEM file.
    Checked once at start, so a bad key is a start-up error, not a 403 for every batch."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise BadPublicKey(f"not a base64 DER (or PEM) public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise BadPublicKey("not an ECDSA P-256 public key, which is what SendGrid signs with")
    return key


def verify_signature(
    key: ec.EllipticCurvePublicKey, timestamp: str | None, body: bytes, signature: str | None
) -> bool:
    """Whether SendGrid signed exactly this body at exactly this timestamp. A missing header,
    bad base64 or a signature of anything else is simply False."""
    if not timestamp or not signature:
        return False
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error, UnicodeEncodeError):
        return False
    return True


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{seconds} seconds"


def stale_signature(timestamp: str | None, now: datetime) -> str | None:
    """Why a post's signing time is not acceptable as of `now`, or None when it is recent.

    The signature covers the timestamp, so a valid signature with an old timestamp is a
    genuine post replayed. The caller passes `now`: this module reads no clock."""
    text = (timestamp or "").strip()
    if not text.isascii() or not text.isdigit():
        return f"the {TIMESTAMP_HEADER} header is not unix seconds"
    try:
        signed = datetime.fromtimestamp(int(text), UTC)
    except (OverflowError, OSError, ValueError):
        return f"the {TIMESTAMP_HEADER} header {text} is out of range"
    if now - signed > MAX_SIGNATURE_AGE:
        return (
            f"signed {_span(now - signed)} ago ({signed.isoformat()}); a post signed more "
            f"than {_span(MAX_SIGNATURE_AGE)} ago is refused as a replay"
        )
    if signed - now > MAX_SIGNATURE_AHEAD:
        return (
            f"signed {_span(signed - now)} in the future ({signed.isoformat()}); more than "
            f"{_span(MAX_SIGNATURE_AHEAD)} ahead of this server's clock is refused"
        )
    return None


@dataclass(frozen=True, slots=True)
class Mapped:
    """One of our SendGrid events, as the ledger keeps it (`event`), the digest of the raw
    event for dedupe, the email it settles, and the address it concerns."""

    sg_event_id: str
    event: Event | None  # None: the event only settles an email (e.g. `processed`)
    digest: str
    customer_id: str
    settles: str | None = None  # an email id that SendGrid demonstrably took
    address: str | None = None  # the recipient address the event is about
    settles_as: EmailStatus | None = None  # what `settles` becomes: SETTLING[event]
    failure: str | None = None  # why, when it settles the email as failed


@dataclass(frozen=True, slots=True)
class Batch:
    """A parsed batch: our events in order, and how many others there were."""

    events: tuple[Mapped, ...] = ()
    ignored: int = 0  # not ours (no custom_args), or of no interest to the ledger
    repeated: int = 0  # the same sg_event_id twice in this very batch
    reasons: dict[str, int] = field(default_factory=dict)  # why each ignored one was


def digest_of(raw: dict[str, Any]) -> str:
    """sha256 of the event's canonical JSON: the same event posted again is the same digest."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _csv(value: object) -> list[str]:
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def _ledger(name: str, raw: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The ledger event type and data for a SendGrid event name, None when it has none."""
    address = raw.get("email")
    reason = raw.get("reason") or raw.get("response")
    if name == "bounce":
        # SendGrid: type "bounce" is a permanent rejection, "blocked" a temporary one
        hard = raw.get("type", "bounce") == "bounce"
        return "bounced", {"kind": "hard" if hard else "soft", "email": address, "reason": reason}
    if name == "deferred":
        return "bounced", {"kind": "soft", "email": address, "reason": reason}
    if name == "spamreport":
        return "spam_reported", {"email": address}
    if name in ("unsubscribe", "group_unsubscribe", "group_resubscribe"):
        cats = _csv(raw.get(ARG_CATEGORIES))  # none: every non-transactional category
        kind = "resubscribed" if name == "group_resubscribe" else "unsubscribed"
        return kind, {"categories": cats} if cats else {}
    if name == "delivered":
        return "delivered", {"response": raw.get("response")}
    if name == "open":
        return "opened", {"machine_open": raw.get("sg_machine_open")}
    if name == "click":
        return "clicked", {"url": raw.get("url")}
    return None


def _ours(raw: dict[str, Any]) -> bool:
    return ARG_CUSTOMER in raw or ARG_EMAIL in raw


def _check(raw: dict[str, Any], index: int) -> None:
    """Our events must carry what we rely on; anything else means the body is not SendGrid's."""
    where = f"event {index}"
    for key in ("event", "sg_event_id", ARG_CUSTOMER):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise MalformedBatch(f"{where}: {key!r} must be a non-empty string")
    stamp = raw.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int) or stamp < 0:
        raise MalformedBatch(f"{where}: 'timestamp' must be unix seconds (an integer)")
    for key in (ARG_EMAIL, ARG_MESSAGES, ARG_CATEGORIES, "email", "url"):
        if key in raw and raw[key] is not None and not isinstance(raw[key], str):
            raise MalformedBatch(f"{where}: {key!r} must be a string")
    try:
        datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedBatch(f"{where}: 'timestamp' {stamp} is out of range") from None


def map_event(raw: dict[str, Any]) -> Mapped | None:
    """One well-formed event of ours as the ledger keeps it; None when it means nothing to us.

    The event id is `sg:<sg_event_id>` (SendGrid's own id: a retried post is a repeat, not a
    second event); its time is SendGrid's `timestamp`; the raw event is kept in `data.sendgrid`
    so nothing SendGrid said is lost."""
    name = str(raw["event"])
    email_id = raw.get(ARG_EMAIL) or None
    customer = str(raw[ARG_CUSTOMER])
    settles_as = SETTLING.get(name) if email_id else None
    settles = email_id if settles_as is not None else None
    ledger = _ledger(name, raw)
    if ledger is None and settles is None:
        return None
    digest = digest_of(raw)
    event = None
    if ledger is not None:
        type_, data = ledger
        data = {k: v for k, v in data.items() if v is not None}
        if email_id:
            data["email_id"] = email_id
        messages = _csv(raw.get(ARG_MESSAGES))
        if messages:
            data["messages"] = messages
        data["sendgrid"] = raw
        at = datetime.fromtimestamp(int(raw["timestamp"]), UTC)
        event = Event(f"sg:{raw['sg_event_id']}", customer, type_, at, data)
    address = raw.get("email") if isinstance(raw.get("email"), str) else None
    failure = None
    if settles_as is EmailStatus.FAILED:  # SendGrid's reason, on one line, as a status reason
        why = " ".join(str(raw.get("reason") or raw.get("response") or "").split())
        failure = f"{name} by SendGrid: {why or 'no reason given'}"
    return Mapped(
        str(raw["sg_event_id"]), event, digest, customer, settles, address, settles_as, failure
    )


def parse_batch(body: bytes) -> Batch:
    """Our events of a batch, in order, once each; raises MalformedBatch when the body is not
    a JSON array of objects, or one of our events lacks what we rely on."""
    try:
        batch = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedBatch(f"not JSON: {exc}") from None
    if not isinstance(batch, list):
        raise MalformedBatch("expected a JSON array of events")
    out: list[Mapped] = []
    seen: set[str] = set()
    ignored = repeated = 0
    reasons: dict[str, int] = {}
    for index, raw in enumerate(batch):
        if not isinstance(raw, dict):
            raise MalformedBatch(f"event {index}: expected an object")
        if not _ours(raw):
            ignored += 1
            reasons["not ours"] = reasons.get("not ours", 0) + 1
            continue
        _check(raw, index)
        mapped = map_event(raw)
        if mapped is None:
            ignored += 1
            key = f"event {raw['event']!r}"
            reasons[key] = reasons.get(key, 0) + 1
        elif mapped.sg_event_id in seen:
            repeated += 1
        else:
            seen.add(mapped.sg_event_id)
            out.append(mapped)
    return Batch(tuple(out), ignored, repeated, reasons)
