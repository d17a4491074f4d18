"""`cadence report` on the demo's data: the table printed once with counts that agree and a
partial week said to be one, and the HTML form opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from .conftest import Cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One demo of a week for the tests of this file (it takes a while to run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")}
    env["COLUMNS"] = "200"
    cli = Cli(tmp_path_factory.mktemp("report"), env)
    cli("demo", "demo", "--weeks", "1")
    return cli


def test_the_table_is_printed_once_with_counts_that_agree(demo: Cli) -> None:
    """Issue 24: the table came out twice; its headline counted emails where the sent column
    counted messages; a last partial week read as a drop."""
    from cadence.clock import utcnow
    from cadence.flows.demo import next_monday

    # the demo ran its week from the Monday after today: ten days up to its end, the first
    # three of them before it began, make a whole week and a partial one of three days
    end = (next_monday(utcnow()) + timedelta(weeks=1)).isoformat()
    config = str(demo.cwd / "demo" / "cadence.yaml")
    args = ("-c", config, "report", "--since", "10d", "--until", end)
    out = demo(*args).out
    figures = json.loads(demo(*args, "--format", "json").out)
    totals = figures["totals"]
    headline = re.search(r"(\d+) messages, (\d+) of them sent in (\d+) emails", out)
    assert headline is not None, out
    assert out.count(headline.group(0)) == 1
    for title in ("The outcome", "Messages by role", "Touches by channel and role"):
        assert out.count(title) == 1, title
    messages, sent, emails = map(int, headline.groups())
    assert (messages, sent, emails) == (
        totals["messages"],
        totals["messages_sent"],
        totals["emails"],
    )
    # the role table's total row: its sent column adds up to the headline's messages sent
    row = re.search(r"│ all +│ (\d+) +│ (\d+) +│", out)
    assert row is not None, out
    assert (int(row.group(1)), int(row.group(2))) == (messages, sent)
    assert sent > emails  # the demo merges: more messages went than emails
    outcome = figures["outcome"]
    assert outcome["emails"] + totals["owner_alerts"] == emails
    assert f"p50 {outcome['p50']:g}, p95 {outcome['p95']:g}" in out
    assert f"Transactional mail on time (within 5 minutes): {outcome['on_time']:.1%}" in out
    assert f"Distinct content delivered: {outcome['delivered']:.1%} of {outcome['distinct']}" in out
    assert outcome["without_rules"]["emails"] > outcome["emails"]
    # the partial week: labelled in the table, said in words and in JSON, out of the p50
    assert figures["partial_week"] == {"week": 2, "days": 3.0}
    assert figures["emails_per_customer_week"]["whole_weeks"] == outcome["weeks"] == 1
    assert "week 2 (partial)" in out
    assert "week 2 is partial (3 of 7 days)" in " ".join(out.split())


def test_since_is_a_span_back_from_until_or_a_time_of_its_own(demo: Cli) -> None:
    """`ledger --since` takes a time; `report --since` a span, and now a time too: the same
    period asked both ways gives the same figures."""
    from datetime import datetime

    from cadence.clock import utcnow
    from cadence.flows.demo import next_monday

    end = next_monday(utcnow()) + timedelta(weeks=1)
    config = str(demo.cwd / "demo" / "cadence.yaml")
    base = ("-c", config, "report", "--until", end.isoformat(), "--format", "json")
    by_span = json.loads(demo(*base, "--since", "10d").out)
    start = (end - timedelta(days=10)).isoformat()
    by_time = json.loads(demo(*base, "--since", start).out)
    assert by_time == by_span and by_time["totals"]["messages"] > 0
    assert datetime.fromisoformat(by_time["since"]) == end - timedelta(days=10)
    for since, said in (
        ("2026-11-01", "error: --since '2026-11-01' is a date, not a time; write e.g. "),
        ("3x", "error: --since: '3x' is not a duration"),
        (end.isoformat(), f"error: --since '{end.isoformat()}' is not before the end"),
    ):
        r = demo(*base, "--since", since, check=False)
        assert r.code == 2 and r.err.startswith(said), (since, r)


def test_demo_report_renders_with_its_charts(demo: Cli, tmp_path: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on this machine: apt-get install chromium")
    cli = demo
    config = str(cli.cwd / "demo" / "cadence.yaml")
    out = tmp_path / "report.html"
    cli(
        "-c",
        config,
        "report",
        "--since",
        "150d",
        "--until",
        "2027-01-31T00:00:00Z",
        "--format",
        "html",
        "--out",
        str(out),
    )
    figures = json.loads(
        cli(
            "-c",
            config,
            "report",
            "--since",
            "150d",
            "--until",
            "2027-01-31T00:00:00Z",
            "--format",
            "json",
        ).out
    )
    assert figures["totals"]["emails"] > 0
    # the demo's CSMs had calls and booked some: counted by channel and role, booked apart
    calls = figures["touches"]["by_channel_role"]["call"]["success"]
    assert calls["done"] > 0 and calls["planned"] > 0
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for chart in ("weekly", "heatmap", "rules"):
        start = dom.index(f'id="{chart}"')
        assert "<svg" in dom[start : start + 2000], chart
    # self-contained: nothing to fetch (XML namespace names are names, not requests)
    assert re.search(r'(src|href)=["\']https?://', dom) is None
    assert "<script" not in dom and "<link" not in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1100,1600", f"--screenshot={shot}", out.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 20_000  # a page with charts, not a blank one
    assert str(figures["totals"]["emails"]) in dom
    assert "Touches by channel and role" in dom
    assert "<h2>The outcome</h2>" in dom and "Distinct content delivered" in dom
    week = figures["partial_week"]  # 150 days: 21 weeks and a partial one of 3 days
    assert week is not None and f"Week {week['week']} is partial" in dom
