"""A daemon that was down catches up as the contract says, and digests follow cancellations."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cadence.app import App
from cadence.config import load_settings
from cadence.flows.passes import run_pass
from cadence.model import Customer, Message, Status

# Monday 23 Nov 2026; the customer is in New York; rules: weekdays 09:00-17:00 local
MON_10_NY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
RULES = 'send_windows:\n  - days: mon-fri\n    hours: "09:00-17:00"\n'


def make(db_url: str, tmp_path: Path, rules: str = RULES) -> App:
    from cadence.ledger.db import upgrade

    upgrade(db_url)
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yaml").write_text(rules)
    repo = Path(__file__).resolve().parents[2]
    env = {
        "CADENCE_DATABASE_URL": db_url,
        "CADENCE_RULES_DIR": str(tmp_path / "rules"),
        "CADENCE_TEMPLATES_DIR": str(repo / "templates"),
        "CADENCE_TRANSPORT__FILE__DIR": str(tmp_path / "outbox"),
    }
    app = App(load_settings(None, env))
    app.store.ingest.upsert_customers(
        [(Customer("c-1", "a@acme.test", "A", "America/New_York"), "d")], now=MON_10_NY
    )
    return app


def msg(mid: str, at: datetime, **kw: object) -> tuple[Message, str]:
    return Message(
        mid,
        "c-1",
        kw.pop("role", "sales"),
        subject=f"s {mid}",
        body_text="b",  # type: ignore[arg-type]
        send_after=at,
        **kw,
    ), mid  # type: ignore[arg-type]


def status(app: App) -> dict[str, Status]:
    return {m.id: d.status for m, d in app.store.reads.messages_of("c-1")}


def test_a_daemon_that_was_down_catches_up(db_url: str, tmp_path: Path) -> None:
    app = make(db_url, tmp_path)
    app.store.ingest.add_messages(
        [
            msg("inside", MON_10_NY),  # due 10:00, still inside the window at 16:00
            msg("closed", MON_10_NY + timedelta(hours=6, minutes=30)),  # due 16:30, found at 19:00
            msg("stale", MON_10_NY, expires_at=MON_10_NY + timedelta(hours=2)),
        ],
        now=MON_10_NY,
    )
    run_pass(app, MON_10_NY - timedelta(hours=3))  # plans everything, nothing due yet
    # down from 07:00 to 16:00 local: the overdue one inside its window goes now
    report = run_pass(app, MON_10_NY + timedelta(hours=6))
    assert status(app)["inside"] is Status.SENT and len(report.dispatch.sent) == 1
    assert status(app)["stale"] is Status.EXPIRED
    # down again until 19:00 local: the window closed; it waits for Tuesday 09:00, not tonight
    late = MON_10_NY + timedelta(hours=9)
    assert run_pass(app, late).dispatch.sent == []
    emails = {e.members: e for e, s in app.store.reads.emails_of("c-1") if s == "planned"}
    nxt = emails[("closed",)].send_at.astimezone(ZoneInfo("America/New_York"))
    assert (nxt.strftime("%a"), nxt.time()) == ("Tue", time(9, 0))
    app.close()


def test_cancelling_a_member_rebuilds_the_digest(db_url: str, tmp_path: Path) -> None:
    rules = 'merge:\n  - name: daily\n    categories: [tip]\n    at: "09:00"\n'
    app = make(db_url, tmp_path, rules)
    app.store.ingest.add_messages(
        [
            msg("t1", MON_10_NY, category="tip", role="product"),
            msg("t2", MON_10_NY, category="tip", role="marketing"),
        ],
        now=MON_10_NY,
    )
    run_pass(app, MON_10_NY)
    (digest,) = [e for e, s in app.store.reads.emails_of("c-1") if s == "planned"]
    assert set(digest.members) == {"t1", "t2"}
    app.store.ingest.cancel_messages(["t1"], "kim", MON_10_NY)
    run_pass(app, MON_10_NY + timedelta(minutes=1))
    (rebuilt,) = [e for e, s in app.store.reads.emails_of("c-1") if s == "planned"]
    assert rebuilt.members == ("t2",) and rebuilt.id != digest.id
    app.store.ingest.cancel_messages(["t2"], "kim", MON_10_NY)
    run_pass(app, MON_10_NY + timedelta(minutes=2))
    assert [e for e, s in app.store.reads.emails_of("c-1") if s == "planned"] == []
    app.close()
