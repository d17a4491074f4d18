"""`cadence report --format html` on the demo's data, opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_demo_report_renders_with_its_charts(cli: Cli, tmp_path: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on this machine: apt-get install chromium")
    cli("demo", "demo", "--weeks", "1")
    config = str(cli.cwd / "demo" / "cadence.yaml")
    out = tmp_path / "report.html"
    cli(
        "-c",
        config,
        "report",
        "--since",
        "20w",
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
            "20w",
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
