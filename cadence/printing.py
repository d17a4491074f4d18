"""Previews and decisions written out: the contract's JSON and the Rich tables. The command
line and the daemon's control socket both print through here, so a preview the daemon
answers is, byte for byte, the one the command prints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

from cadence.model import Decision, Email, Message, MessageKind, Status
from cadence.table_fit import fit
from cadence.words import plural

if TYPE_CHECKING:
    from rich.console import Console

    from cadence.flows.preview import Preview
    from cadence.ledger.listing import LedgerEntry, PlannedEmail

STATUS_STYLE = {
    Status.SCHEDULED: "green",
    Status.MERGED: "cyan",
    Status.DEFERRED: "yellow",
    Status.SUPPRESSED: "red",
    Status.EXPIRED: "red",
    Status.CANCELLED: "magenta",
    Status.HELD: "bold red",
    Status.SENT: "green",
    Status.RECORDED: "dim",
    Status.FAILED: "bold red",
    Status.UNCONFIRMED: "bold yellow",
}


def iso(t: datetime | None) -> str | None:
    """UTC with a Z, the contract's form."""
    if t is None:
        return None
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_iso(t: datetime, tz: str) -> str:
    return t.astimezone(ZoneInfo(tz)).isoformat()


def local_short(t: datetime | None, tz: str) -> str:
    if t is None:
        return ""
    return t.astimezone(ZoneInfo(tz)).strftime("%a %d %b %H:%M")


def decision_json(d: Decision) -> dict[str, Any]:
    return {
        "message": d.message_id,
        "status": str(d.status),
        "send_at": iso(d.send_at),
        "email": d.email_id,
        "rule": d.rule,
        "reason": d.reason,
        "counted": list(d.counted),
        "won_by": d.won_by,
        "next_allowed": iso(d.next_allowed),
        "event": d.event,
        "rules_version": d.rules_version,
    }


def email_json(email: Email, tz: str, rendered: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": email.id,
        "send_at": iso(email.send_at),
        "send_at_local": local_iso(email.send_at, tz),
        "role": email.role,
        "category": email.category,
        "subject": (rendered or {}).get("subject"),
        "members": list(email.members),
        "merge_rule": email.merge_rule,
        "transactional": email.transactional,
        "to_owner": email.to_owner,
    }
    if rendered and "from_email" in rendered:
        out["from"] = {"email": rendered["from_email"], "name": rendered.get("from_name")}
    if rendered and "text" in rendered:
        out["body_text"] = rendered["text"]
        out["body_html"] = rendered.get("html")
    return out


def _sender(address: str | None, name: str | None) -> str:
    """`Vendor Sales <sales@vendor.test>`, as a mail client shows who it is from."""
    if address is None:
        return ""
    return f"{name} <{address}>" if name else address


def touch_kind(message: Message) -> str | None:
    """How a touch other than email reached the customer, as the tables show it: "call",
    "meeting (planned)"; None for an email."""
    if message.channel == "email":
        return None
    return f"{message.channel} (planned)" if message.planned else message.channel


def preview_json(p: Preview) -> dict[str, Any]:
    decisions = []
    for d in p.decisions:
        item = decision_json(d)
        message = p.messages.get(d.message_id)
        if message is not None:
            item["role"] = message.role
            item["category"] = message.category
            item["created_by"] = _origin(message.playbook, message.origin)
            item["channel"] = message.channel
            if message.kind == MessageKind.RECORDED:
                # a touch recorded from elsewhere: its own account of itself, and whether it
                # is only planned (it counts at its time all the same)
                item["summary"] = message.summary
                item["planned"] = message.planned
        decisions.append(item)
    return {
        "customer": p.customer_id,
        "as_of": iso(p.as_of),
        "timezone": p.timezone,
        "days": p.days,
        "emails": [email_json(e, p.timezone, p.rendered.get(e.id)) for e in p.emails],
        "decisions": decisions,
    }


def _origin(playbook: str | None, origin: str | None) -> str | None:
    if playbook is None:
        return None
    return f"playbook {playbook} ({origin})" if origin else f"playbook {playbook}"


def write_preview(console: Console, p: Preview, *, fmt: str, render: bool) -> None:
    """What `cadence preview` prints, to `console`'s file: the contract's JSON, or the tables.
    The command and the daemon's control socket both print through here."""
    if fmt == "json":
        console.file.write(json.dumps(preview_json(p), indent=2) + "\n")
        return
    print_preview(console, p, render=render)


def print_preview(console: Console, p: Preview, *, render: bool) -> None:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    tz, rendered = p.timezone, p.rendered
    title = (
        f"Upcoming emails for {p.customer_id} ({tz}), "
        f"{local_short(p.as_of, tz)} + {plural(p.days, 'day')}"
    )
    emails = Table(title=title, title_justify="left", show_lines=False)
    for col in ("when (local)", "role\ncategory", "from", "subject", "messages"):
        emails.add_column(col, overflow="fold")
    for e in p.emails:
        r = rendered.get(e.id) or {}
        subject = escape(r.get("subject") or "")
        note = " [dim](digest)[/dim]" if len(e.members) > 1 else ""
        emails.add_row(
            local_short(e.send_at, tz),
            f"{e.role}\n[dim]{escape(e.category or '')}[/dim]",
            escape(_sender(r.get("from_email"), r.get("from_name"))),
            subject + note,
            ", ".join(e.members),
        )
    if not p.emails:
        emails.add_row("", "", "", "[dim]nothing planned in this horizon[/dim]", "")
    console.print(fit(emails, console, ("subject", "from")))
    decisions = Table(
        title="Every decision, with its reason", title_justify="left", show_lines=True
    )
    for col in ("message", "role", "status", "when (local)", WHY):
        decisions.add_column(col, overflow="fold")
    for d in p.decisions:
        message = p.messages.get(d.message_id)
        style = STATUS_STYLE.get(d.status, "")
        status = f"[{style}]{d.status}[/{style}]" if style else str(d.status)
        kind = touch_kind(message) if message else None
        if kind:
            status = f"{status}\n{kind}"
        # a reason may quote what people wrote (a call's summary, a subject): text, not markup
        why = escape(d.reason)
        origin = _origin(message.playbook, message.origin) if message else None
        if origin:
            why = f"{why} [dim](created by {origin})[/dim]"
        if d.event:
            why = f"{why} [dim](event {d.event})[/dim]"
        decisions.add_row(
            d.message_id,
            message.role if message else "",
            status,
            local_short(d.send_at, tz),
            _why(d.rule, why),
        )
    console.print(fit(decisions, console, (WHY,)))
    if render:
        for e in p.emails:
            r = rendered.get(e.id) or {}
            body = escape(r.get("text") or r.get("error") or "")
            title = escape(f"{e.id}: {r.get('subject') or ''}")
            console.print(Panel(body, title=title, title_align="left"))


# -- listings: `cadence ledger` and `cadence upcoming` -------------------------------------

#: the columns of `cadence ledger --format csv`, and the keys of each JSON object
LEDGER_COLUMNS = (
    "customer",
    "message",
    "role",
    "category",
    "topic",
    "channel",
    "status",
    "at",
    "email",
    "rule",
    "reason",
)
#: the columns of `cadence upcoming --format csv`: the preview's email object and its customer
UPCOMING_COLUMNS = (
    "customer",
    "id",
    "send_at",
    "send_at_local",
    "role",
    "category",
    "subject",
    "members",
    "merge_rule",
    "transactional",
    "to_owner",
)


def utc_short(t: datetime | None) -> str:
    return "" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def ledger_json(e: LedgerEntry) -> dict[str, Any]:
    return {
        "customer": e.customer,
        "message": e.message,
        "role": e.role,
        "category": e.category,
        "topic": e.topic,
        "channel": e.channel,
        "status": str(e.status),
        "at": iso(e.at),
        "email": e.email,
        "rule": e.rule,
        "reason": e.reason,
    }


def planned_json(p: PlannedEmail, default_tz: str) -> dict[str, Any]:
    """The preview's email object (`email_json`) for a planned email, with its customer."""
    from cadence.delivery.render import one_line

    subject = None if p.subject is None else {"subject": one_line(p.subject)}
    return {
        "customer": p.email.customer_id,
        **email_json(p.email, p.timezone or default_tz, subject),
    }


def write_records(
    out: TextIO, records: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str
) -> None:
    """`records` as a JSON list, or as CSV with a header of `columns` (a list in a cell: its
    items with spaces between; true/false; nothing for null)."""
    if fmt == "json":
        out.write(json.dumps(list(records), indent=2) + "\n")
        return
    import csv

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


#: the header of the column that says why: the rule that decided, then the reason
WHY = "rule\nwhy"


def _why(rule: str | None, reason: str) -> str:
    """The rule (when one decided) above the reason, in one cell."""
    return f"[bold]{rule}[/bold]\n{reason}" if rule else reason


def print_ledger(console: Console, entries: Sequence[LedgerEntry], limit: int) -> None:
    from rich.markup import escape
    from rich.table import Table

    title = f"{plural(len(entries), 'message')} in the ledger, newest first"
    if limit and len(entries) == limit:
        title += f" (the newest {limit}; --limit 0 for all)"
    table = Table(title=title, title_justify="left", show_lines=True)
    # five columns, two facts to a cell, so 80 columns of terminal hold them without
    # breaking a word (see table_fit)
    for col in ("at (UTC)", "customer\nmessage", "role\ncategory", "status\nemail", WHY):
        table.add_column(col, overflow="fold")
    for e in entries:
        style = STATUS_STYLE.get(e.status, "")
        status = f"[{style}]{e.status}[/{style}]" if style else str(e.status)
        if e.channel != "email":
            status = f"{status} ({e.channel})"
        table.add_row(
            utc_short(e.at),
            f"{e.customer}\n[dim]{escape(e.message)}[/dim]",
            f"{e.role}\n[dim]{escape(e.category or '')}[/dim]",
            f"{status}\n[dim]{e.email or ''}[/dim]",
            _why(e.rule, escape(e.reason)),  # a reason may quote what people wrote: not markup
        )
    if not entries:
        table.add_row("", "", "", "", "[dim]no message matches[/dim]")
    console.print(fit(table, console, (WHY,)))


def print_planned(
    console: Console,
    planned: Sequence[PlannedEmail],
    default_tz: str,
    start: datetime,
    end: datetime,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    span = f"{utc_short(start)} to {utc_short(end)} UTC"
    title = f"{plural(len(planned), 'planned email')}, {span}, soonest first"
    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("send at (UTC)\nlocal time", "customer", "role\ncategory", "subject", "messages"):
        table.add_column(col, overflow="fold")
    for p in planned:
        item = planned_json(p, default_tz)
        note = " [dim](digest)[/dim]" if len(p.email.members) > 1 else ""
        if item["subject"] is None and p.template is not None:  # known once rendered
            note = f"[dim](template {escape(p.template)})[/dim]"
        local = p.email.send_at.astimezone(ZoneInfo(p.timezone or default_tz))
        table.add_row(
            f"{utc_short(p.email.send_at)}\n[dim]{local.strftime('%a %H:%M %Z')}[/dim]",
            p.email.customer_id,
            f"{p.email.role}\n[dim]{escape(p.email.category or '')}[/dim]",
            (escape(item["subject"] or "") + note).strip(),
            ", ".join(p.email.members),
        )
    if not planned:
        table.add_row("", "", "", "[dim]nothing planned in this horizon[/dim]", "")
    console.print(fit(table, console, ("subject",)))
