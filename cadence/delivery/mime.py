"""`OutgoingEmail` -> an RFC 5322 message (stdlib `email`), for the file and SMTP transports.

Why the policy: Python folds headers at 78 columns and, for a long run without spaces, folds by
turning it into RFC 2047 encoded words. A `List-Unsubscribe: <https://...token>` header treated
that way no longer works in mail clients. RFC 5322 allows lines up to 998 characters, so this
policy folds only beyond that (and uses CRLF, as the wire and .eml files want).
"""

from __future__ import annotations

from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from cadence.delivery.compose import OutgoingEmail

POLICY = policy.SMTP.clone(max_line_length=998)
_ATEXT = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~."
)


def message_id(out: OutgoingEmail) -> str:
    """Deterministic: the same email always has the same Message-ID, so a resend (by an
    operator settling an `unconfirmed` email) is recognisable as the same email downstream."""
    local = "".join(c if c in _ATEXT else "-" for c in out.email_id).strip(".") or "email"
    domain = out.from_email.rpartition("@")[2] or "cadence.invalid"
    return f"<{local}@{domain}>"


def _cte(text: str) -> str:
    if text.isascii() and all(len(line) <= 900 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def to_mime(out: OutgoingEmail, now: datetime) -> EmailMessage:
    """The email as a MIME message: text alone, or multipart/alternative text + html."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = Address(out.from_name or "", addr_spec=out.from_email)
    msg["To"] = Address(out.to_name or "", addr_spec=out.to_email)
    if out.reply_to:
        msg["Reply-To"] = Address(addr_spec=out.reply_to)
    msg["Subject"] = out.subject
    msg["Date"] = format_datetime(out.composed_at or now)
    msg["Message-ID"] = message_id(out)
    for name, value in out.headers:
        msg[name] = value
    msg.set_content(out.text, cte=_cte(out.text))
    if out.html is not None:
        msg.add_alternative(out.html, subtype="html", cte=_cte(out.html))
    return msg


def to_bytes(out: OutgoingEmail, now: datetime) -> bytes:
    """RFC 5322 bytes with CRLF line ends: what an `.eml` file holds and SMTP carries."""
    return to_mime(out, now).as_bytes(policy=POLICY)
