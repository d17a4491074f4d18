"""SendGrid's event webhook, pure: signature check and events -> ledger events.

No I/O here, so both halves are tested without a server. The signature is ECDSA P-256 over the
`X-Twilio-Email-Event-Webhook-Timestamp` header followed by the raw body; the public key
SendGrid shows is base64 DER (SubjectPublicKeyInfo), the signature base64 DER.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from cadence.model import Event

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class MalformedBatch(ValueError):
    pass


def verify(
    public_key_b64: str, timestamp: str | None, body: bytes, signature_b64: str | None
) -> bool:
    """Whether SendGrid signed exactly this body at this timestamp."""
    if not timestamp or not signature_b64:
        return False
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        key.verify(
            base64.b64decode(signature_b64), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


@dataclass(frozen=True, slots=True)
class Mapped:
    event: Event
    digest: str
    settles: str | None = None  # an email id that a `delivered` event proves was sent


def _kind(raw: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    name = raw.get("event")
    if name == "bounce":
        hard = raw.get("type", "bounce") == "bounce"
        return "bounced", {"kind": "hard" if hard else "soft", "reason": raw.get("reason")}
    if name in ("deferred", "blocked"):
        return "bounced", {"kind": "soft", "reason": raw.get("response") or raw.get("reason")}
    if name == "spamreport":
        return "spam_reported", {}
    if name in ("unsubscribe", "group_unsubscribe"):
        cats = [c for c in str(raw.get("cadence_categories") or "").split(",") if c]
        return "unsubscribed", {"categories": cats} if cats else {}
    if name == "delivered":
        return "delivered", {}
    if name == "open":
        return "opened", {}
    if name == "click":
        return "clicked", {"url": raw.get("url")}
    return None


def parse(body: bytes) -> tuple[list[Mapped], int]:
    """Our events of a batch, and how many were ignored (not ours, or of no interest).
    Raises MalformedBatch when the body is not a JSON array of event objects."""
    try:
        batch = json.loads(body)
    except ValueError as exc:
        raise MalformedBatch(f"not JSON: {exc}") from None
    if not isinstance(batch, list) or not all(isinstance(e, dict) for e in batch):
        raise MalformedBatch("expected a JSON array of event objects")
    out: list[Mapped] = []
    ignored = 0
    for raw in batch:
        customer, email = raw.get("cadence_customer"), raw.get("cadence_email")
        sg_id, stamp = raw.get("sg_event_id"), raw.get("timestamp")
        if not isinstance(sg_id, str) or not isinstance(stamp, int):
            raise MalformedBatch("every event needs sg_event_id and a unix timestamp")
        kind = _kind(raw)
        if not customer or kind is None:
            ignored += 1
            continue
        type_, data = kind
        data = {k: v for k, v in data.items() if v is not None}
        if email:
            data["email_id"] = email
        data["provider_event"] = raw  # the raw payload is kept
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
        event = Event(f"sg:{sg_id}", str(customer), type_, datetime.fromtimestamp(stamp, UTC), data)
        out.append(Mapped(event, digest, str(email) if type_ == "delivered" and email else None))
    return out, ignored
