"""Posts shaped as SendGrid's Inbound Parse sends them: multipart/form-data with the parsed
email's fields (`headers`, `from`, `to`, `subject`, `text`, `html`, `envelope`, `charsets`,
`sender_ip`, `spam_score`, `SPF`, `dkim`, `attachments`...), each field in the character set
`charsets` names, attachments as file parts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path

#: the environment variable the test setups keep the unsubscribe secret in
UNSUBSCRIBE_SECRET_ENV = "T_UNSUB_SECRET"


def served_env(
    db_url: str, rules_dir: Path, templates_dir: Path, outbox: Path, key: str
) -> dict[str, str]:
    """Settings, as environment, of a setup whose daemon serves the inbound webhook: the
    file transport into `outbox`, the webhook's key in `T_INBOUND_KEY`, the unsubscribe
    secret in the environment variable `UNSUBSCRIBE_SECRET_ENV` (the caller sets it)."""
    return {
        "CADENCE_DATABASE_URL": db_url,
        "CADENCE_RULES_DIR": str(rules_dir),
        "CADENCE_TEMPLATES_DIR": str(templates_dir),
        "CADENCE_UNSUBSCRIBE__SECRET_ENV": UNSUBSCRIBE_SECRET_ENV,
        "CADENCE_TRANSPORT__KIND": "file",
        "CADENCE_TRANSPORT__FILE__DIR": str(outbox),
        "CADENCE_HTTP__SENDGRID_INBOUND_KEY_ENV": "T_INBOUND_KEY",
        "T_INBOUND_KEY": key,
    }


def reply_fields(
    sender: str,
    subject: str = "Re: How is it going?",
    *,
    message_id: str | None = "<CAF=reply-1@mail.acme.test>",
    in_reply_to: str | None = None,
    references: str | None = None,
    text: str = "Thanks, all good here.\n\nOn Monday you wrote:\n> Is everything working?\n",
    extra_headers: str = "",
) -> dict[str, str]:
    """The fields of one reply, as SendGrid's parsed mode posts them."""
    headers = [
        "Received: by mx.sendgrid.net with SMTP id abc; Mon, 23 Nov 2026 15:00:00 +0000",
        f"From: {sender}",
        "To: replies@vendor.test",
        f"Subject: {subject}",
        "Date: Mon, 23 Nov 2026 15:00:00 +0000",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="000000000000abc"',
    ]
    if message_id:
        headers.append(f"Message-ID: {message_id}")
    if in_reply_to:
        headers.append(f"In-Reply-To: {in_reply_to}")
    if references:
        headers.append(f"References: {references}")
    address = sender.rpartition("<")[2].rstrip(">") if "<" in sender else sender
    fields = {
        "headers": "\n".join(headers) + "\n" + extra_headers,
        "dkim": "{@acme.test : pass}",
        "to": "replies@vendor.test",
        "html": f"<div>{text}</div>",
        "from": sender,
        "text": text,
        "sender_ip": "203.0.113.9",
        "spam_report": "",
        "envelope": json.dumps({"to": ["replies@vendor.test"], "from": address}),
        "attachments": "0",
        "subject": subject,
        "spam_score": "0.1",
        "SPF": "pass",
    }
    fields["charsets"] = json.dumps({k: "UTF-8" for k in ("to", "html", "subject", "from", "text")})
    return fields


def multipart(
    fields: Mapping[str, str],
    *,
    charsets: Mapping[str, str] | None = None,
    files: Mapping[str, tuple[str, bytes]] | None = None,
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """The body and Content-Type of a form-data post: each field encoded in the character set
    `charsets` names for it (else UTF-8), which the `charsets` field then says."""
    boundary = boundary or f"xYzZY{uuid.uuid4().hex}"
    fields = dict(fields)
    if charsets:
        named = json.loads(fields.get("charsets", "{}"))
        named.update(charsets)
        fields["charsets"] = json.dumps(named)
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode((charsets or {}).get(name, "utf-8")) + b"\r\n"
    for name, (filename, data) in (files or {}).items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
