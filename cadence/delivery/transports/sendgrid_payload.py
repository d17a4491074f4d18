"""What goes to SendGrid: the v3 Mail Send request body, built with SendGrid's own helper
classes (`sendgrid.helpers.mail`), pure, so it can be checked without a network; the
transport (`sendgrid.py`) owns the I/O, as anymail's backends do.

The cadence ids travel in `custom_args`, which SendGrid copies into every event of its event
webhook: that is how a bounce or an unsubscribe finds its way back to the customer and email.
The body is the one the hand-written builder made before (`bench/payload_cost.py` keeps it,
and a test holds the two equal); the helpers cost a few microseconds an email more, measured in
docs/performance.md.

Two habits of the helpers are worked around here: `Mail.add_category` and
`Mail.add_personalization` put what they are given first, so categories are added in reverse
and personalizations at their own index; an address is set on an empty `To`/`From`, which keeps
it as given (the constructor would parse an address given without a name as `Name <addr>`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sendgrid.helpers.mail import (
    Category,
    Content,
    CustomArg,
    Email,
    From,
    Header,
    Mail,
    MailSettings,
    Personalization,
    ReplyTo,
    SandBoxMode,
    Substitution,
    To,
)
from sendgrid.helpers.mail.exceptions import SendGridException

from cadence.delivery.compose import H_UNSUBSCRIBE, OutgoingEmail
from cadence.delivery.mime import message_id

MAX_CATEGORIES = 10  # SendGrid's limit per email
#: SendGrid's limit of personalizations (emails) in one request
MAX_PERSONALIZATIONS = 1000
#: in a request for several emails, each one's unsubscribe URL, substituted by SendGrid into
#: that recipient's copy (`personalizations[].substitutions`)
UNSUBSCRIBE_TAG = "-cadence-unsubscribe-url-"

#: keys of `custom_args`; the SendGrid webhook reads them back
ARG_EMAIL = "cadence_email"
ARG_CUSTOMER = "cadence_customer"
ARG_MESSAGES = "cadence_messages"
ARG_CATEGORIES = "cadence_categories"  # what an `unsubscribe` event from SendGrid covers


class PayloadError(ValueError):
    """The helpers refused the email (they refuse content that begins like a SendGrid API
    key): nothing was sent, and sending it again would be refused the same way."""


def _address(kind: type[Email], email: str, name: str | None) -> Email:
    address: Email = kind()
    address.email = email
    if name:
        address.name = name
    return address


def _unsubscribe_url(out: OutgoingEmail) -> str | None:
    value = out.header(H_UNSUBSCRIBE)
    return value.strip("<>") if value else None


def _headers(out: OutgoingEmail) -> dict[str, str]:
    """The email's headers, with the Message-ID the file and SMTP transports give it
    (`mime.message_id`): SendGrid keeps a Message-ID it is given (it is not among the
    headers v3 reserves), so a reply's In-Reply-To names the email by its id, which is how
    the inbound webhook knows which email, and so which role, a reply answers. Without it,
    SendGrid makes up its own and a reply is known by its sender's address alone."""
    return {**dict(out.headers), "Message-ID": message_id(out)}


def _custom_args(out: OutgoingEmail) -> dict[str, str]:
    return {  # values must be strings
        ARG_EMAIL: out.email_id,
        ARG_CUSTOMER: out.customer_id,
        ARG_MESSAGES: ",".join(out.message_ids),
        ARG_CATEGORIES: ",".join(out.categories),
    }


def _tagged(out: OutgoingEmail) -> tuple[str, str | None]:
    """The text and HTML with the email's own unsubscribe URL replaced by the tag."""
    url = _unsubscribe_url(out)
    if not url:
        return out.text, out.html
    html = out.html.replace(url, UNSUBSCRIBE_TAG) if out.html is not None else None
    return out.text.replace(url, UNSUBSCRIBE_TAG), html


def batch_key(out: OutgoingEmail) -> str | None:
    """Emails with equal keys can go in one request, one personalization each: they share
    everything SendGrid keeps at the top of a request (sender, reply-to, categories, the
    content once each one's unsubscribe URL is taken out as a tag). None: this one goes
    alone (its content already holds the tag, so substituting could change it)."""
    if UNSUBSCRIBE_TAG in out.text or (out.html is not None and UNSUBSCRIBE_TAG in out.html):
        return None
    text, html = _tagged(out)
    return json.dumps(
        [out.from_email, out.from_name, out.reply_to, list(out.categories), text, html]
    )


def _mail(first: OutgoingEmail, text: str, html: str | None, sandbox: bool) -> Mail:
    """What all the emails of a request share, taken from the first (text first, then HTML,
    as SendGrid wants)."""
    mail = Mail()
    mail.from_email = _address(From, first.from_email, first.from_name)
    mail.subject = first.subject
    mail.add_content(Content("text/plain", text))
    if html is not None:
        mail.add_content(Content("text/html", html))
    if first.reply_to:
        mail.reply_to = _address(ReplyTo, first.reply_to, None)
    for category in reversed(first.categories[:MAX_CATEGORIES]):
        mail.add_category(Category(category))
    mail.mail_settings = MailSettings(sandbox_mode=SandBoxMode(sandbox))
    return mail


def _body(build: Any, *args: Any) -> dict[str, Any]:
    try:
        body: dict[str, Any] = build(*args).get()
    except SendGridException as exc:
        raise PayloadError(getattr(exc, "message", None) or type(exc).__name__) from exc
    return body


def _single(out: OutgoingEmail, sandbox: bool) -> Mail:
    mail = _mail(out, out.text, out.html, sandbox)
    to = Personalization()
    to.add_to(_address(To, out.to_email, out.to_name))
    mail.add_personalization(to)
    for key, value in _headers(out).items():
        mail.add_header(Header(key, value))
    for key, value in _custom_args(out).items():
        mail.add_custom_arg(CustomArg(key, value))
    return mail


def _batch(outs: Sequence[OutgoingEmail], sandbox: bool) -> Mail:
    mail = _mail(outs[0], *_tagged(outs[0]), sandbox)
    for n, out in enumerate(outs):
        one = Personalization()
        one.add_to(_address(To, out.to_email, out.to_name))
        one.subject = out.subject
        for key, value in _headers(out).items():
            one.add_header(Header(key, value))
        for key, value in _custom_args(out).items():
            one.add_custom_arg(CustomArg(key, value))
        own = _unsubscribe_url(out)
        if own:
            one.add_substitution(Substitution(UNSUBSCRIBE_TAG, own))
        mail.add_personalization(one, index=n)
    return mail


def sendgrid_payload(out: OutgoingEmail, *, sandbox: bool = False) -> dict[str, Any]:
    """The v3 Mail Send request body for one email."""
    return _body(_single, out, sandbox)


def sendgrid_batch_payload(
    outs: Sequence[OutgoingEmail], *, sandbox: bool = False
) -> dict[str, Any]:
    """One request for emails of one `batch_key` (distinct recipients, at most
    MAX_PERSONALIZATIONS): each is a personalization with its own recipient, subject (the
    top-level one is the first's: SendGrid wants one there), headers, cadence ids and
    unsubscribe URL; SendGrid sends each as an email of its own."""
    return _body(_batch, outs, sandbox)
