"""The preference page in a real headless Chromium, driven by the keyboard alone: from a sent
email's unsubscribe link to "at most 1 a week", which the next preview then honours."""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cadence.app import App
from cadence.config import load_settings
from cadence.feedback.server import HttpServer, start_http
from cadence.flows.passes import run_pass
from cadence.flows.preview import preview
from cadence.model import Customer, Message, Status
from tests.support.chromium import CHROMIUM, Browser

REPO = Path(__file__).resolve().parents[2]
WISH = "Ana asked for at most one email a week"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on this machine: apt-get install chromium")
    b = Browser(tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[App, HttpServer]]:
    from cadence.ledger.db import upgrade

    port = free_port()
    url = f"sqlite:///{tmp_path / 'cadence.db'}"
    upgrade(url)
    (tmp_path / "rules").mkdir()  # no rules of ours: only her own cap limits her mail
    monkeypatch.setenv("T_UNSUB_SECRET", "a secret only the test knows")
    env = {
        "CADENCE_DATABASE_URL": url,
        "CADENCE_RULES_DIR": str(tmp_path / "rules"),
        "CADENCE_TEMPLATES_DIR": str(REPO / "templates"),
        "CADENCE_UNSUBSCRIBE__SECRET_ENV": "T_UNSUB_SECRET",
        "CADENCE_UNSUBSCRIBE__BASE_URL": f"http://127.0.0.1:{port}",
        "CADENCE_TRANSPORT__KIND": "file",
        "CADENCE_TRANSPORT__FILE__DIR": str(tmp_path / "outbox"),
    }
    app = App(load_settings(None, env))
    t = datetime.now(UTC)
    app.store.ingest.upsert_customers(
        [(Customer("c-17", "ana@acme.test", "Ana", "UTC", "acme", {}), "d")], now=t
    )
    mail = [
        Message(
            "m0", "c-17", "marketing", category="tip", subject="A tip", body_text="Try this.",
            send_after=t - timedelta(minutes=1),
        ),
        Message(
            "m1", "c-17", "success", category="check-in", subject="How is it going?",
            body_text="Tell us.", send_after=t + timedelta(days=1),
        ),
    ]  # fmt: skip
    app.store.ingest.add_messages([(m, m.id) for m in mail], now=t)
    assert run_pass(app, t).dispatch.sent  # m0 goes now
    server = start_http(app, f"127.0.0.1:{port}", public_key=None)
    try:
        yield app, server
    finally:
        server.stop()
        app.close()


def sent_email(tmp_path: Path) -> email.message.EmailMessage:
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def decision_on(app: App, message_id: str, days: int = 3) -> tuple[Status, str]:
    """What a preview of Ana's next `days` says of the message."""
    p = preview(app.store, app.settings, app.rules(), "c-17", datetime.now(UTC), days)
    (d,) = [d for d in p.decisions if d.message_id == message_id]
    return d.status, d.reason


def going(app: App, message_id: str) -> datetime:
    """When a preview of Ana's next two weeks sends the message."""
    p = preview(app.store, app.settings, app.rules(), "c-17", datetime.now(UTC), 14)
    (email_,) = [e for e in p.emails if message_id in e.members]
    return email_.send_at


def test_choosing_at_most_one_a_week_from_the_unsubscribe_page(
    served: tuple[App, HttpServer], browser: Browser, tmp_path: Path
) -> None:
    app, _ = served
    # before: tomorrow's email goes tomorrow, as it comes
    assert decision_on(app, "m1")[0] is Status.SCHEDULED
    assert going(app, "m1") - datetime.now(UTC) < timedelta(days=2)
    link = str(sent_email(tmp_path)["List-Unsubscribe"]).strip("<>")
    browser.open(link)
    assert browser.js("document.documentElement.lang") == "en"
    assert "Stop receiving emails about tip?" in browser.text()
    browser.tab_to("fewer")
    browser.press_and_load("Enter")
    assert browser.js("location.pathname").startswith("/p/")
    assert "Your email preferences" in browser.text()
    # every control is labelled, the groups have legends, both her categories are wanted
    assert browser.js(
        "[...document.querySelectorAll('input:not([type=hidden])')].every(i => i.labels.length > 0)"
    )
    assert browser.js(
        "[...document.querySelectorAll('fieldset')]"
        ".map(f => f.querySelector(':scope > legend').textContent)"
    ) == ["Which emails do you want?", "How often, at most?"]
    assert browser.js(
        "[...document.querySelectorAll('input[name=want]')].map(i => [i.value, i.checked])"
    ) == [["check-in", True], ["tip", True]]
    # "at most N a week", by keyboard: the group, the arrow to the next choice, the number
    browser.tab_to("often-all")
    outline = browser.js("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # where the focus is shows
    browser.press("ArrowDown")
    assert browser.js("document.getElementById('often-cap').checked")
    browser.tab_to("per-week")
    browser.press("Backspace")
    browser.type("1")
    assert browser.js("document.getElementById('per-week').value") == "1"
    browser.tab_to("save")
    browser.press_and_load("Enter")
    page = browser.text()
    assert "Your choices are saved" in page and "At most one email a week" in page
    customer = app.store.reads.customer("c-17")
    assert customer is not None and customer.reach.max_per_week == 1
    # the email sent a minute ago counts: the next one waits a week from it, and says whose
    # wish that is
    status, reason = decision_on(app, "m1")
    assert status is Status.DEFERRED and WISH in reason
    (m0,) = [e for e, _ in app.store.reads.emails_of("c-17") if "m0" in e.members]
    assert going(app, "m1") >= m0.send_at + timedelta(days=7)


def test_the_emails_own_footer_link_opens_the_page(
    served: tuple[App, HttpServer], browser: Browser, tmp_path: Path
) -> None:
    text = sent_email(tmp_path).get_body(("plain",))
    assert text is not None
    (choose,) = re.findall(r"which emails you get and how often, open: (\S+)", text.get_content())
    browser.open(choose)
    assert browser.js("location.pathname").startswith("/p/")
    assert "Your email preferences" in browser.text()


def test_an_altered_preference_link_changes_nothing(
    served: tuple[App, HttpServer], browser: Browser, tmp_path: Path
) -> None:
    app, server = served
    link = str(sent_email(tmp_path)["List-Unsubscribe"]).strip("<>")
    browser.open(link + "/preferences")
    token = browser.js("location.pathname")[3:]
    payload, _, signature = token.partition(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    browser.open(f"http://127.0.0.1:{server.port}/p/{payload}.{flipped}")
    assert "This link is not valid" in browser.text()
    assert browser.js("document.forms.length") == 0
    customer = app.store.reads.customer("c-17")
    assert customer is not None and customer.reach.max_per_week is None
