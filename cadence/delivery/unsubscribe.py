"""Signed one-click unsubscribe tokens (RFC 8058 links): `{base_url}/u/{token}`, and the
preference page's tokens: `{base_url}/p/{token}`.

Why signed and self-contained: the link must work from any mail client without a login and
without a lookup table that could be lost, yet nobody may unsubscribe someone else by editing
the URL. The token carries the customer, the categories and when it was issued; an HMAC-SHA256
over that payload (keyed with the configured secret) makes any change detectable. It is not
encrypted: the customer id in it is not a secret to its own recipient.

Format: `<payload>.<signature>`, both urlsafe base64 without padding; the payload is compact
JSON `{"c": customer_id, "k": categories or null, "t": unix seconds}`.

A token expires (`check_token`): it is issued when its email is sent, and a link found years
later in an old mailbox, a forwarded email or a mail archive must not still act for anyone.
The clock and the time to live are passed in; nothing here reads a clock.

The preference page's token is made the same way and lives as long (`unsubscribe.token_ttl`),
but is signed under another domain string: a signature made for one kind of link means nothing
for the other, so an unsubscribe link cannot be turned into a preference link or back by
editing the URL. Its payload names no categories (`"k": null`): the page itself lists them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cadence.durations import format_duration

# each kind of link signs under its own domain string: a signature means nothing elsewhere
_UNSUBSCRIBE = b"cadence-unsubscribe-v1."
_PREFERENCES = b"cadence-preferences-v1."


class InvalidToken(ValueError):
    """A forged, altered, truncated or malformed token: treat it as no token at all."""


@dataclass(frozen=True, slots=True)
class UnsubscribeClaim:
    customer_id: str
    categories: tuple[str, ...] | None  # None: unsubscribe from everything
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class PreferencesClaim:
    """A preference link's word: this customer may set their own choices."""

    customer_id: str
    issued_at: datetime


class ExpiredToken(InvalidToken):
    """A token we signed, older than its time to live: genuine, but it no longer acts. An
    InvalidToken too, so whoever does not tell the two apart refuses it all the same."""

    def __init__(self, claim: UnsubscribeClaim | PreferencesClaim, ttl: timedelta) -> None:
        self.claim, self.ttl = claim, ttl
        super().__init__(
            f"expired: issued {claim.issued_at.isoformat()}, more than {format_duration(ttl)} "
            "ago (unsubscribe.token_ttl)"
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise InvalidToken("not urlsafe base64")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not urlsafe base64") from None


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _sign(secret: bytes, payload: str, domain: bytes = _UNSUBSCRIBE) -> bytes:
    """The HMAC of `payload` under `domain` (an unsubscribe link's unless another is said)."""
    if not secret:
        raise ValueError("the unsubscribe secret is empty")
    return hmac.new(secret, domain + payload.encode("ascii"), hashlib.sha256).digest()


def _make(
    secret: bytes,
    domain: bytes,
    customer_id: str,
    categories: Sequence[str] | None,
    issued_at: datetime,
) -> str:
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must have a UTC offset")
    body = {
        "c": customer_id,
        "k": sorted(set(categories)) if categories is not None else None,
        "t": int(issued_at.timestamp()),
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_b64(_sign(secret, payload, domain))}"


def make_token(
    secret: bytes, customer_id: str, categories: Sequence[str] | None, issued_at: datetime
) -> str:
    """A token naming the customer and the categories they leave (None: all mail)."""
    return _make(secret, _UNSUBSCRIBE, customer_id, categories, issued_at)


def verify_token(secret: bytes, token: str) -> UnsubscribeClaim:
    """The claim a token makes, if and only if `secret` signed it exactly as it is."""
    return _verify(secret, token, _UNSUBSCRIBE)


def _verify(secret: bytes, token: str, domain: bytes) -> UnsubscribeClaim:
    if not token.isascii():  # every token we make is ASCII; anything else is not ours
        raise InvalidToken("not a token")
    payload, sep, signature = token.partition(".")
    if not sep or not payload or not signature:
        raise InvalidToken("not a cadence token")
    given = _unb64(signature)
    if _b64(given) != signature:  # one signature, one spelling: no trailing-bit variants
        raise InvalidToken("bad signature")
    if not hmac.compare_digest(given, _sign(secret, payload, domain)):
        raise InvalidToken("bad signature")
    try:
        body = json.loads(_unb64(payload).decode("utf-8"))
        customer_id, categories, issued = body["c"], body["k"], body["t"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise InvalidToken("malformed payload") from None
    if not isinstance(customer_id, str) or not isinstance(issued, int):
        raise InvalidToken("malformed payload")
    if categories is not None and (
        not isinstance(categories, list) or not all(isinstance(c, str) for c in categories)
    ):
        raise InvalidToken("malformed payload")
    return UnsubscribeClaim(
        customer_id,
        tuple(categories) if categories is not None else None,
        datetime.fromtimestamp(issued, UTC),
    )


def check_token(secret: bytes, token: str, now: datetime, ttl: timedelta) -> UnsubscribeClaim:
    """The claim of a token `secret` signed exactly as it is and no longer than `ttl` before
    `now`; raises ExpiredToken for an older one, InvalidToken for anything else."""
    claim = verify_token(secret, token)
    if now - claim.issued_at > ttl:
        raise ExpiredToken(claim, ttl)
    return claim


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"


def choose_url(unsubscribe_link: str) -> str:
    """Where an email's "choose which emails you get" points: its unsubscribe link with
    `/preferences` after it. The daemon sends that on to the preference page with a
    preference token it signs then (the same customer, issued when the email was), so an
    email carries one token, and SendGrid's per-copy substitution of the unsubscribe link
    (`sendgrid.batch_key`) covers this link too."""
    return f"{unsubscribe_link}/preferences"


def make_preferences_token(secret: bytes, customer_id: str, issued_at: datetime) -> str:
    """A preference link's token for the customer, issued at `issued_at`."""
    return _make(secret, _PREFERENCES, customer_id, None, issued_at)


def check_preferences_token(
    secret: bytes, token: str, now: datetime, ttl: timedelta
) -> PreferencesClaim:
    """As `check_token`, for a preference link: an unsubscribe token (or anything else not
    signed for the preference page) is an InvalidToken here."""
    signed = _verify(secret, token, _PREFERENCES)
    if signed.categories is not None:  # we never make one with categories: not ours
        raise InvalidToken("malformed payload")
    claim = PreferencesClaim(signed.customer_id, signed.issued_at)
    if now - claim.issued_at > ttl:
        raise ExpiredToken(claim, ttl)
    return claim
