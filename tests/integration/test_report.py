"""The report's figures match the ledger: recomputed here straight from the tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from cadence.app import App
from cadence.config import load_settings
from cadence.flows.passes import run_pass
from cadence.model import Customer, Event, Message
from cadence.report.figures import build

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # Monday, 09:00 in New York


def test_figures_match_the_ledger(db_url: str, tmp_path: Path) -> None:
    from cadence.ledger.db import upgrade

    upgrade(db_url)
    env = {
        "CADENCE_DATABASE_URL": db_url,
        "CADENCE_RULES_DIR": str(REPO / "rules"),
        "CADENCE_TEMPLATES_DIR": str(REPO / "templates"),
        "CADENCE_TRANSPORT__FILE__DIR": str(tmp_path / "outbox"),
    }
    app = App(load_settings(None, env))
    store = app.store
    store.ingest.upsert_customers(
        [
            (
                Customer(
                    f"c-{i}", f"c{i}@acme.test", "C", "America/New_York", f"a{i}", {"plan": "pro"}
                ),
                "d",
            )
            for i in range(12)
        ],
        now=T0,
    )
    roles = [
        ("marketing", "announcement"),
        ("product", "tip"),
        ("sales", "offer"),
        ("success", "check-in"),
    ]
    store.ingest.add_messages(
        [
            (
                Message(
                    f"m-{i}-{k}",
                    f"c-{i}",
                    role,
                    category=cat,
                    topic=f"t{k % 3}",
                    subject="s",
                    body_text="b",
                    send_after=T0 + timedelta(days=k),
                ),
                "x",
            )
            for i in range(12)
            for k, (role, cat) in enumerate(roles * 2)
        ],
        now=T0,
    )
    t = T0
    for _ in range(60):
        run_pass(app, t, sweep=False)
        t += timedelta(hours=4)
    sent = [
        e
        for cid in store.reads.customer_ids()
        for e, s in store.reads.emails_of(cid)
        if s == "sent"
    ]
    assert sent
    opened = [e for e in sent if e.role == "product"]
    store.ingest.add_events(
        [
            (
                Event(
                    f"o-{e.id}", e.customer_id, "opened", T0 + timedelta(days=1), {"email_id": e.id}
                ),
                "o",
            )
            for e in opened
        ]
        + [
            (
                Event(
                    f"u-{sent[0].id}",
                    sent[0].customer_id,
                    "unsubscribed",
                    T0 + timedelta(days=2),
                    {"email_id": sent[0].id},
                ),
                "u",
            )
        ],
        now=T0,
    )
    until = T0 + timedelta(days=14)
    since = T0 - timedelta(days=1)
    fig = build(store.reads.report_rows(since, until), since, until, "UTC")

    with store.engine.connect() as conn:
        proposed = dict(
            conn.execute(text("SELECT role, count(*) FROM messages GROUP BY role")).all()
        )
        went = dict(
            conn.execute(
                text("SELECT role, count(*) FROM messages WHERE status = 'sent' GROUP BY role")
            ).all()
        )
        emails = conn.execute(text("SELECT count(*) FROM emails WHERE status = 'sent'")).scalar()
        suppressed = conn.execute(
            text("SELECT count(*) FROM messages WHERE status = 'suppressed'")
        ).scalar()
    for role, n in proposed.items():
        assert fig["by"]["role"][role]["proposed"] == n
        got = fig["by"]["role"][role]
        assert got.get("sent", 0) == went.get(role, 0)
    assert fig["totals"]["emails"] == emails
    assert sum(v.get("suppressed", 0) for v in fig["by"]["role"].values()) == suppressed
    product = fig["engagement"]["role"]["product"]
    assert product["open"] == 1.0 and product["emails"] == len({e.id for e in opened})
    assert fig["engagement"]["role"]["sales"].get("open", 0) == 0
    per_customer = {c: 0 for c in store.reads.customer_ids()}
    for e in sent:
        per_customer[e.customer_id] += 1
    assert fig["top_customers"][0]["emails"] == max(per_customer.values())
    assert sum(map(sum, fig["heatmap_local_weekday_hour"])) == emails
    flagged = {(r["dimension"], r["value"]) for r in fig["review"]}
    assert ("role", "marketing") in flagged or ("role", "sales") in flagged  # never opened
    app.close()
