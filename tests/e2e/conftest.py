"""Running `cadence` as a user does: a subprocess, in a folder of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    cwd: Path
    env: dict[str, str]

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "cadence", *args],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"cadence {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return result


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")}
    env["COLUMNS"] = "200"
    return Cli(tmp_path, env)


@pytest.fixture
def setup(cli: Cli) -> Cli:
    """`cadence init` plus the samples imported: a working folder."""
    cli("init", ".")
    cli("customers", "import", "samples/customers.jsonl")
    cli("messages", "record", "samples/recorded.jsonl")
    cli("messages", "submit", "samples/messages.jsonl")
    cli("events", "ingest", "samples/events.jsonl")
    return cli
