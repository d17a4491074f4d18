"""Recovery without a person, with real processes: a daemon killed mid-send over a SendGrid
look-alike on loopback, the next daemon finishing the work, and the operator settling what
only the provider could know, through the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cadence.config import SendgridSettings
from cadence.ledger.ledger import Ledger
from cadence.ledger.tables import emails
from tests.e2e.test_daemon import Daemon, seed, until, write_setup
from tests.support.sendgrid_lookalike import SendgridLookalike

CUSTOMERS = 80


def _sending(url: str) -> int:
    store = Ledger(url)
    try:
        with store.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count()).select_from(emails).where(emails.c.status == "sending")
                )
                or 0
            )
    finally:
        store.close()


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cadence", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cadence.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_a_sigkill_mid_send_strands_at_most_the_requests_on_the_wire(
    url: str, tmp_path: Path
) -> None:
    with SendgridLookalike() as sg:
        sg.delay = 0.2  # a slow provider: requests are on the wire when the kill comes
        # what is unconfirmed here is what the kill stranded: the next daemon's requests are
        # given time enough that a busy machine cannot make them time out (a timeout leaves
        # an email unconfirmed too, rightly, but that is another test's case)
        env = write_setup(tmp_path, url, sg, timeout="60s")
        seed(url, CUSTOMERS, 1, distinct=True)
        daemon = Daemon(tmp_path, env)
        until(lambda: len(sg.received) >= 16)
        daemon.stop(signal.SIGKILL)
        on_the_wire = SendgridSettings().concurrency  # the setup leaves the default
        stranded = _sending(url)
        # only what was handed over is `sending`: at most one request per sending thread
        assert stranded <= on_the_wire, stranded

        restarted = Daemon(tmp_path, env)
        store = Ledger(url)
        try:
            unconfirmed: dict[str, str | None] = {}

            def all_accounted() -> bool:
                unconfirmed.clear()
                unconfirmed.update((e.id, why) for e, why in store.sending.unconfirmed_emails())
                return len(set(sg.email_ids()) | set(unconfirmed)) >= CUSTOMERS

            until(all_accounted, timeout=90)
            ids = sg.email_ids()
            assert len(ids) == len(set(ids))  # never twice
            # the stranded ones, and only those, wait for their fate to be settled
            assert len(unconfirmed) == stranded and len(unconfirmed) <= on_the_wire, (
                stranded,
                sorted(unconfirmed.items()),
                restarted.text()[-3000:],
            )
            took = [i for i in unconfirmed if i in set(ids)]  # SendGrid had these
            lost = sorted(set(unconfirmed) - set(took))  # killed before they left
            # the operator settles them in two calls, and is told what changed
            if took:
                said = _cli(env, tmp_path, "emails", "settle", *took, "--sent")
                assert said.returncode == 0, said.stderr
                assert f"settled {len(took)} email" in said.stdout
            if lost:
                said = _cli(env, tmp_path, "emails", "settle", "--all", "--not-sent")
                assert said.returncode == 0, said.stderr
                assert all(f"{i} settled as not sent" in said.stdout for i in lost)
            assert store.sending.unconfirmed_emails() == []

            def sent_messages() -> Counter[str]:
                return Counter(
                    m for e in sg.emails() for m in e["custom_args"]["cadence_messages"].split(",")
                )

            # what had not left is sent by the next pass: every message exactly once
            until(lambda: len(sent_messages()) == CUSTOMERS, timeout=60)
            time.sleep(1.5)  # anything more would be a second send
            assert set(sent_messages().values()) == {1}
        finally:
            store.close()
            assert restarted.stop() == 0, restarted.text()[-3000:]


def test_settle_names_what_it_refuses_and_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cadence.db'}"
    with SendgridLookalike() as sg:
        env = write_setup(tmp_path, url, sg)
        seed(url, 2, 1, distinct=True)
        said = _cli(env, tmp_path, "emails", "settle", "e-nope", "--sent")
        assert said.returncode == 1
        assert "not unconfirmed, so nothing was settled: e-nope" in said.stderr
        said = _cli(env, tmp_path, "emails", "settle", "--sent")
        assert said.returncode == 2 and "--all" in said.stderr
        said = _cli(env, tmp_path, "emails", "settle", "--all", "--not-sent")
        assert said.returncode == 0 and "settled 0 emails" in said.stdout
