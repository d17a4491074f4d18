"""Run a command and say how long it took and its own peak memory, measured from a small
process: `python bench/launch.py REPORT COMMAND...` writes {"seconds", "peak_mb", "code"}
as JSON to the file REPORT and exits with the command's code.

Why a process of its own: Linux counts in a child's peak RSS (`ru_maxrss`) the memory of the
process it was forked from, up to its `exec`. Forked straight from the bench, which holds a
generated ledger's worth of memory, a child that never used 100 MB reported the bench's
200 MB. Forked from this launcher, the floor is the launcher's ~10 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class Measured:
    seconds: float  # from just before the start to the exit
    peak_mb: float  # the command's own peak RSS
    code: int  # its exit code


def measured(
    command: Sequence[str],
    *,
    report: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> Measured:
    """Run `command` through the launcher; its figures, read from `report`."""
    # run as a file, not `-m bench.launch`: it needs nothing but the standard library, and the
    # command's environment stays the caller's (PYTHONPATH included)
    subprocess.run(
        [sys.executable, __file__, str(report), *command],
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=stderr,
        check=False,
    )
    got = json.loads(report.read_text())
    return Measured(got["seconds"], got["peak_mb"], got["code"])


def main(argv: Sequence[str]) -> int:
    report, command = Path(argv[0]), list(argv[1:])
    started = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = code = os.waitstatus_to_exitcode(status)
    report.write_text(
        json.dumps({"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "code": code})
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
