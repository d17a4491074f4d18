"""The preference page, `/p/<token>`: a customer chooses which kinds of email they get and
how often at most, and saving records a `preferences_changed` event (which the planner
honours: the categories left are not sent, and at most N emails a week go across every role).

Plain server-rendered HTML, no script: every input has a label, the groups are fieldsets with
a legend, the page works with a keyboard alone and shows where its focus is (see
`pages.PAGE`). The token is a preference token (`delivery.unsubscribe`): signed like an
unsubscribe link's, under another domain string, and living as long.

Cross-site requests: a POST acts only with a valid token in its path, and the token is the
whole of the authority (no cookie, no session), so another site can make a browser post only
what it already holds the token for; no other CSRF defence is needed.

An email's footer links to `/u/<its unsubscribe token>/preferences` (`choose_url`), which
sends the browser here with a preference token for the same customer, issued when the email
was: see `delivery.compose._footer` for why the email does not carry this token itself.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from cadence import metrics
from cadence.clock import utcnow
from cadence.delivery.unsubscribe import (
    ExpiredToken,
    PreferencesClaim,
    UnsubscribeClaim,
    make_preferences_token,
)
from cadence.feedback import ledger
from cadence.feedback.pages import (
    NOT_VALID,
    PAGE_HEADERS,
    Served,
    expired,
    guarded,
    page,
    read_body,
)
from cadence.model import Customer

if TYPE_CHECKING:
    from cadence.ledger.ledger import Ledger

log = logging.getLogger("cadence.http")

#: the choice "at most N a week" offers 1 to this many
MOST_PER_WEEK = 14
#: a form is a few hundred bytes; this leaves room for many categories and nothing more
MAX_FORM = 64 * 1024
MAX_CATEGORY = 200

OFTEN_ALL, OFTEN_CAP, OFTEN_DIGEST = "all", "cap", "digest"

UNKNOWN = (
    "<h1>Nothing to choose</h1><p>We have no emails for this address. Nothing was changed.</p>"
)


def page_url(served: Served, claim: UnsubscribeClaim) -> str:
    """The preference page for an unsubscribe link's customer, relative to that link's own
    page (`/u/<token>`), so it works behind any base path. It is issued when the unsubscribe
    link was: following one never makes a link that lives longer."""
    return "../p/" + make_preferences_token(served.secret, claim.customer_id, claim.issued_at)


def offered(store: Ledger, customer: Customer) -> list[str]:
    """The categories the page lists: those of the customer's emails in the ledger (not
    receipts, which always go, nor alerts to their account owner, nor calls and meetings),
    and those they left already."""
    seen = {
        m.category
        for m, _ in store.reads.messages_of(customer.id)
        if m.category and not m.transactional and m.to != "owner" and m.channel == "email"
    }
    return sorted(seen | customer.reach.unsubscribed_categories)


class Refused(ValueError):
    """The form cannot be saved as sent; the message is for the person, on the page."""


def read_choice(form: Mapping[str, Sequence[str]], customer: Customer) -> ledger.Choice:
    """The choice a posted form makes. The categories left are those the page showed
    (`shown`) and were not ticked (`want`), plus those left before that it did not show: a
    category that appeared after the page was drawn is not left unseen."""
    shown = [c for c in form.get("shown", ()) if 0 < len(c) <= MAX_CATEGORY and c.isprintable()]
    wanted = set(form.get("want", ()))
    left = {c for c in shown if c not in wanted}
    left |= customer.reach.unsubscribed_categories - set(shown)
    often = (form.get("often") or [""])[0]
    if often == OFTEN_ALL:
        most = None
    elif often == OFTEN_DIGEST:
        most = 1  # a weekly digest is at most one email a week (the page says so)
    elif often == OFTEN_CAP:
        number = (form.get("per_week") or [""])[0].strip()
        # one or two ASCII digits: int() refuses "²" and very long numbers (a 500, not a 400)
        ok = number.isascii() and number.isdigit() and len(number) <= 2
        if not ok or not 1 <= int(number) <= MOST_PER_WEEK:
            raise Refused(f"Please give a number of emails a week from 1 to {MOST_PER_WEEK}.")
        most = int(number)
    else:
        raise Refused("Please choose how often you want our emails.")
    return ledger.Choice(tuple(sorted(left)), most)


def _checked(on: bool) -> str:
    return " checked" if on else ""


def form_page(categories: Sequence[str], customer: Customer, error: str | None = None) -> str:
    """The page: the categories as checkboxes (ticked: wanted), then how often."""
    e = html.escape
    reach = customer.reach
    parts = [
        "<h1>Your email preferences</h1>",
        "<p>Choose which emails you get from us, and how often at most. Receipts and answers "
        "to your own requests always reach you.</p>",
    ]
    if reach.unsubscribed_all:
        parts.append(
            "<p><strong>You unsubscribed from all our emails</strong>, and saving here does "
            "not change that: what you choose applies if you ask to get them again (reply to "
            "one of our emails and say so).</p>"
        )
    if error:
        parts.append(f'<p class="error" id="error">{e(error)}</p>')
    parts.append('<form method="post">')
    if categories:
        parts.append("<fieldset><legend>Which emails do you want?</legend>")
        for i, category in enumerate(categories):
            wanted = category not in reach.unsubscribed_categories
            parts.append(
                f'<div class="choice"><input type="checkbox" id="cat-{i}" name="want" '
                f'value="{e(category)}"{_checked(wanted)}> '
                f'<label for="cat-{i}">{e(category)}</label>'
                f'<input type="hidden" name="shown" value="{e(category)}"></div>'
            )
        parts.append("</fieldset>")
    most = reach.max_per_week
    number = most if most is not None and 1 <= most <= MOST_PER_WEEK else 3
    parts.append(
        "<fieldset><legend>How often, at most?</legend>"
        f'<div class="choice"><input type="radio" id="often-all" name="often" '
        f'value="{OFTEN_ALL}"{_checked(most is None)}> '
        '<label for="often-all">As they come</label></div>'
        f'<div class="choice"><input type="radio" id="often-cap" name="often" '
        f'value="{OFTEN_CAP}"{_checked(most is not None)}> '
        '<label for="often-cap">At most a number of emails a week</label>'
        f'<div class="note"><label for="per-week">Emails a week (1 to {MOST_PER_WEEK})</label>'
        f'<input type="number" id="per-week" name="per_week" min="1" max="{MOST_PER_WEEK}" '
        f'step="1" value="{number}"></div></div>'
        f'<div class="choice"><input type="radio" id="often-digest" name="often" '
        f'value="{OFTEN_DIGEST}" aria-describedby="digest-note"> '
        '<label for="often-digest">A weekly digest only</label>'
        '<p class="note" id="digest-note">We record this as at most one email a week, the '
        "same as choosing 1 above.</p></div>"
        "</fieldset>"
        '<button type="submit" id="save">Save my choices</button></form>'
    )
    return "".join(parts)


def saved_page(categories: Sequence[str], choice: ledger.Choice, token: str) -> str:
    """The confirmation: what now holds, and the way back to change it."""
    e = html.escape
    kept = [c for c in categories if c not in choice.left]
    lines = []
    if kept:
        lines.append("You get emails about " + ", ".join(e(c) for c in kept) + ".")
    if choice.left:
        lines.append("You do not get emails about " + ", ".join(e(c) for c in choice.left) + ".")
    if choice.max_per_week is None:
        lines.append("They come as they are due.")
    else:
        n = choice.max_per_week
        lines.append(f"At most {'one email' if n == 1 else f'{n} emails'} a week reach you.")
    items = "".join(f"<li>{line}</li>" for line in lines)
    return (
        "<h1>Your choices are saved</h1>"
        f"<ul>{items}</ul><p>Receipts and answers to your own requests always reach you.</p>"
        f'<p><a href="{e(token)}">Change them again</a></p>'
    )


def routes(served: Served) -> list[Route]:
    """GET and POST `/p/<token>`, and `/u/<token>/preferences`, an email's way here."""
    expired_page = expired(
        served.ttl, served.contact, "Preference links", "To change which emails you get"
    )

    def claimed(token: str) -> PreferencesClaim | Response:
        claim = served.preferences_claim(token)
        if isinstance(claim, ExpiredToken):
            return page("Link expired", expired_page, 410)
        if claim is None:
            return page("Link not valid", NOT_VALID, 403)
        return claim

    def load(claim: PreferencesClaim) -> tuple[Customer, list[str]] | None:
        store = served.app.store  # opened when first needed, as every handler does
        customer = store.reads.customer(claim.customer_id)
        return None if customer is None else (customer, offered(store, customer))

    async def show(request: Request) -> Response:
        claim = claimed(request.path_params["token"])
        if isinstance(claim, Response):
            return claim
        found = await run_in_threadpool(load, claim)
        if found is None:
            return page("Email preferences", UNKNOWN, 404)
        customer, categories = found
        return page("Email preferences", form_page(categories, customer))

    def save(claim: PreferencesClaim, token: str, choice: ledger.Choice) -> str:
        outcome = ledger.record_preferences(served.app.store, claim, token, choice, utcnow())
        if outcome == "recorded":
            served.apply_now()
        return outcome

    async def submit(request: Request) -> Response:
        response, outcome = await submitted(request)
        metrics.record_preference_save(outcome)
        return response

    async def submitted(request: Request) -> tuple[Response, str]:
        """The answer to a save, and its outcome (`metrics.PREFERENCE_SAVES`)."""
        token = request.path_params["token"]
        claim = claimed(token)
        if isinstance(claim, Response):
            return claim, "rejected"
        body = await read_body(request, MAX_FORM)
        if body is None:
            return page("Email preferences", "<h1>That form is too large</h1>", 413), "invalid"
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=2000)
        except (UnicodeDecodeError, ValueError):
            return page("Email preferences", "<h1>That form could not be read</h1>", 400), "invalid"
        found = await run_in_threadpool(load, claim)
        if found is None:
            return page("Email preferences", UNKNOWN, 404), "unknown"
        customer, categories = found
        try:
            choice = read_choice(form, customer)
        except Refused as exc:
            return page(
                "Email preferences", form_page(categories, customer, str(exc)), 400
            ), "invalid"
        outcome = await run_in_threadpool(save, claim, token, choice)
        if outcome == "unknown":
            return page("Email preferences", UNKNOWN, 404), "unknown"
        log.info("customer %s saved their preferences (%s)", claim.customer_id, outcome)
        return page("Choices saved", saved_page(categories, choice, token)), outcome

    async def from_email(request: Request) -> Response:
        """An email's "choose which emails you get": on to the preference page (GET only
        looks; nothing changes until the page's form is saved)."""
        claim = served.unsubscribe_claim(request.path_params["token"])
        if isinstance(claim, ExpiredToken):
            return page("Link expired", expired_page, 410)  # it is a preference link
        if claim is None:
            return page("Link not valid", NOT_VALID, 403)
        # relative to /u/<token>/preferences: two folders up is the base URL
        target = "../" + page_url(served, claim)
        return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)

    return [
        Route("/p/{token}", guarded(show), methods=["GET"]),
        Route("/p/{token}", guarded(submit), methods=["POST"]),
        Route("/u/{token}/preferences", guarded(from_email), methods=["GET"]),
    ]
