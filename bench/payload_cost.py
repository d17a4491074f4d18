"""What building SendGrid's request body costs per email: with SendGrid's own helper classes
(`cadence.delivery.transports.sendgrid_payload`, what the transport sends) and by hand (the
plain dicts the transport built before, kept here as the baseline and as the test's reference:
tests/unit/test_sendgrid_helpers.py holds the two bodies equal).

    python -m bench.payload_cost

Each figure is the best of five runs, building the body and serialising it as the transport
does (`json.dumps`), for one email a request and for a request of 100 emails sharing content.
"""

from __future__ import annotations

import json
import sys
import timeit
from collections.abc import Sequence
from typing import Any

from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.transports.sendgrid_payload import (
    MAX_CATEGORIES,
    UNSUBSCRIBE_TAG,
    _custom_args,
    _headers,
    _tagged,
    _unsubscribe_url,
    sendgrid_batch_payload,
    sendgrid_payload,
)


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def _content(text: str, html: str | None) -> list[dict[str, str]]:
    content = [{"type": "text/plain", "value": text}]
    if html is not None:
        content.append({"type": "text/html", "value": html})
    return content


def _request(
    first: OutgoingEmail,
    personalizations: list[dict[str, Any]],
    content: list[dict[str, str]],
    sandbox: bool,
    **top: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "personalizations": personalizations,
        "from": _address(first.from_email, first.from_name),
        "subject": first.subject,
        "content": content,
        **top,
        "mail_settings": {"sandbox_mode": {"enable": sandbox}},
    }
    if first.reply_to:
        payload["reply_to"] = {"email": first.reply_to}
    if first.categories:
        payload["categories"] = list(first.categories[:MAX_CATEGORIES])
    return payload


def by_hand(out: OutgoingEmail, *, sandbox: bool = False) -> dict[str, Any]:
    """One email's body as plain dicts."""
    return _request(
        out,
        [{"to": [_address(out.to_email, out.to_name)]}],
        _content(out.text, out.html),
        sandbox,
        headers=_headers(out),
        custom_args=_custom_args(out),
    )


def by_hand_batch(outs: Sequence[OutgoingEmail], *, sandbox: bool = False) -> dict[str, Any]:
    """A request for emails sharing content, as plain dicts."""
    personalizations = []
    for out in outs:
        one: dict[str, Any] = {
            "to": [_address(out.to_email, out.to_name)],
            "subject": out.subject,
            "headers": _headers(out),
            "custom_args": _custom_args(out),
        }
        own = _unsubscribe_url(out)
        if own:
            one["substitutions"] = {UNSUBSCRIBE_TAG: own}
        personalizations.append(one)
    return _request(outs[0], personalizations, _content(*_tagged(outs[0])), sandbox)


def sample(n: int = 0, **kw: Any) -> OutgoingEmail:
    """A digest of two messages, text and HTML, with the headers cadence sends."""
    link = f"https://cadence.vendor.test/u/tok-{n}"
    fields: dict[str, Any] = {
        "email_id": f"e-{n:016x}",
        "customer_id": f"c-{n}",
        "to_email": f"person{n}@acme.test",
        "to_name": f"Person {n}",
        "from_email": "success@vendor.test",
        "from_name": "Vendor",
        "reply_to": "help@vendor.test",
        "subject": "A few updates from Vendor",
        "text": f"Hello\n\nTwo things this week.\n\nUnsubscribe: {link}\n",
        "html": f"<p>Hello</p><p>Two things this week.</p><a href='{link}'>Unsubscribe</a>",
        "headers": (
            ("X-Cadence-Customer", f"c-{n}"),
            ("X-Cadence-Messages", "cs-12,prd-7"),
            ("X-Cadence-Email", f"e-{n:016x}"),
            ("List-Unsubscribe", f"<{link}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        "message_ids": ("cs-12", "prd-7"),
        "transactional": False,
        "categories": ("onboarding", "product-tour"),
    }
    fields.update(kw)
    return OutgoingEmail(**fields)


def per_email(build: Any, arg: Any, emails: int, number: int) -> float:
    """Microseconds per email, best of five."""
    best = min(timeit.repeat(lambda: json.dumps(build(arg)), number=number, repeat=5))
    return best / number / emails * 1e6


def main() -> None:
    one = sample()
    batch = [sample(n) for n in range(100)]
    assert sendgrid_payload(one) == by_hand(one)
    assert sendgrid_batch_payload(batch) == by_hand_batch(batch)
    print(f"python -m bench.payload_cost  (Python {sys.version.split()[0]})")
    for what, helper, hand, arg, emails, number in (
        ("one email a request", sendgrid_payload, by_hand, one, 1, 20_000),
        ("100 emails a request", sendgrid_batch_payload, by_hand_batch, batch, 100, 200),
    ):
        with_helpers = per_email(helper, arg, emails, number)
        plain = per_email(hand, arg, emails, number)
        print(
            f"{what}: helpers {with_helpers:.1f} us/email, by hand {plain:.1f} us/email, "
            f"+{with_helpers - plain:.1f} us"
        )


if __name__ == "__main__":
    main()
