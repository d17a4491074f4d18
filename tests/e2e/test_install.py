"""A plain install, not an editable one: the wheel carries the migrations, the starter rules
and templates, and `cadence` run from it sets up, migrates and runs a folder of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_a_wheel_installs_what_cadence_needs_and_runs(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "wheel"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("cadence-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "cadence/migrations/env.py",
        "cadence/migrations/script.py.mako",
        "cadence/migrations/versions/0001_ledger.py",
        "cadence/starter/rules/fatigue.yaml",
        "cadence/starter/rules/rule-file.schema.json",
        "cadence/starter/templates/digest.text.j2",
    ):
        assert shipped in names, shipped
    target = tmp_path / "installed"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    # the installed copy first: the repository is nowhere on the path
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")}
    env["PYTHONPATH"] = str(target)
    work = tmp_path / "setup"
    work.mkdir()

    def cadence(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cadence", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"cadence {' '.join(args)}: {done.stderr}"
        return done.stdout

    where = subprocess.run(
        [sys.executable, "-c", "import cadence; print(cadence.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(target)), where
    cadence("init", ".")
    cadence("db", "upgrade")
    cadence("customers", "import", "samples/customers.jsonl")
    cadence("messages", "submit", "samples/messages.jsonl")
    out = json.loads(cadence("preview", "c-17", "--format", "json"))
    assert out["customer"] == "c-17" and out["decisions"]
