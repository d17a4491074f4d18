"""`cadence run` as a long-running process: sending, stopping, reloading, crashing, scaling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cadence.flows.sending import MAX_CHUNK
from cadence.ledger.db import upgrade
from cadence.ledger.ledger import Ledger
from cadence.model import Customer, Message
from tests.support.sendgrid_lookalike import SendgridLookalike

REPO = Path(__file__).resolve().parents[2]
RULES = """\
limits:
  - name: one-a-week
    max: 1
    per: 7d
"""


def write_setup(
    folder: Path, url: str, sg: SendgridLookalike, rules: str = RULES, timeout: str = "5s"
) -> dict[str, str]:
    (folder / "rules").mkdir(parents=True, exist_ok=True)
    (folder / "rules" / "limits.yaml").write_text(rules)
    (folder / "cadence.yaml").write_text(
        f"database_url: {url}\n"
        f"templates_dir: {REPO / 'templates'}\n"
        "transport:\n  kind: sendgrid\n"
        f"  sendgrid: {{api_host: '{sg.url}', api_key_env: SG_KEY, timeout: {timeout}}}\n"
        "http: {listen: '127.0.0.1:0'}\n"
        "daemon: {tick: 1s, lease: 3s, claim_batch: 50}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")}
    env.update(SG_KEY=sg.api_key, CADENCE_CONFIG=str(folder / "cadence.yaml"))
    return env


def seed(url: str, customers: int, per_customer: int, *, distinct: bool = False) -> None:
    """`per_customer` offers due for each customer; `distinct`: each with a body of its own,
    so SendGrid takes one email per request (identical ones share a request) and sending
    goes at the provider's pace."""
    upgrade(url)
    store = Ledger(url)
    now = datetime.now(UTC) - timedelta(minutes=1)
    store.ingest.upsert_customers(
        [
            (Customer(f"c-{i:04}", f"c{i}@acme.test", "C", "UTC", None, {}), "d")
            for i in range(customers)
        ],
        now=datetime.now(UTC),
    )
    store.ingest.add_messages(
        [
            (
                Message(
                    f"m-{i:04}-{k}",
                    f"c-{i:04}",
                    "sales",
                    category="offer",
                    subject="Hello",
                    body_text=f"An offer for customer {i}" if distinct else "An offer",
                    send_after=now,
                ),
                "x",
            )
            for i in range(customers)
            for k in range(per_customer)
        ],
        now=datetime.now(UTC),
    )
    store.close()


class Daemon:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.log = cwd / f"daemon-{time.monotonic_ns()}.log"
        self.handle = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cadence", "run"],
            cwd=cwd,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.text()}")
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not seen in time:\n{self.text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.handle.close()
        return code


def until(check, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_sends_stops_cleanly_and_refuses_a_second_sqlite_daemon(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cadence.db'}"
    with SendgridLookalike() as sg:
        env = write_setup(tmp_path, url, sg)
        seed(url, 20, 2)
        daemon = Daemon(tmp_path, env)
        try:
            daemon.wait_for("cadence daemon started")
            until(lambda: len(sg.emails()) >= 20)
            second = subprocess.run(
                [sys.executable, "-m", "cadence", "run"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 1 and "SQLite allows one daemon" in second.stderr
        finally:
            code = daemon.stop()
        assert code == 0 and "cadence daemon stopped" in daemon.text()
        ids = sg.email_ids()
        assert len(ids) == len(set(ids)) == 20  # one a week each: 20 sent, 20 held back
        assert "sent email=" in daemon.text()


def test_a_bad_rule_edit_keeps_the_old_rules_and_says_where(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cadence.db'}"
    with SendgridLookalike() as sg:
        env = write_setup(tmp_path, url, sg)
        seed(url, 1, 0)
        daemon = Daemon(tmp_path, env)
        try:
            daemon.wait_for("cadence daemon started")
            (tmp_path / "rules" / "limits.yaml").write_text(RULES.replace("max: 1", "maxx: 1"))
            daemon.wait_for("rules reload failed")
            assert "limits.yaml:3:5: unknown key `maxx`" in daemon.text()
            assert daemon.proc.poll() is None
            seed_more = Ledger(url)
            seed_more.ingest.add_messages(
                [
                    (
                        Message(
                            "late",
                            "c-0000",
                            "sales",
                            subject="s",
                            body_text="b",
                            send_after=datetime.now(UTC),
                        ),
                        "y",
                    )
                ],
                now=datetime.now(UTC),
            )
            seed_more.close()
            until(lambda: len(sg.emails()) == 1)  # still sending, on the old rules
        finally:
            assert daemon.stop() == 0


def test_killed_mid_batch_and_restarted_sends_nothing_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cadence.db'}"
    with SendgridLookalike() as sg:
        sg.delay = 0.15
        env = write_setup(tmp_path, url, sg)
        seed(url, 30, 1)
        daemon = Daemon(tmp_path, env)
        until(lambda: len(sg.emails()) >= 5)
        daemon.stop(signal.SIGKILL)
        restarted = Daemon(tmp_path, env)
        store = Ledger(url)
        try:
            until(
                lambda: (
                    len(set(sg.email_ids()) | {e.id for e, _ in store.sending.unconfirmed_emails()})
                    >= 30
                ),
                timeout=90,
            )
            unconfirmed = {e.id for e, _ in store.sending.unconfirmed_emails()}
        finally:
            store.close()
            restarted.stop()
        ids = sg.email_ids()
        assert len(ids) == len(set(ids))  # never twice
        # at most the two chunks `sending` when the daemon died (on the wire, or their
        # outcome not yet recorded) are left for a person (or a provider event) to settle;
        # some of them may even have reached the provider: never re-sent
        assert len(unconfirmed - set(ids)) <= 2 * MAX_CHUNK
        assert len(set(ids) | unconfirmed) == 30


@pytest.mark.postgres
def test_three_daemons_on_postgresql_send_each_email_once_within_limits(
    pg_url: str, tmp_path: Path
) -> None:
    with SendgridLookalike() as sg:
        env = write_setup(tmp_path, pg_url, sg)
        seed(pg_url, 1000, 2)
        daemons = [Daemon(tmp_path, env) for _ in range(3)]
        try:
            until(lambda: len(sg.emails()) >= 1000, timeout=180)
            time.sleep(3)  # anything more would be a breach
        finally:
            codes = [d.stop() for d in daemons]
        assert codes == [0, 0, 0], "\n\n".join(d.text()[-3000:] for d in daemons)
        ids = sg.email_ids()
        assert len(ids) == len(set(ids)) == 1000
        per_customer = Counter(e["custom_args"]["cadence_customer"] for e in sg.emails())
        assert max(per_customer.values()) == 1  # one a week, however many daemons
        assert (
            all("sent email=" in d.text() for d in daemons)
            or sum("sent email=" in d.text() for d in daemons) >= 2
        )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unsubscribe_link_of_a_sent_eml_stops_the_next_marketing_email(tmp_path: Path) -> None:
    import email
    import email.policy
    import json

    import httpx

    port = free_port()
    url = f"sqlite:///{tmp_path / 'cadence.db'}"
    (tmp_path / "rules").mkdir()
    (tmp_path / "cadence.yaml").write_text(
        f"database_url: {url}\ntemplates_dir: {REPO / 'templates'}\n"
        "transport: {kind: file, file: {dir: outbox}}\n"
        f"http: {{listen: '127.0.0.1:{port}'}}\n"
        f"unsubscribe: {{base_url: 'http://127.0.0.1:{port}'}}\n"
        "daemon: {tick: 1s, lease: 3s}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")}
    env["CADENCE_CONFIG"] = str(tmp_path / "cadence.yaml")
    upgrade(url)
    store = Ledger(url)
    now = datetime.now(UTC)
    store.ingest.upsert_customers(
        [(Customer("c-17", "ana@acme.test", "Ana", "UTC", None, {}), "d")], now=datetime.now(UTC)
    )
    store.ingest.add_messages(
        [
            (
                Message(
                    f"mkt-{i}",
                    "c-17",
                    "marketing",
                    category="announcement",
                    subject=f"News {i}",
                    body_text="Read all about it",
                    send_after=now + timedelta(days=2 * i),
                ),
                f"x{i}",
            )
            for i in range(2)
        ],
        now=datetime.now(UTC),
    )
    store.close()
    daemon = Daemon(tmp_path, env)
    try:
        daemon.wait_for("cadence daemon started")
        until(lambda: list((tmp_path / "outbox").glob("*.eml")))
        (eml,) = (tmp_path / "outbox").glob("*.eml")
        msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        link = str(msg["List-Unsubscribe"]).strip("<>")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert link in msg.get_body(("plain",)).get_content()  # the text footer has it too
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert "cadence_emails_sent_total 1.0" in metrics
        assert httpx.post(link, content="List-Unsubscribe=One-Click").status_code == 200
        preview = subprocess.run(
            [sys.executable, "-m", "cadence", "preview", "c-17", "--days", "7", "--format", "json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        decision = {d["message"]: d for d in json.loads(preview.stdout)["decisions"]}["mkt-1"]
        assert decision["status"] == "suppressed" and decision["rule"] == "unsubscribed"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        assert daemon.stop() == 0


def _slow_ticking_setup(tmp_path: Path, sg: SendgridLookalike) -> tuple[str, dict[str, str]]:
    """One customer, no rules, and a tick of 60 s: whatever goes out sooner was not the tick."""
    url = f"sqlite:///{tmp_path / 'cadence.db'}"
    env = write_setup(tmp_path, url, sg, rules="")
    text = (tmp_path / "cadence.yaml").read_text().replace("tick: 1s", "tick: 60s")
    (tmp_path / "cadence.yaml").write_text(text)
    seed(url, 1, 0)
    return url, env


def test_the_daemon_wakes_for_the_next_due_email_not_the_tick(tmp_path: Path) -> None:
    with SendgridLookalike() as sg:
        url, env = _slow_ticking_setup(tmp_path, sg)
        due = datetime.now(UTC) + timedelta(seconds=4)
        store = Ledger(url)
        store.ingest.add_messages(
            [(Message("soon", "c-0000", "sales", subject="s", body_text="b", send_after=due), "z")],
            now=datetime.now(UTC),
        )
        store.close()
        daemon = Daemon(tmp_path, env)
        try:
            daemon.wait_for("cadence daemon started")
            until(lambda: len(sg.emails()) == 1, timeout=20)  # the tick is 60 s
            arrived = datetime.fromtimestamp(sg.emails()[0]["at"], UTC)
            assert timedelta(0) <= arrived - due < timedelta(seconds=2)
        finally:
            assert daemon.stop() == 0


def test_a_receipt_submitted_to_an_idle_daemon_goes_within_a_second(tmp_path: Path) -> None:
    """Transactional mail does not wait for the tick (60 s here): the daemon looks for
    receipts not yet planned several times a second and starts a pass for them."""
    with SendgridLookalike() as sg:
        _, env = _slow_ticking_setup(tmp_path, sg)
        daemon = Daemon(tmp_path, env)
        try:
            daemon.wait_for("cadence daemon started")
            time.sleep(2)  # its first pass is over: idle until the tick, a minute away
            (tmp_path / "receipt.jsonl").write_text(
                '{"id": "receipt-1", "customer": "c-0000", "role": "billing", '
                '"category": "receipt", "transactional": true, "subject": "Your receipt", '
                '"body_text": "Thanks for your payment."}\n'
            )
            subprocess.run(
                [sys.executable, "-m", "cadence", "messages", "submit", "receipt.jsonl"],
                cwd=tmp_path,
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            submitted = time.time()  # at the latest: the command has committed and exited
            until(lambda: len(sg.emails()) == 1, timeout=10)
            assert sg.emails()[0]["at"] - submitted < 1.0
            assert "Running job" not in daemon.text()  # the look is quiet in the log
        finally:
            assert daemon.stop() == 0
