"""Stopping `cadence run` mid-pass: it always exits, within the lease, and nothing goes twice
(issue 20 (b)).

The daemon used to hang, one SIGTERM in a few, when the signal came while its main thread (the
scheduler's loop) was handing a job to its thread pool: the handler shut the pool down from
inside the pool's own lock (`cadence.runtime.stopping` has the whole story).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

from cadence.ledger.ledger import Ledger
from cadence.runtime.stopping import EXIT_FORCED
from tests.e2e.test_daemon import Daemon, seed, until, write_setup
from tests.support.sendgrid_lookalike import SendgridLookalike

#: the lease `write_setup` configures (daemon.lease), in seconds
LEASE = 3.0
#: what a process needs after its deadline to be gone (the interpreter's exit)
EXIT_SLACK = 1.0


def stopped_within(daemon: Daemon, limit: float) -> tuple[int, float]:
    """SIGTERM, then the exit code and how long the exit took (killed after `limit` + 10 s,
    so a hang fails the test instead of stalling it)."""
    signalled = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    try:
        code = daemon.proc.wait(timeout=limit + 10)
    except subprocess.TimeoutExpired:
        daemon.proc.kill()
        daemon.proc.wait()
        raise AssertionError(
            f"no exit within {limit + 10}s of SIGTERM:\n{daemon.text()[-4000:]}"
        ) from None
    finally:
        daemon.handle.close()
    return code, time.monotonic() - signalled


def test_sigterm_at_random_moments_of_a_pass_always_stops_within_the_lease(
    tmp_path: Path,
) -> None:
    rng = random.Random(20)
    url = f"sqlite:///{tmp_path / 'cadence.db'}"
    with SendgridLookalike() as sg:
        sg.delay = 0.2  # a provider a fifth of a second away: a pass takes seconds
        env = write_setup(tmp_path, url, sg)
        seed(url, 1000, 1, distinct=True)
        sent_per_try = []
        for attempt in range(8):
            before = len(sg.emails())
            daemon = Daemon(tmp_path, env)
            daemon.wait_for("cadence daemon started")
            time.sleep(rng.uniform(0.2, 2.2))  # the first pass starts as the daemon does
            code, took = stopped_within(daemon, LEASE)
            log = daemon.text()
            assert code == 0, f"attempt {attempt}: exit {code}\n{log[-4000:]}"
            assert took < LEASE + EXIT_SLACK, f"attempt {attempt}: {took:.1f}s\n{log[-4000:]}"
            assert "Traceback" not in log and "cadence daemon stopped" in log, log[-4000:]
            sent_per_try.append(len(sg.emails()) - before)
        ids = sg.email_ids()
        assert len(ids) == len(set(ids))  # never twice, across eight stops and starts
        # the signals came while the daemons were sending, not after the work ran out
        assert sum(1 for n in sent_per_try if n) >= 6, sent_per_try


def test_a_stop_that_cannot_finish_in_time_ends_at_the_lease_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    """A provider that holds every request 8 s (and a transport that waits 5 s): the chunk in
    flight cannot finish, so the process ends at the lease with a message and EXIT_FORCED;
    what it had in flight is never sent again by the daemon that follows."""
    url = f"sqlite:///{tmp_path / 'cadence.db'}"
    with SendgridLookalike() as sg:
        sg.delay = 8.0
        env = write_setup(tmp_path, url, sg)
        seed(url, 20, 1)
        daemon = Daemon(tmp_path, env)
        daemon.wait_for("cadence daemon started")
        time.sleep(1.5)  # the first pass has handed its first chunk over
        signalled = time.monotonic()
        code, took = stopped_within(daemon, LEASE)
        log = daemon.text()
        assert code == EXIT_FORCED, log[-4000:]
        assert LEASE - 0.5 < took < LEASE + EXIT_SLACK, took
        assert "exiting anyway" in log and "Traceback" not in log, log[-4000:]

        sg.delay = 0.0  # the requests already held still take their 8 s
        restarted = Daemon(tmp_path, env)
        store = Ledger(url)
        try:

            def accounted() -> set[str]:
                unconfirmed = {e.id for e, _ in store.sending.unconfirmed_emails()}
                return set(sg.email_ids()) | unconfirmed

            until(lambda: len(accounted()) == 20, timeout=60)
            time.sleep(max(0.0, signalled + 8.5 - time.monotonic()))  # the held ones landed
        finally:
            store.close()
            assert restarted.stop() == 0
        ids = sg.email_ids()
        assert len(ids) == len(set(ids))
