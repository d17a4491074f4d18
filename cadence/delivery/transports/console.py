"""The `console` transport: a readable summary and the text part of each email, for trying
rules without sending."""

from __future__ import annotations

import sys
from typing import TextIO

from cadence.delivery.compose import H_UNSUBSCRIBE, OutgoingEmail
from cadence.delivery.transports.base import SendResult, TransportError


class ConsoleTransport:
    """Prints a readable summary and the text part: for trying rules without sending."""

    concurrency = 1

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, out: OutgoingEmail) -> SendResult:
        stream = self.stream or sys.stdout
        to = f"{out.to_name} <{out.to_email}>" if out.to_name else out.to_email
        sender = f"{out.from_name} <{out.from_email}>" if out.from_name else out.from_email
        kind = "transactional" if out.transactional else ", ".join(out.categories) or "-"
        lines = [
            f"=== email {out.email_id} to {to}",
            f"From: {sender}",
        ]
        if out.reply_to:
            lines.append(f"Reply-To: {out.reply_to}")
        lines += [
            f"Subject: {out.subject}",
            f"Messages: {', '.join(out.message_ids)} ({kind})",
        ]
        unsubscribe = out.header(H_UNSUBSCRIBE)
        if unsubscribe:
            lines.append(f"{H_UNSUBSCRIBE}: {unsubscribe}")
        if out.html is not None:
            lines.append("(with an HTML part)")
        try:
            stream.write("\n".join(lines) + "\n\n" + out.text.rstrip("\n") + "\n\n")
            stream.flush()
        except (OSError, ValueError) as exc:
            # a closed pipe (`cadence run --once | head`) or stream: this transport knows
            # nobody read the email, so it is a failure to retry, never `unconfirmed`
            raise TransportError(f"cannot write to the console: {exc}") from exc
        return SendResult(None)

    def close(self) -> None:
        pass
