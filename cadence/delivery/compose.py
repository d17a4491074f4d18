"""From a planned `Email` to the exact `OutgoingEmail` a transport sends.

One function decides everything the transports must not decide differently: who it is from
and to, which template (the member's own or the digest), the unsubscribe link and headers, and
the cadence headers that tie the email back to the ledger. Transports only change the wire
format, so the file, SMTP and SendGrid outputs of one email say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import MappingProxyType
from typing import Any, Protocol

from markupsafe import escape

from cadence.delivery.render import DigestItem, Rendered, Renderer
from cadence.delivery.unsubscribe import choose_url, make_token, unsubscribe_url
from cadence.model import Customer, Email, Message, Sender

DIGEST_TEMPLATE = "digest"
H_CUSTOMER = "X-Cadence-Customer"
H_MESSAGES = "X-Cadence-Messages"
H_EMAIL = "X-Cadence-Email"
H_UNSUBSCRIBE = "List-Unsubscribe"
H_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
ONE_CLICK = "List-Unsubscribe=One-Click"


class SenderConfig(Protocol):
    """The configured sender (`settings.sender`)."""

    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def reply_to(self) -> str | None: ...


NO_SENDERS: Mapping[str, SenderConfig] = MappingProxyType({})


def sender_for(
    role: str | None, sender: SenderConfig, senders: Mapping[str, SenderConfig]
) -> tuple[Sender, str | None]:
    """Who an email of `role` is from, and where its replies go: the role's own sender
    (`senders`), its name defaulting to the default sender's; else the default sender."""
    own = senders.get(role) if role is not None else None
    if own is None:
        return Sender(sender.email, sender.name), sender.reply_to
    return Sender(own.email, own.name if own.name is not None else sender.name), own.reply_to


def digest_sender(
    members: Sequence[Message], sender: SenderConfig, senders: Mapping[str, SenderConfig]
) -> tuple[Sender, str | None]:
    """Who a digest is from: the role's sender when every member is of that one role (the
    sales team's digest is the sales team's), else the default sender, since no one role
    speaks for the rest. A member's own `from` is its item's voice, not the digest's."""
    roles = {m.role for m in members}
    return sender_for(roles.pop() if len(roles) == 1 else None, sender, senders)


class ComposeError(ValueError):
    """The email cannot be built as planned (a member missing, no owner address...)."""


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """Everything a transport needs, already decided; identical for every transport."""

    email_id: str
    customer_id: str
    to_email: str
    to_name: str | None
    from_email: str
    from_name: str | None
    reply_to: str | None
    subject: str
    text: str
    html: str | None
    headers: tuple[tuple[str, str], ...]
    message_ids: tuple[str, ...]
    transactional: bool
    categories: tuple[str, ...]
    #: the time of the pass that composed it, its Date header: the virtual time of a pass run
    #: `--now` or in the demo, not the wall clock's; None (built by hand): the transport's clock
    composed_at: datetime | None = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def unsubscribe_link(
    base_url: str, secret: bytes, customer_id: str, members: Sequence[Message], now: datetime
) -> str:
    """The one-click link for an email: it leaves the members' categories (all mail when none
    of them has one), which is what the customer is looking at when they click."""
    categories = sorted({m.category for m in members if m.category})
    return unsubscribe_url(base_url, make_token(secret, customer_id, categories or None, now))


def _ordered(email: Email, members: Sequence[Message]) -> list[Message]:
    by_id = {m.id: m for m in members}
    missing = [mid for mid in email.members if mid not in by_id]
    if missing:
        raise ComposeError(f"email {email.id}: members not given: {', '.join(missing)}")
    return [by_id[mid] for mid in email.members]


def _recipient(email: Email, customer: Customer) -> tuple[str, str | None]:
    if not email.to_owner:
        return customer.email, customer.name
    owner = customer.attributes.get("owner_email")
    if not owner or not isinstance(owner, str):
        raise ComposeError(
            f"email {email.id} goes to the account owner, but customer {customer.id} "
            "has no owner_email attribute"
        )
    name = customer.attributes.get("owner_name")
    return owner, name if isinstance(name, str) else None


def _footer(rendered: Rendered, url: str, choose: str) -> Rendered:
    """The preference link, then the unsubscribe link (fewer emails is offered before none),
    in the text part and in the HTML one, inside its body.

    The preference link is the unsubscribe link with `/preferences` after it, which the
    daemon answers by sending the browser on to the customer's preference page: copies of
    one email that differ only in their unsubscribe link still differ only in it, which is
    what lets SendGrid send them in one request (`sendgrid.batch_key`)."""
    text = (
        f"{rendered.text}\n--\nTo choose which emails you get and how often, open: {choose}\n"
        f"To stop receiving these emails, open: {url}\n"
    )
    html = rendered.html
    if html is not None:
        note = (
            '<p style="font-size:12px;color:#777;text-align:center">'
            f'<a href="{escape(choose)}">Choose which emails you get</a> and how often. '
            f'<a href="{escape(url)}">Unsubscribe</a> from these emails.</p>\n'
        )
        end = html.lower().rfind("</body>")
        html = html[:end] + note + html[end:] if end >= 0 else html + note
    return Rendered(rendered.subject, text, html)


def inline_css(html: str) -> str:
    """Mail clients drop <style> blocks: the rules are written into style attributes by a
    library made for it (css-inline); media queries stay in a <style> block for the clients
    that honour them (the layout's narrow-screen rules)."""
    inlined = str(_inliner().inline(html))
    return inlined if inlined.endswith("\n") or not html.endswith("\n") else inlined + "\n"


@cache
def _inliner() -> Any:
    import css_inline

    return css_inline.CSSInliner(keep_at_rules=True, keep_style_tags=False)


def _safe_header(name: str, value: str) -> tuple[str, str]:
    if "\r" in value or "\n" in value:
        raise ComposeError(f"header {name} would contain a line break: {value!r}")
    return name, value


def compose(
    email: Email,
    customer: Customer,
    members: Sequence[Message],
    renderer: Renderer,
    sender: SenderConfig,
    unsubscribe_url: str | None,
    now: datetime,
    senders: Mapping[str, SenderConfig] = NO_SENDERS,
) -> OutgoingEmail:
    """Render and address one planned email. Raises RenderError or ComposeError; never
    returns something half-built. An email with an unsubscribe link carries a link to the
    customer's preference page too (`choose_url`), just above it.

    It is from the message's own sender when it names one, else its role's (`senders`),
    else the default `sender`; a digest as `digest_sender` says."""
    ordered = _ordered(email, members)
    listed = not email.transactional and not email.to_owner  # internal alerts: no unsubscribe
    if listed and not unsubscribe_url:
        raise ComposeError(f"email {email.id} is not transactional and needs an unsubscribe link")
    extra = {"unsubscribe_url": unsubscribe_url if listed else None, "now": now}
    if len(ordered) == 1:
        (message,) = ordered
        from_, reply_to = sender_for(message.role, sender, senders)
        if message.sender is not None:  # a person's or a role's own `from`: replies to it
            from_, reply_to = message.sender, None
        rendered = renderer.render_message(message, customer, extra, sender=from_)
    else:
        items = []
        for message in ordered:
            voice = message.sender or sender_for(message.role, sender, senders)[0]
            part = renderer.render_message(message, customer, extra, sender=voice, in_digest=True)
            items.append(
                DigestItem(message.role, voice, part.subject, part.text, part.html, message)
            )
        from_, reply_to = digest_sender(ordered, sender, senders)
        template = email.template or DIGEST_TEMPLATE
        rendered = renderer.render_digest(template, customer, items, extra, sender=from_)
    headers = [
        _safe_header(H_CUSTOMER, customer.id),
        _safe_header(H_MESSAGES, ",".join(m.id for m in ordered)),
        _safe_header(H_EMAIL, email.id),
    ]
    if listed and unsubscribe_url:
        rendered = _footer(rendered, unsubscribe_url, choose_url(unsubscribe_url))
        headers.append(_safe_header(H_UNSUBSCRIBE, f"<{unsubscribe_url}>"))
        headers.append((H_UNSUBSCRIBE_POST, ONE_CLICK))
    to_email, to_name = _recipient(email, customer)
    return OutgoingEmail(
        email_id=email.id,
        customer_id=customer.id,
        to_email=to_email,
        to_name=to_name,
        from_email=from_.email,
        from_name=from_.name,
        reply_to=reply_to,
        subject=rendered.subject,
        text=rendered.text,
        html=inline_css(rendered.html) if rendered.html is not None else None,
        headers=tuple(headers),
        message_ids=tuple(m.id for m in ordered),
        transactional=email.transactional,
        categories=tuple(sorted({m.category for m in ordered if m.category})),
        composed_at=now,
    )
