"""Issue 4's promises, through the command line on the sample data."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

from cadence.starter.writer import next_monday

from .conftest import Cli


def _base() -> datetime:
    return next_monday(datetime.now(UTC))


def _preview(cli: Cli, customer: str, *args: str) -> dict:  # type: ignore[type-arg]
    out = cli(
        "preview", customer, "--at", _base().isoformat(), "--days", "21", "--format", "json", *args
    )
    return json.loads(out.out)


def test_two_roles_within_a_day_become_one_email_and_the_preview_says_so(setup: Cli) -> None:
    p = _preview(setup, "c-17")
    (digest,) = [e for e in p["emails"] if set(e["members"]) >= {"cs-12", "prd-7"}]
    decisions = {d["message"]: d for d in p["decisions"]}
    for mid in ("cs-12", "prd-7"):
        assert decisions[mid]["status"] == "merged" and decisions[mid]["email"] == digest["id"]
        assert decisions[mid]["rule"] == "onboarding-digest"
    rendered = setup("preview", "c-17", "--at", _base().isoformat(), "--render")
    assert "Ana" in rendered.out  # the final body, not only the plan


def test_announcement_after_a_csm_note_on_the_topic_is_suppressed(setup: Cli) -> None:
    d = {x["message"]: x for x in _preview(setup, "c-17")["decisions"]}["mkt-301"]
    assert d["status"] == "suppressed" and d["rule"] == "same-topic-twice"
    assert "crm-" in d["reason"] and "feature:reports" in d["reason"]


def test_unsubscribed_customer_gets_no_marketing_but_a_receipt(setup: Cli) -> None:
    p = _preview(setup, "c-22")
    statuses = {d["message"]: (d["status"], d["rule"]) for d in p["decisions"]}
    assert statuses["bill-22"][0] == "scheduled"
    marketing = [d for d in p["decisions"] if d.get("role") == "marketing"]
    assert marketing and all(
        d["status"] == "suppressed" and d["rule"] == "unsubscribed" for d in marketing
    )


def test_preview_with_rules_not_yet_live(setup: Cli) -> None:
    draft = setup.cwd / "draft"
    shutil.copytree(setup.cwd / "rules", draft)
    text = (draft / "fatigue.yaml").read_text().replace("same: topic", "same: category")
    (draft / "fatigue.yaml").write_text(text)
    live = _preview(setup, "c-17")
    trial = _preview(setup, "c-17", "--rules", str(draft))
    assert live["decisions"] != trial["decisions"]
    assert {d["rules_version"] for d in live["decisions"] if d["status"] == "merged"} != {
        d["rules_version"] for d in trial["decisions"] if d["status"] == "merged"
    }


def test_simulate_replay_history_prints_before_and_after(setup: Cli) -> None:
    start = (_base() - timedelta(days=14)).isoformat()
    end = (_base() + timedelta(days=28)).isoformat()
    table = setup("simulate", "--start", start, "--end", end, "--replay-history")
    assert "before (every role on its own)" in table.out and "after (with the rules)" in table.out
    out = json.loads(setup("simulate", "--start", start, "--end", end, "--format", "json").out)
    stats = out["stats"]["emails_per_customer_week"]
    assert stats["after"]["mean"] < stats["before"]["mean"]
    assert all("customer" in d for d in out["decisions"]) and out["emails"]


def test_explain_keeps_the_old_rules_version_after_a_change(setup: Cli) -> None:
    base = _base()
    setup("run", "--once", "--now", base.isoformat())
    (first,) = json.loads(setup("explain", "mkt-302", "--format", "json").out)["history"]
    assert first["status"] == "scheduled"
    (setup.cwd / "rules" / "pause.yaml").write_text(
        "suppress:\n  - name: pause-marketing\n    roles: [marketing]\n"
    )
    setup("run", "--once", "--now", (base + timedelta(hours=1)).isoformat())
    history = json.loads(setup("explain", "mkt-302", "--format", "json").out)["history"]
    assert history[0] == first  # the earlier decision keeps the rules it was made under
    last = history[-1]
    assert last["status"] == "suppressed" and last["rule"] == "pause-marketing"
    assert last["rules_version"] != first["rules_version"]
    assert {"status", "rules_version"} <= set(last["changed"])
    assert "pause-marketing" in setup("explain", "mkt-302").out
