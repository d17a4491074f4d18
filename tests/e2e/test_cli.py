"""The command line end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cadence.starter.writer import next_monday

from .conftest import Cli

D = timedelta(days=1)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_preview_three_weeks_holds_every_limit_and_window(setup: Cli) -> None:
    base = next_monday(datetime.now(UTC))
    out = setup("preview", "c-17", "--at", base.isoformat(), "--days", "21", "--format", "json")
    p = json.loads(out.out)
    assert p["customer"] == "c-17"
    decided = [d["message"] for d in p["decisions"]]
    assert len(decided) == len(set(decided))  # exactly one decision each
    messages = [
        json.loads(line) for line in (setup.cwd / "samples/messages.jsonl").read_text().splitlines()
    ]
    mine = {m["id"]: m for m in messages if m["customer"] == "c-17"}
    assert len(mine) >= 8 and len({m["role"] for m in mine.values()}) >= 4
    assert set(mine) <= set(decided)
    assert all(d["reason"] and d["status"] for d in p["decisions"])
    tz = ZoneInfo("America/New_York")
    recorded = [
        json.loads(line) for line in (setup.cwd / "samples/recorded.jsonl").read_text().splitlines()
    ]
    counted = [_time(r["sent_at"]) for r in recorded if r["customer"] == "c-17"]
    for e in p["emails"]:
        at = _time(e["send_at"])
        local = at.astimezone(tz)
        if e["transactional"]:
            continue
        counted.append(at)
        if e["role"] == "support":
            assert 7 <= local.hour < 21
        else:
            assert local.weekday() < 5 and 9 <= local.hour < 17, e
    counted.sort()
    for i, t in enumerate(counted):  # weekly-total: 3 in any 7 days; breathing-room: 20h
        assert len([u for u in counted if t <= u < t + 7 * D]) <= 3
        if i:
            assert t - counted[i - 1] >= timedelta(hours=20)
    merged = [d for d in p["decisions"] if d["status"] == "merged"]
    assert {d["message"] for d in merged} >= {"cs-12", "prd-7"}
    table = setup("preview", "c-17", "--at", base.isoformat(), "--days", "21")
    assert "Every decision" in table.out and "onboarding-digest" in table.out


def test_run_once_writes_eml_and_never_twice(setup: Cli) -> None:
    base = next_monday(datetime.now(UTC))
    later = (base + 2 * D + timedelta(hours=12)).isoformat()  # Wed: the onboarding digest is due
    first = setup("run", "--once", "--now", later)
    assert "sent" in first.out
    outbox = setup.cwd / "outbox"
    files = sorted(outbox.glob("*.eml"))
    assert files
    before = {f.name: f.read_bytes() for f in files}
    setup("run", "--once", "--now", later)
    assert {f.name: f.read_bytes() for f in outbox.glob("*.eml")} == before
    for f in files:
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        for header in ("Message-ID", "Date", "X-Cadence-Customer", "X-Cadence-Messages"):
            assert msg[header], (f.name, header)
        if msg["List-Unsubscribe"]:
            assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    non_transactional = [
        f
        for f in files
        if "receipt" not in f.read_text()
        and email.message_from_bytes(f.read_bytes())["List-Unsubscribe"]
    ]
    assert non_transactional


def test_bad_input_file_changes_nothing_and_names_the_line(setup: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(
            {
                "id": "n-1",
                "customer": "c-17",
                "role": "sales",
                "subject": "s",
                "body_text": "b",
                "send_after": "2026-12-01T09:00:00Z",
            }
        )
        + "\n"
        + json.dumps(
            {
                "id": "n-2",
                "customer": "c-17",
                "role": "sales",
                "subject": "s",
                "body_text": "b",
                "send_after": "2026-12-01T09:00:00",
            }
        )
        + "\n"
    )
    result = setup("messages", "submit", str(bad), check=False)
    assert result.code == 1
    assert f"{bad}:2: " in result.err and "no UTC offset" in result.err
    preview = json.loads(setup("preview", "c-17", "--format", "json", "--days", "60").out)
    assert "n-1" not in {d["message"] for d in preview["decisions"]}
    stdin = setup("messages", "submit", "-", stdin=bad.read_text().splitlines()[0] + "\n")
    assert "1 added" in stdin.out


def test_rules_check_reports_file_line_col(cli: Cli) -> None:
    cli("init", ".")
    assert "rules version" in cli("rules", "check").out
    (cli.cwd / "rules" / "extra.yaml").write_text(
        "limits:\n  - name: x\n    maxx: 3\n    per: 7d\n"
    )
    result = cli("rules", "check", check=False)
    assert result.code == 1
    assert "rules/extra.yaml:3:5: unknown key `maxx`" in result.err
    assert "did you mean `max`?" in result.err


def test_config_errors_and_usage(cli: Cli) -> None:
    (cli.cwd / "cadence.yaml").write_text("transprt:\n  kind: file\n")
    result = cli("preview", "c-1", check=False)
    assert result.code == 1 and "cadence.yaml" in result.err and "transprt" in result.err
    (cli.cwd / "cadence.yaml").unlink()
    assert cli("preview", "c-1", "--format", "xml", check=False).code == 2
    assert cli("preview", "c-1", "--at", "2026-11-23T09:00:00", check=False).code == 2
    assert cli("nonsense", check=False).code == 2
    unknown = cli("preview", "c-404", check=False)
    assert unknown.code == 1 and "c-404" in unknown.err


def test_demo_tells_the_story(cli: Cli) -> None:
    result = cli("demo", "demo-here")
    assert "Try next" in result.out and "preview c-17" in result.out
    assert list((cli.cwd / "demo-here" / "outbox").glob("*.eml"))
    # the CSMs' calls: the section, and emails they held back or made redundant, each row
    # naming the call as the engine's decision did
    out = " ".join(result.out.split())  # the tables wrap long reasons
    assert "3. Calls and meetings count too" in out
    assert "emails held back or made redundant by a call or meeting" in out
    assert "call-covers-the-topic: redundant: Lee Morgan's call call-5521 (success, planned)" in out
    assert "breathing-room keeps 20h after Lee Morgan's call call-5521" in out
    assert "weekly-total already has 3" in out and "Kim Lee's call call-5498 (success)" in out
    assert "Every decision, with its reason" in out and "onboarding-digest" in out
    # the before and after, in issue 22's three figures: those `cadence report` gives for the
    # demo's weeks, which the story names as the command to try
    command = out.split("cadence -c ")[-1].split(" (these figures")[0].split()
    assert command[1] == "report"
    figures = json.loads(cli("-c", *command, "--format", "json").out)["outcome"]
    without = figures["without_rules"]
    assert "Before and after, in three figures" in out
    assert f"each of the {without['emails']} messages" in out
    assert f"With the rules, {figures['emails']} emails went" in out
    assert f"p50 {without['p50']:g}, p95 {without['p95']:g}" in out
    assert f"p50 {figures['p50']:g}, p95 {figures['p95']:g}" in out
    assert f"{figures['on_time']:.1%} of {figures['transactional']}" in out
    assert f"{figures['delivered']:.1%} of {figures['distinct']}" in out
    assert without["emails"] > figures["emails"] and without["p95"] > figures["p95"]
    assert figures["on_time"] == 1.0 and figures["delivered"] > 0.8
    assert "no-promotion-while-ticket-open held" in out and "expired after the hold" in out
