"""Blackout dates and holidays from the command line: `preview` holds mail past them and says
why, `rules check` points at a bad date."""

from __future__ import annotations

import json

from .conftest import Cli

RULES = """\
send_windows:
  - name: working-hours
    days: mon-fri
    hours: "09:00-17:00"
    blackouts: ["2026-12-24..2026-12-26", 2027-01-01]
    holidays: customer
"""
CUSTOMER = {
    "id": "c-1",
    "email": "ana@acme.test",
    "name": "Ana",
    "timezone": "America/New_York",
    "attributes": {"country": "US"},
}
# Thursday 24 December 2026, 10:00 in New York
EVE = "2026-12-24T15:00:00Z"


def _message(mid: str, **kw: object) -> str:
    fields = {
        "id": mid,
        "customer": "c-1",
        "role": "marketing",
        "category": "tip",
        "subject": f"subject {mid}",
        "body_text": "body",
        "send_after": EVE,
        **kw,
    }
    return json.dumps(fields)


def test_preview_holds_mail_past_a_blackout_and_says_why(cli: Cli) -> None:
    cli("init", ".")
    draft = cli.cwd / "draft"
    draft.mkdir()
    (draft / "windows.yaml").write_text(RULES)
    (cli.cwd / "c.jsonl").write_text(json.dumps(CUSTOMER) + "\n")
    cli("customers", "import", "c.jsonl")
    receipt = _message("r-1", role="billing", category="receipt", transactional=True)
    cli("messages", "submit", "-", stdin=_message("tip-1") + "\n" + receipt + "\n")

    out = cli("preview", "c-1", "--at", EVE, "--rules", "draft", "--format", "json").out
    preview = json.loads(out)
    sends = {tuple(e["members"]): e["send_at"] for e in preview["emails"]}
    # Monday 28 December, 09:00 in New York; the receipt goes at once
    assert sends == {("tip-1",): "2026-12-28T14:00:00Z", ("r-1",): EVE}
    decided = {d["message"]: d for d in preview["decisions"]}
    assert decided["tip-1"]["reason"] == (
        "goes Mon 28 Dec 09:00 EST; held past 2026-12-24..2026-12-26 (a blackout)"
    )

    table = cli("preview", "c-1", "--at", EVE, "--rules", "draft").out
    assert "(a blackout)" in table

    # a tip on New Year's Eve afternoon waits past the blackout on the 1st and the weekend
    cli("messages", "submit", "-", stdin=_message("tip-2", send_after="2026-12-31T22:30:00Z"))
    later = cli(
        "preview", "c-1", "--at", EVE, "--days", "14", "--rules", "draft", "--format", "json"
    )
    emails = {tuple(e["members"]): e["send_at"] for e in json.loads(later.out)["emails"]}
    assert emails[("tip-2",)] == "2027-01-04T14:00:00Z"


def test_rules_check_points_at_a_bad_blackout(cli: Cli) -> None:
    cli("init", ".")
    (cli.cwd / "rules" / "windows.yaml").write_text(
        RULES.replace("2027-01-01", "2027-02-30").replace("customer", "USA-XX")
    )
    result = cli("rules", "check", check=False)
    assert result.code == 1
    lines = (result.out + result.err).splitlines()
    assert any("windows.yaml:5:43: `2027-02-30` is not a day of the calendar" in x for x in lines)
    assert any("windows.yaml:6:15: `USA-XX`: USA has no subdivision `XX`" in x for x in lines)
