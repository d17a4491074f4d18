"""What `simulate`, `preview` and `explain` print is what `cadence run` then does, through
the command line on the sample data, as a user runs it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from zoneinfo import ZoneInfo

from cadence.starter.writer import next_monday

from .conftest import Cli


def _base() -> datetime:
    return next_monday(datetime.now(UTC))


def test_simulate_json_says_what_run_once_then_sends(setup: Cli) -> None:
    base = _base()
    start, end = base, base + timedelta(days=1)
    out = setup("simulate", "--start", start.isoformat(), "--end", end.isoformat())
    assert "nothing was sent or stored" in out.out
    sim = json.loads(
        setup(
            "simulate", "--start", start.isoformat(), "--end", end.isoformat(), "--format", "json"
        ).out
    )
    assert sim["emails"]
    customers = {
        json.loads(line)["id"]: json.loads(line).get("timezone") or "UTC"
        for line in (setup.cwd / "samples" / "customers.jsonl").read_text().splitlines()
    }
    for e in sim["emails"]:
        # local times in the customer's own zone, and the subject as it goes out
        local = datetime.fromisoformat(e["send_at_local"])
        sent = datetime.fromisoformat(e["send_at"].replace("Z", "+00:00"))
        assert local == sent
        assert local.utcoffset() == sent.astimezone(ZoneInfo(customers[e["customer"]])).utcoffset()
        assert e["subject"]
    # a daemon ticking every hour through the same day sends exactly these emails (every
    # time in the samples and their rules falls on a whole hour)
    t = start
    while t <= end:
        setup("run", "--once", "--now", t.isoformat())
        t += timedelta(hours=1)
    went = set()
    for path in (setup.cwd / "outbox").glob("*.eml"):
        mail = message_from_bytes(path.read_bytes())
        went.add((mail["X-Cadence-Customer"], mail["X-Cadence-Messages"]))
    assert went == {(e["customer"], ",".join(e["members"])) for e in sim["emails"]}


def test_explain_before_any_pass_says_what_the_passes_will_do(setup: Cli) -> None:
    at = _base().isoformat()
    told = json.loads(setup("explain", "cs-12", "--at", at, "--format", "json").out)
    assert told["history"] == []
    preview = json.loads(setup("preview", "c-17", "--at", at, "--format", "json").out)
    (expected,) = [d for d in preview["decisions"] if d["message"] == "cs-12"]
    assert told["upcoming"] == {k: expected[k] for k in told["upcoming"]}
    table = setup("explain", "cs-12", "--at", at).out
    assert "next (preview" in table and expected["status"] in table
    missing = setup("explain", "nope", check=False)
    assert missing.code == 1 and "no message 'nope'" in missing.err
