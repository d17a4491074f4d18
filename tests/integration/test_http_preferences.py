"""The preference page over real HTTP on the real store (SQLite and PostgreSQL): what it
lists, what saving records, and that no link but the customer's own preference link acts."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cadence.app import App
from cadence.delivery.unsubscribe import (
    check_preferences_token,
    make_preferences_token,
    make_token,
)
from cadence.feedback.server import HttpServer, start_http
from cadence.ledger.tables import events
from cadence.model import Event, Message
from tests.integration.test_http_inbound import make_app


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Served:
    app: App
    client: httpx.Client
    server: HttpServer

    def token(self, customer: str = "c-17", issued: datetime | None = None) -> str:
        return make_preferences_token(self.app.unsubscribe_secret(), customer, issued or now())

    def wishes(self) -> list[dict[str, Any]]:
        with self.app.store.engine.connect() as conn:
            query = select(events).where(events.c.type == "preferences_changed")
            return [dict(r) for r in conn.execute(query).mappings()]

    def reach(self, cid: str = "c-17") -> Any:
        customer = self.app.store.reads.customer(cid)
        assert customer is not None
        return customer.reach


@pytest.fixture
def served(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    app = make_app(db_url, tmp_path, monkeypatch)
    t = now()
    messages = [
        Message("m1", "c-17", "marketing", category="tip", send_after=t + timedelta(days=1)),
        Message("m2", "c-17", "success", category="check-in", send_after=t + timedelta(days=2)),
        Message("m3", "c-17", "billing", category="receipt", transactional=True, send_after=t),
        Message("m4", "c-17", "success", category="alert", to="owner", send_after=t),
        Message("m5", "c-18", "sales", category="offer", send_after=t),
    ]
    app.store.ingest.add_messages([(m, m.id) for m in messages], now=t)
    left = Event("u-1", "c-17", "unsubscribed", t - timedelta(days=3), {"categories": ["survey"]})
    app.store.ingest.add_events([(left, "u")], now=t)
    app.store.ingest.apply_events(app.store.ingest.unprocessed_events(10))
    server = start_http(app, "127.0.0.1:0", public_key=None)
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10)
    try:
        yield Served(app, client, server)
    finally:
        client.close()
        server.stop()
        app.close()


class Form(HTMLParser):
    """The page's inputs, labels, fieldsets and legends."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.labels: list[str] = []
        self.fieldsets = self.legends = 0
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "input":
            self.inputs.append(a)
        elif tag == "label":
            self.labels.append(a.get("for") or "")
        elif tag == "fieldset":
            self.fieldsets += 1
        elif tag == "legend":
            self.legends += 1


def form_of(page: str) -> Form:
    form = Form()
    form.feed(page)
    return form


def test_the_page_lists_the_customers_categories_with_a_label_for_every_input(
    served: Served,
) -> None:
    page = served.client.get(f"/p/{served.token()}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    form = form_of(page.text)
    boxes = {i["value"]: i for i in form.inputs if i.get("type") == "checkbox"}
    # her messages' categories and the one she left; not receipts, not her owner's alerts
    assert sorted(boxes) == ["check-in", "survey", "tip"]
    assert "checked" in boxes["tip"] and "checked" not in boxes["survey"]
    visible = [i for i in form.inputs if i.get("type") != "hidden"]
    assert visible and all(i.get("id") in form.labels for i in visible)
    assert form.lang == "en" and form.fieldsets == form.legends == 2
    radios = [i["value"] for i in form.inputs if i.get("type") == "radio"]
    assert radios == ["all", "cap", "digest"]
    (number,) = [i for i in form.inputs if i.get("type") == "number"]
    assert (number["min"], number["max"]) == ("1", "14")
    assert "at most one email a week" in page.text  # what the weekly digest is recorded as
    assert "<script" not in page.text


def test_saving_records_her_choice_once_and_the_planner_sees_it(served: Served) -> None:
    token = served.token()
    form = {"shown": ["check-in", "survey", "tip"], "want": ["check-in", "survey"]}
    saved = served.client.post(f"/p/{token}", data={**form, "often": "cap", "per_week": "2"})
    assert saved.status_code == 200 and "Your choices are saved" in saved.text
    assert "At most 2 emails a week" in saved.text
    reach = served.reach()
    assert reach.max_per_week == 2 and reach.unsubscribed_categories == {"tip"}
    (event,) = served.wishes()
    assert event["data"] == {
        "source": "preference page",
        "categories": ["tip"],
        "max_per_week": 2,
    }
    # the same form sent twice (a double click) is one event
    served.client.post(f"/p/{token}", data={**form, "often": "cap", "per_week": "2"})
    assert len(served.wishes()) == 1
    # a later change, then the first choice again: each is recorded
    served.client.post(f"/p/{token}", data={**form, "often": "digest"})
    assert served.reach().max_per_week == 1
    served.client.post(f"/p/{token}", data={**form, "often": "cap", "per_week": "2"})
    assert served.reach().max_per_week == 2 and len(served.wishes()) == 3
    served.client.post(f"/p/{token}", data={"shown": ["tip"], "want": ["tip"], "often": "all"})
    assert served.reach() == type(served.reach())()  # back to everything, as they come
    assert served.reach("c-18").max_per_week is None  # only hers


def test_a_choice_that_is_not_one_is_shown_again_and_changes_nothing(served: Served) -> None:
    r = served.client.post(f"/p/{served.token()}", data={"often": "cap", "per_week": "40"})
    assert r.status_code == 400 and "from 1 to 14" in r.text and '<form method="post">' in r.text
    assert served.wishes() == [] and served.reach().max_per_week is None


def _altered(token: str) -> list[str]:
    payload, _, signature = token.partition(".")
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw["c"] = "c-18"
    other = base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    return [f"{other}.{signature}", f"{payload}.{flipped}", payload, f"{payload}.", "x.y"]


def test_forged_altered_or_borrowed_tokens_get_403_and_change_nothing(served: Served) -> None:
    secret = served.app.unsubscribe_secret()
    bad = [
        make_preferences_token(b"not our secret", "c-17", now()),
        make_token(secret, "c-17", None, now()),  # an unsubscribe link's token
        make_token(secret, "c-17", ["tip"], now()),
        *_altered(served.token()),
    ]
    for token in bad:
        assert served.client.get(f"/p/{token}").status_code == 403, token
        r = served.client.post(f"/p/{token}", data={"often": "digest"})
        assert r.status_code == 403 and "Nothing was changed" in r.text, token
    # and a preference token does not unsubscribe anyone
    assert served.client.post(f"/u/{served.token()}").status_code == 403
    assert served.client.get(f"/u/{served.token()}/preferences").status_code == 403
    assert served.wishes() == [] and served.app.store.ingest.unprocessed_events(10) == []
    for cid in ("c-17", "c-18"):
        assert served.reach(cid).max_per_week is None and not served.reach(cid).unsubscribed_all


def test_an_expired_link_gets_410_and_changes_nothing(served: Served) -> None:
    old = served.token(issued=now() - timedelta(days=366))
    for r in (served.client.get(f"/p/{old}"), served.client.post(f"/p/{old}", data={})):
        assert r.status_code == 410 and "Preference links work for 365 days" in r.text
    assert served.wishes() == []


def test_a_valid_link_for_a_customer_we_no_longer_have_stores_nothing(served: Served) -> None:
    token = served.token("c-99")
    assert served.client.get(f"/p/{token}").status_code == 404
    assert served.client.post(f"/p/{token}", data={"often": "all"}).status_code == 404
    assert served.wishes() == []


def test_the_unsubscribe_page_and_an_emails_footer_lead_to_her_preference_page(
    served: Served,
) -> None:
    secret = served.app.unsubscribe_secret()
    issued = now() - timedelta(days=30)
    unsubscribe = make_token(secret, "c-17", ["tip"], issued)
    page = served.client.get(f"/u/{unsubscribe}")
    (href,) = re.findall(r'<a id="fewer" href="([^"]+)">choose fewer emails instead</a>', page.text)
    target = httpx.URL(f"http://127.0.0.1:{served.server.port}/u/{unsubscribe}").join(href)
    assert target.path.startswith("/p/")
    landed = served.client.get(target.path)
    assert landed.status_code == 200 and "Your email preferences" in landed.text
    # the footer's link: the unsubscribe link and /preferences, sent on to the same page
    moved = served.client.get(f"/u/{unsubscribe}/preferences")
    assert moved.status_code == 303 and moved.headers["cache-control"] == "no-store"
    followed = httpx.URL(f"http://127.0.0.1:{served.server.port}/u/{unsubscribe}/preferences")
    there = followed.join(moved.headers["location"])
    assert there.path == target.path
    # the preference token lives no longer than the link it came from
    claim = check_preferences_token(secret, there.path[3:], now(), timedelta(days=365))
    assert claim.customer_id == "c-17" and claim.issued_at == issued.replace(microsecond=0)
    assert served.wishes() == []  # looking changes nothing
