"""`bench.instructions` counts every process a command runs, the first one first, and more
instructions for more work: what its longest path and total are made of."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from bench.instructions import Counts, counted


def _needs_valgrind() -> None:
    """Skips on a laptop without valgrind; in CI (`CI` set) a missing valgrind fails."""
    if shutil.which("valgrind") is not None:
        return
    reason = "valgrind is not installed: apt-get install valgrind"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


#: a parent that forks one child doing `n` rounds of work, and waits for it
FORKING = """
import os, sys
n = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    sum(i * i for i in range(n))
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_each_process_is_counted_the_first_one_first(tmp_path: Path) -> None:
    _needs_valgrind()
    script = tmp_path / "forking.py"
    script.write_text(FORKING)
    small = counted([sys.executable, str(script), "1000"], tmp_path)
    large = counted([sys.executable, str(script), "500000"], tmp_path)
    assert len(small) == len(large) == 2  # the parent, then its child
    # the child's work grows with n; the parent's does not
    assert large[1] > small[1] + 20_000_000
    assert abs(large[0] - small[0]) < small[0] * 0.05


def test_the_longest_path_is_the_first_process_and_its_longest_part() -> None:
    counts = Counts("simulate", 1000, 14, first=5, parts=(20, 30))
    assert (counts.longest_path, counts.total) == (35, 55)
    alone = Counts("simulate", 100, 14, first=7, parts=())
    assert (alone.longest_path, alone.total) == (7, 7)
    assert alone.as_json()["longest_path"] == 7
