"""Calls and meetings in the ledger, through the command line: a booked call on the topic
keeps the automated email from going, marking it done keeps it so, cancelling it lets the
email go; a weekly cap counts a meeting unless it is told to count email alone; and the CRM
export shown in docs/touches.md imports as the guide says.

Each test has its own folder and SQLite file, with only the rules it is about (no starter
rules or playbooks that would add mail of their own). Times are a day or two from now, so
nothing recorded is older than what the engine reads."""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cli

REPO = Path(__file__).resolve().parents[2]
H = timedelta(hours=1)
D = timedelta(days=1)
# 09:00 UTC the day after tomorrow: the customer's day, in UTC, with no send window to wait for
BASE = (datetime.now(UTC) + 2 * D).replace(hour=9, minute=0, second=0, microsecond=0)

COVERS = """\
suppress:
  - name: call-covers-onboarding
    categories: [onboarding]
    human: false
    channels: [call, meeting]
    same: topic
    within: 1d
"""

BOOKED_HEADER = (
    "id,customer,role,channel,category,topic,summary,from.email,from.name,human,planned_at,sent_at"
)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def folder(cli: Cli, rules: str) -> None:
    """A working folder with `rules` alone, customer c-1 (Ana) and the automated onboarding
    email prd-1 (product, onboarding, topic onboarding) due two hours after BASE."""
    cli("init", ".")
    for starter in ("fatigue.yaml", "playbooks.yaml"):
        (cli.cwd / "rules" / starter).unlink()
    (cli.cwd / "rules" / "touches.yaml").write_text(rules)
    cli("rules", "check")  # exits 1, failing the test, if the rules do not load
    ana = {"id": "c-1", "email": "ana@acme.test", "name": "Ana", "timezone": "UTC"}
    cli("customers", "import", "-", stdin=json.dumps(ana) + "\n")
    onboarding = {
        "id": "prd-1",
        "customer": "c-1",
        "role": "product",
        "category": "onboarding",
        "topic": "onboarding",
        "template": "onboarding_welcome",
        "send_after": iso(BASE + 2 * H),
    }
    cli("messages", "submit", "-", stdin=json.dumps(onboarding) + "\n")


def call(**times: str) -> dict[str, Any]:
    """Kim's onboarding call call-1 for Ana, with `planned_at` or `sent_at`."""
    return {
        "id": "call-1",
        "customer": "c-1",
        "role": "success",
        "channel": "call",
        "category": "onboarding",
        "topic": "onboarding",
        "summary": "Onboarding call: the first dashboard",
        "from": {"email": "kim@vendor.test", "name": "Kim"},
        "human": True,
        **times,
    }


def book_call_from_csv(cli: Cli) -> None:
    """The call booked for 16:00 the same day, as a CRM's CSV export says it."""
    row = (
        "call-1,c-1,success,call,onboarding,onboarding,Onboarding call: the first dashboard,"
        f"kim@vendor.test,Kim,true,{iso(BASE + 7 * H)},"
    )
    (cli.cwd / "crm.csv").write_text(f"{BOOKED_HEADER}\n{row}\n")
    assert cli("messages", "record", "crm.csv").out.startswith("1 added, 0 updated")


def decisions(cli: Cli, at: datetime, days: int = 1) -> dict[str, dict[str, Any]]:
    out = cli("preview", "c-1", "--at", iso(at), "--days", str(days), "--format", "json").out
    return {d["message"]: d for d in json.loads(out)["decisions"]}


def outbox(cli: Cli) -> list[Path]:
    return sorted((cli.cwd / "outbox").glob("*.eml"))


def run(cli: Cli, at: datetime) -> str:
    return cli("run", "--once", "--now", iso(at)).out


def test_a_booked_call_on_the_topic_keeps_the_email_and_marking_it_done_keeps_it_so(
    cli: Cli,
) -> None:
    folder(cli, COVERS)
    # without the call the email would go at 11:00 (the control for what follows)
    assert decisions(cli, BASE)["prd-1"]["status"] == "scheduled"
    book_call_from_csv(cli)

    before = decisions(cli, BASE)["prd-1"]
    assert before["status"] == "suppressed" and before["rule"] == "call-covers-onboarding"
    assert "Kim's call call-1 (success, planned)" in before["reason"]
    assert "on the same topic `onboarding` is planned for" in before["reason"]

    assert "sent 0" in run(cli, BASE + 2 * H)
    assert outbox(cli) == []
    explained = json.loads(cli("explain", "prd-1", "--format", "json").out)
    (decided,) = explained["history"]
    assert decided["status"] == "suppressed" and "Kim's call call-1" in decided["reason"]

    # the call took place at 16:05: the same record with `sent_at` marks it done
    done = call(sent_at=iso(BASE + 7 * H + timedelta(minutes=5)))
    marked = cli("messages", "record", "-", stdin=json.dumps(done) + "\n")
    assert marked.out.strip() == "0 added, 1 updated, 0 unchanged"
    later = decisions(cli, BASE + 8 * H)
    assert later["call-1"]["status"] == "recorded" and "planned" not in later["call-1"]["reason"]
    assert "sent 0" in run(cli, BASE + 8 * H)
    assert "sent 0" in run(cli, BASE + 2 * D)
    assert outbox(cli) == []
    # a touch that happened is history: it can no longer be cancelled
    refused = cli("messages", "cancel", "call-1", check=False)
    assert refused.code == 1 and "call-1: not cancelled" in refused.err


def test_a_cancelled_call_no_longer_covers_the_email(cli: Cli) -> None:
    folder(cli, COVERS)
    book_call_from_csv(cli)
    assert decisions(cli, BASE)["prd-1"]["status"] == "suppressed"
    assert cli("messages", "cancel", "call-1", "--by", "kim").out.strip() == "1 message cancelled"
    assert decisions(cli, BASE)["prd-1"]["status"] == "scheduled"

    assert "sent 1" in run(cli, BASE + 2 * H)
    (eml,) = outbox(cli)
    sent = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert sent["To"] == "Ana <ana@acme.test>"
    assert sent["X-Cadence-Messages"] == "prd-1" and sent["X-Cadence-Customer"] == "c-1"
    assert sent["Subject"] == "Welcome to Vendor, Ana"
    body = sent.get_body(preferencelist=("plain",))
    assert body is not None and "Your account is ready" in body.get_content()


CAP = "limits:\n  - name: weekly-cap\n    max: 1\n    per: 7d\n"
EMAIL_CAP = "limits:\n  - name: weekly-cap\n    channels: [email]\n    max: 1\n    per: 7d\n"


@pytest.mark.parametrize(
    ("rules", "counts_the_meeting"),
    [(CAP, True), (EMAIL_CAP, False)],
    ids=["every-channel", "email-only"],
)
def test_a_weekly_cap_counts_yesterdays_meeting_unless_told_email(
    cli: Cli, rules: str, counts_the_meeting: bool
) -> None:
    folder(cli, rules)
    meeting = {
        "id": "meet-1",
        "customer": "c-1",
        "role": "success",
        "channel": "meeting",
        "category": "qbr",
        "summary": "Quarterly business review",
        "from": {"email": "kim@vendor.test", "name": "Kim"},
        "human": True,
        "sent_at": iso(BASE - D),
    }
    cli("messages", "record", "-", stdin=json.dumps(meeting) + "\n")
    out = run(cli, BASE + 2 * H)
    if counts_the_meeting:
        assert "sent 0" in out and outbox(cli) == []
        (decided,) = json.loads(cli("explain", "prd-1", "--format", "json").out)["history"]
        assert decided["status"] == "deferred" and decided["rule"] == "weekly-cap"
        assert "Kim's meeting meet-1 (success)" in decided["reason"]
        assert decided["send_at"] == iso(BASE + 6 * D)  # a week after the meeting
    else:
        assert "sent 1" in out
        (eml,) = outbox(cli)
        assert "X-Cadence-Messages: prd-1" in eml.read_text()


def test_the_crm_export_in_the_guide_imports_as_it_says(setup: Cli) -> None:
    """docs/examples/crm-touches.csv, after the guide's JSON Lines: three touches added and
    call-2041 marked done; again, all unchanged; and the guide shows the line printed."""
    guide = (REPO / "docs" / "touches.md").read_text()
    blocks = re.findall(r"```jsonl\n(.*?)```", guide, re.S)
    done_elsewhere, booking = blocks[0], blocks[1]
    assert '"planned_at"' in booking and '"call-2041"' in booking
    assert setup("messages", "record", "-", stdin=done_elsewhere).out.startswith("2 added")
    assert setup("messages", "record", "-", stdin=booking).out.startswith("1 added")

    example = str(REPO / "docs" / "examples" / "crm-touches.csv")
    first = setup("messages", "record", example).out.strip()
    assert first == "3 added, 1 updated, 0 unchanged"
    assert f"# {first}" in guide
    again = setup("messages", "record", example).out.strip()
    assert again == "0 added, 0 updated, 4 unchanged"
    # the JSON line that marks call-2041 done is the CSV row: nothing left to change
    marking = blocks[2]
    assert '"sent_at"' in marking and '"call-2041"' in marking
    assert setup("messages", "record", "-", stdin=marking).out.startswith("0 added, 0 updated, 1")

    touches = {
        d["message"]: d
        for d in json.loads(
            setup(
                "preview", "c-17", "--at", "2026-11-28T00:00:00Z", "--days", "7", "--format", "json"
            ).out
        )["decisions"]
    }
    assert touches["call-2041"]["status"] == "recorded"
    assert touches["call-2041"]["send_at"] == "2026-12-01T14:40:00Z"


def test_a_bad_row_in_an_export_names_its_line_and_stores_nothing(setup: Cli) -> None:
    export = setup.cwd / "export.csv"
    export.write_text(
        f"{BOOKED_HEADER}\n"
        "call-7,c-17,success,call,,,Fine,kim@vendor.test,Kim,true,,2026-12-01T10:00:00Z\n"
        "call-8,c-17,success,Phone Call,,,,,,yes,,2026-12-01T11:00:00\n"
    )
    result = setup("messages", "record", str(export), check=False)
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith(f"{export}:3: ")]
    assert '`human` must be true or false, not "yes"' in line
    assert "no UTC offset" in line and "is not a channel name" in line
    assert "rejected, nothing stored" in result.err
    kept = setup("messages", "record", str(export), "--skip-invalid", check=False)
    assert kept.code == 1 and kept.out.startswith("1 added")
