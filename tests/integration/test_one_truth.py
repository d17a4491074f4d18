"""The cases where `simulate`, `preview` and `explain` once said other than the passes did,
each pinned, on SQLite and PostgreSQL:

- an account limit: `simulate` and a one-customer `preview` both hold the second customer's
  announcement back, as the passes do;
- a swept check-in goes at the time `simulate` says;
- a decision a pass made final (suppressed, expired) still shows in `preview`, and an
  expiry names the limit that held the message;
- an event and the event that cancels what it created, in one file: the check-in is stored
  and cancelled, naming the event;
- `explain` of a message no pass has decided yet says what the passes will decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cadence import ingest
from cadence.app import App
from cadence.config import load_settings
from cadence.flows.lifecycle import process_events
from cadence.flows.passes import run_pass
from cadence.flows.preview import explain, preview
from cadence.flows.simulate import simulate
from cadence.flows.timeline import next_moment
from cadence.model import Status

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)
D = timedelta(days=1)

RULES = """\
max_delay: 3d
limits:
  - name: account-announcements
    scope: account
    categories: [announcement]
    max: 1
    per: 7d
  - name: one-offer-a-day
    categories: [offer]
    max: 1
    per: 1d
send_windows:
  - days: mon-fri
    hours: "09:00-17:00"
suppress:
  - name: same-topic
    same: topic
    within: 7d
playbooks:
  - name: quiet
    every: 1d
    when: days_since_contact() >= 3
    send: {role: success, category: check-in, subject: "Hello again", body_text: "Hi"}
    cooldown: 30d
  - name: after-onboarding
    on: onboarding_completed
    wait: 2d
    send: {role: success, category: check-in, subject: "How is it going?", body_text: "Hi"}
    cancel_on: [ticket_opened]
"""


def _jsonl(path: Path, records: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    from cadence.ledger.db import upgrade

    upgrade(db_url)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rules.yaml").write_text(RULES)
    (tmp_path / "cadence.yaml").write_text(
        f"database_url: {db_url}\nrules_dir: {tmp_path / 'rules'}\n"
        f"templates_dir: {REPO / 'templates'}\n"
        f"transport: {{kind: file, file: {{dir: {tmp_path / 'outbox'}}}}}\n"
    )
    a = App(load_settings(tmp_path / "cadence.yaml"))
    people = [
        {"id": "ana", "email": "ana@acme.test", "name": "Ana", "timezone": "America/New_York"},
        {"id": "bo", "email": "bo@acme.test", "name": "Bo", "timezone": "Europe/Berlin"},
    ]
    for p in people:
        p["account"] = "acme"
    report = ingest.import_customers(a.store, _jsonl(tmp_path / "c.jsonl", people), now=T0)
    assert not report.errors
    yield a
    a.close()


def _submit(app: App, tmp_path: Path, records: list[dict[str, object]]) -> None:
    for r in records:
        r.setdefault("subject", f"about {r.get('topic')}")
        r.setdefault("body_text", "text")
    source = _jsonl(tmp_path / "m.jsonl", records)
    assert not ingest.submit_messages(app.store, source, now=T0).errors


def _announcement(mid: str, who: str, at: timedelta, topic: str) -> dict[str, object]:
    return {
        "id": mid,
        "customer": who,
        "role": "marketing",
        "category": "announcement",
        "topic": topic,
        "send_after": (T0 + at).isoformat(),
    }


def _step(app: App, start: datetime, end: datetime) -> None:
    """`run --once` at every moment something is due, as a daemon wakes."""
    t = start
    while t <= end:
        run_pass(app, t)
        later = next_moment(app.store, app.rules(), t)
        if later is None:
            return
        t = max(later, t)


def _sent(app: App, who: str) -> list[tuple[tuple[str, ...], datetime]]:
    return sorted((e.members, e.send_at) for e, s in app.store.reads.emails_of(who) if s == "sent")


def test_an_account_limit_holds_in_simulate_preview_and_the_passes(
    app: App, tmp_path: Path
) -> None:
    _submit(
        app,
        tmp_path,
        [
            _announcement("a1", "ana", 10 * H, "feature:sso"),
            _announcement("a2", "ana", 30 * H, "feature:reports"),
            _announcement("b1", "bo", 12 * H, "feature:alerts"),
            _announcement("b2", "bo", 36 * H, "feature:api"),
        ],
    )
    rules, end = app.rules(), T0 + 6 * D
    sim = simulate(app.store, app.settings, rules, T0, end)
    # one announcement for the whole account in the week, not four: Bo's first, which
    # Berlin's working day reaches before New York's
    announced = [e.email for e in sim.emails if e.email.category == "announcement"]
    assert [(e.customer_id, e.members) for e in announced] == [("bo", ("b1",))]
    held = {m.id: d for m, d in sim.decisions}
    assert held["a1"].status is Status.EXPIRED and held["a1"].rule == "account-announcements"
    # a preview of the other customer alone knows the account's mail too
    p = preview(app.store, app.settings, rules, "ana", T0, 6)
    assert not [e for e in p.emails if e.category == "announcement"]
    ana = {d.message_id: d for d in p.decisions}
    assert ana["a1"].status is Status.EXPIRED and ana["a1"].rule == "account-announcements"
    assert "b1" in ana["a1"].reason  # what filled the limit, by name
    _step(app, T0, end)
    for who in ("ana", "bo"):
        assert _sent(app, who) == sorted(
            (e.email.members, e.email.send_at) for e in sim.emails if e.email.customer_id == who
        )


def test_a_swept_check_in_goes_when_simulate_says(app: App, tmp_path: Path) -> None:
    # last written to four days before: quiet from the first sweep on
    note = {"role": "success", "subject": "hi", "body_text": "hi", "human": True}
    recorded = [
        {**note, "id": f"crm-{who}", "customer": who, "sent_at": (T0 - 4 * D).isoformat()}
        for who in ("ana", "bo")
    ]
    source = _jsonl(tmp_path / "r.jsonl", recorded)
    assert not ingest.record_messages(app.store, source, now=T0).errors
    end = T0 + 7 * D
    sim = simulate(app.store, app.settings, app.rules(), T0, end)
    predicted = sorted((e.email.customer_id, e.email.members, e.email.send_at) for e in sim.emails)
    assert predicted and all(m[0].startswith("pb:quiet:") for _, m, _ in predicted)
    _step(app, T0, end)
    sent = sorted((c, m, at) for c in ("ana", "bo") for m, at in _sent(app, c))
    assert sent == predicted


def test_final_decisions_stay_in_preview_and_an_expiry_names_its_limit(
    app: App, tmp_path: Path
) -> None:
    offer = {"role": "sales", "category": "offer", "customer": "ana"}
    _submit(
        app,
        tmp_path,
        [
            {**offer, "id": "o1", "topic": "upgrade", "send_after": (T0 + 14 * H).isoformat()},
            {**offer, "id": "o2", "topic": "upgrade", "send_after": (T0 + 15 * H).isoformat()},
            {
                **offer,
                "id": "o3",
                "topic": "pricing",
                "send_after": (T0 + 16 * H).isoformat(),
                "expires_at": (T0 + 20 * H).isoformat(),
            },
        ],
    )
    _step(app, T0, T0 + 2 * D)
    p = preview(app.store, app.settings, app.rules(), "ana", T0 + 2 * D, 3)
    decided = {d.message_id: d for d in p.decisions}
    assert decided["o1"].status is Status.SENT
    assert decided["o2"].status is Status.SUPPRESSED and decided["o2"].rule == "same-topic"
    assert decided["o3"].status is Status.EXPIRED and decided["o3"].rule == "one-offer-a-day"
    assert "o1" in decided["o3"].reason or "o1" in decided["o3"].counted


def test_an_event_and_the_event_that_cancels_it_in_one_file(app: App, tmp_path: Path) -> None:
    events = [
        {"id": "ev-1", "customer": "ana", "type": "onboarding_completed", "at": T0.isoformat()},
        {"id": "ev-2", "customer": "ana", "type": "ticket_opened", "at": (T0 + H).isoformat()},
    ]
    source = _jsonl(tmp_path / "e.jsonl", events)
    assert not ingest.ingest_events(app.store, source, now=T0 + 2 * H).errors
    assert process_events(app.store, app.rules(), T0 + 2 * H) == (1, 1)
    found = app.store.reads.message("pb:after-onboarding:ev-1")
    assert found is not None
    message, decision = found
    assert decision.status is Status.CANCELLED and decision.event == "ev-2"
    assert "ticket_opened" in decision.reason
    (record,) = app.store.reads.decision_history(message.id)
    assert record.decision.status is Status.CANCELLED


def test_explain_of_a_message_no_pass_decided_says_what_the_passes_will(
    app: App, tmp_path: Path
) -> None:
    _submit(app, tmp_path, [_announcement("a1", "ana", 10 * H, "feature:sso")])
    told = explain(app.store, app.settings, app.rules(), "a1", T0)
    assert told is not None and told.history == ()
    assert told.upcoming is not None and told.upcoming.status is Status.SCHEDULED
    p = preview(app.store, app.settings, app.rules(), "ana", T0, 7)
    assert told.upcoming == {d.message_id: d for d in p.decisions}["a1"]
    assert explain(app.store, app.settings, app.rules(), "nope", T0) is None


def test_a_cancelled_booking_is_no_contact_in_simulate_as_in_the_passes(
    app: App, tmp_path: Path
) -> None:
    """A call booked and then called off never happened: the quiet-customer check-in that a
    call would have put off comes in `simulate` exactly as the passes send it."""
    note = {"role": "success", "subject": "hi", "body_text": "hi", "human": True}
    booked = {
        **note,
        "id": "call-ana",
        "customer": "ana",
        "channel": "call",
        "planned_at": (T0 - D).isoformat(),
    }
    done = {**note, "id": "crm-bo", "customer": "bo", "sent_at": (T0 - 4 * D).isoformat()}
    source = _jsonl(tmp_path / "r.jsonl", [booked, done])
    assert not ingest.record_messages(app.store, source, now=T0 - 5 * D).errors
    assert app.store.ingest.cancel_messages(["call-ana"], "operator", T0 - 2 * D) == {}
    end = T0 + 7 * D
    sim = simulate(app.store, app.settings, app.rules(), T0, end)
    predicted = sorted((e.email.customer_id, e.email.members, e.email.send_at) for e in sim.emails)
    assert {c for c, _, _ in predicted} == {"ana", "bo"}  # ana is as quiet as bo
    _step(app, T0, end)
    sent = sorted((c, m, at) for c in ("ana", "bo") for m, at in _sent(app, c))
    assert sent == predicted


def test_a_held_email_is_logged_by_the_live_pass_not_by_preview_or_simulate(
    app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Preview and simulate run the passes on a scratch copy; an email held there for its
    template is in their decisions, not in the log (a daemon answering previews would log
    it again for every preview, as if it were held live). The live pass logs it."""
    tip = {
        "id": "tip-1",
        "customer": "ana",
        "role": "product",
        "template": "no_such_template",
        "send_after": (T0 + 10 * H).isoformat(),  # Monday 10:00 in New York
    }
    assert not ingest.submit_messages(app.store, _jsonl(tmp_path / "t.jsonl", [tip]), now=T0).errors
    caplog.set_level("INFO")
    p = preview(app.store, app.settings, app.rules(), "ana", T0, 3)
    (held,) = [d for d in p.decisions if d.message_id == "tip-1"]
    assert held.status is Status.HELD and "no_such_template" in held.reason
    simulate(app.store, app.settings, app.rules(), T0, T0 + 3 * D)
    assert not [r for r in caplog.records if "held email" in r.getMessage()]
    _step(app, T0, T0 + D)
    (line,) = [r for r in caplog.records if "held email" in r.getMessage()]
    assert line.levelname == "WARNING" and line.name == "cadence.dispatch"
