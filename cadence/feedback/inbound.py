"""SendGrid's Inbound Parse posts, read: who wrote, about which of our emails, and whether a
person did. Pure (bytes in, values out): no store, no clock, no HTTP.

SendGrid posts each email it receives for the reply domain as multipart/form-data. By default
the email comes parsed: `from`, `to`, `subject`, `text`, `html`, `headers` (the raw header
block), `envelope` (JSON: the SMTP `from` and `to`), `charsets` (JSON: the character set of
each field), `attachments` and the attachments themselves. With "POST the raw, full MIME
message" ticked, a field `email` holds the whole message instead. Both are read here.

Why the standard library reads the form: python-multipart is not a dependency of cadence, and
`email` parses multipart bodies (form-data is MIME) as well as it parses the email inside.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses

#: the In-Reply-To and References ids looked up as our emails, nearest first; a long thread
#: names many, and the nearest are the ones that say which email this answers
MAX_REFERENCES = 20
#: what of a subject the event keeps
MAX_SUBJECT = 300

_MSG_ID = re.compile(r"<([^<>\s]+)>")
_AUTO_PRECEDENCE = frozenset({"auto_reply", "bulk", "junk", "list"})


class MalformedInbound(ValueError):
    """Not an Inbound Parse post: the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One email a person sent to our reply address, as far as the ledger cares."""

    sender: str  # the address in From (else the envelope's), as written
    subject: str
    #: local parts of the Message-IDs it answers (In-Reply-To, then References from the
    #: nearest): our Message-IDs are `<email id@sender domain>` (`delivery.mime.message_id`)
    answers: tuple[str, ...]
    #: what identifies this email across SendGrid's retries of the post: its own Message-ID,
    #: else a digest of what it says (a retried post may come with another boundary)
    key: str
    automatic: str | None  # why it is a machine's answer (out of office...), None: a person's


def form_fields(body: bytes, content_type: str) -> dict[str, str]:
    """The text fields of a multipart/form-data body, each decoded with the character set
    SendGrid's `charsets` names for it (UTF-8 otherwise). Attachments are skipped unread."""
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        raise MalformedInbound(f"expected multipart/form-data, not {content_type or 'nothing'}")
    if "\r" in content_type or "\n" in content_type:
        raise MalformedInbound("a line break in the Content-Type")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    form = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not form.is_multipart():
        raise MalformedInbound("the form has no parts (no boundary?)")
    raw: dict[str, bytes] = {}
    for part in form.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        raw[name] = payload if isinstance(payload, bytes) else b""
    if not raw:
        raise MalformedInbound("the form has no fields")
    charsets: dict[str, object] = {}
    if "charsets" in raw:
        try:
            named = json.loads(raw["charsets"].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            named = None
        charsets = named if isinstance(named, dict) else {}
    return {name: _decode(value, charsets.get(name)) for name, value in raw.items()}


def _decode(value: bytes, charset: object) -> str:
    try:
        codec = codecs.lookup(charset if isinstance(charset, str) else "utf-8").name
    except LookupError:
        codec = "utf-8"
    return value.decode(codec, errors="replace")


def read_reply(fields: Mapping[str, str]) -> Reply:
    """The reply an Inbound Parse post carries. Raises MalformedInbound when it names no
    sender at all."""
    if fields.get("email"):  # "raw" mode: the whole message
        message: Message = BytesParser(policy=policy.default).parsebytes(
            fields["email"].encode("utf-8", errors="surrogateescape"), headersonly=True
        )
        headers = message
        from_ = str(message.get("From", ""))
        subject = str(message.get("Subject", ""))
    else:
        headers = HeaderParser(policy=policy.compat32).parsestr(fields.get("headers", ""))
        from_ = fields.get("from") or str(headers.get("From", ""))
        subject = fields.get("subject") or str(headers.get("Subject", ""))
    sender = _address(from_) or _envelope_sender(fields.get("envelope", ""))
    if not sender:
        raise MalformedInbound("no sender: neither From nor the envelope names an address")
    own_id = _ids(str(headers.get("Message-ID", "")))
    replying = _ids(str(headers.get("In-Reply-To", "")))
    thread = list(reversed(_ids(str(headers.get("References", "")))))
    answers: list[str] = []
    for mid in [*replying, *thread]:
        local = mid.rpartition("@")[0]
        if local and local not in answers:
            answers.append(local)
    if own_id:
        key = "message-id:" + own_id[0]
    else:
        what = "\x1f".join(
            fields.get(k, "") for k in ("email", "headers", "from", "to", "subject", "text")
        )
        key = "digest:" + hashlib.sha256(what.encode("utf-8", errors="replace")).hexdigest()
    return Reply(
        sender=sender,
        subject=" ".join(subject.split())[:MAX_SUBJECT],
        answers=tuple(answers[:MAX_REFERENCES]),
        key=key,
        automatic=_automatic(headers),
    )


def _address(value: str) -> str:
    found = [addr for _, addr in getaddresses([value]) if "@" in addr]
    return found[0].strip() if found else ""


def _envelope_sender(envelope: str) -> str:
    try:
        data = json.loads(envelope) if envelope else None
    except ValueError:
        return ""
    sender = data.get("from") if isinstance(data, dict) else None
    return _address(sender) if isinstance(sender, str) else ""


def _ids(value: str) -> list[str]:
    return _MSG_ID.findall(value)


def _automatic(headers: Message) -> str | None:
    """Why this is a machine's answer, by the headers mail systems set on one: an out of
    office or a list's bounce is not the customer replying, and must not cancel a check-in
    nor count as contact."""
    submitted = str(headers.get("Auto-Submitted", "")).strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = str(headers.get("Precedence", "")).strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if headers.get(name) is not None:
            return name
    return None


def mask(address: str) -> str:
    """An address as the log may show it: the first letter and the domain."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"
