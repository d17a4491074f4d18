"""`cadence run`: APScheduler paces this replica's loop; the database coordinates replicas.

Jobs: a tick (events, re-planning, sending what is due), the playbook sweep, and a watch that
reloads rules and templates when their files change (a reload that fails keeps the last good
rules and logs every error with file and line). SIGTERM/SIGINT finish the email in flight,
release the rest of the batch and stop, within the lease at the latest (`stopping`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cadence.clock import utcnow
from cadence.runtime.stopping import StopRequest, force_exit

if TYPE_CHECKING:
    from cadence.app import App
    from cadence.ledger.planning import UrgentProbe

log = logging.getLogger("cadence.daemon")

#: seconds a pass plans (a batch of PLAN_BATCH customers at a time) before it sends what is
#: due, and keeps claiming before it ends and plans again (see tick)
PASS_PLANNING = 0.05
PASS_SENDING = 0.25
PLAN_BATCH = 50
#: emails a pass claims at a time (at most `daemon.claim_batch`), looking at its clock between
#: claims: a claim is sent whole before the pass looks again, so a receipt submitted meanwhile
#: waits for at most one claim (figures: docs/performance.md)
PASS_CLAIM = 128
#: how often the daemon asks whether transactional mail waits for its first plan: a receipt
#: starts a pass at once instead of waiting for the next tick (on SQLite a look is a stat of
#: the database's files while nothing was written, else a partial index answers). Five
#: times a second keeps a receipt well within its second and an idle daemon under half a
#: percent of a core (figures: docs/performance.md)
URGENT_POLL = timedelta(milliseconds=200)


class AlreadyRunning(Exception):
    pass


def folder_digest(*folders: Path) -> str:
    """What the watch compares: names, sizes and modification times of the rule/template
    files (cheap to read every few seconds)."""
    h = hashlib.sha256()
    for folder in folders:
        if not folder.exists():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                st = path.stat()
                h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


@contextmanager
def single_sqlite_daemon(url: str) -> Iterator[None]:
    """SQLite has one writer: a second daemon on the same file is refused, clearly."""
    if not url.startswith("sqlite"):
        yield
        return
    import fcntl

    path = url.split("///", 1)[-1] or "cadence.db"
    lock_path = f"{path}.daemon.lock"
    handle = open(lock_path, "w")  # noqa: SIM115 - held for the daemon's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(
            f"another `cadence run` already uses {path} (lock {lock_path}); SQLite allows one "
            "daemon. Stop it, or move to PostgreSQL to run several."
        ) from None
    try:
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class Daemon:
    def __init__(self, app: App) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.app = app
        self.stopping = threading.Event()
        # the scheduler's loop has a thread of its own: the main thread only waits for a stop
        # and carries it out (see `stopping` for why it must not be the scheduler's loop)
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.folders = (Path(app.settings.rules_dir), Path(app.settings.templates_dir))
        self.digest = folder_digest(*self.folders)
        self.last_tick: datetime | None = None
        self._busy = threading.Lock()

    def tick(self) -> None:
        from cadence.flows.passes import run_pass

        if self.stopping.is_set() or not self._busy.acquire(blocking=False):
            return
        try:
            from cadence import metrics

            while True:
                # a pass plans for a while, sends for a while, then ends with customers left
                # to plan or emails still due, and the next pass starts with what arrived
                # meanwhile: a receipt submitted during a burst goes out in a pass or two,
                # not after the burst, and a burst does not wait for everyone to be planned
                now = utcnow()
                started = time.monotonic()

                def within(seconds: float, since: float = started) -> Callable[[], bool]:
                    return lambda: time.monotonic() - since < seconds

                report = run_pass(
                    self.app,
                    now,
                    sweep=False,
                    should_stop=self.stopping.is_set,
                    keep_planning=within(PASS_PLANNING),
                    keep_claiming=within(PASS_SENDING),
                    plan_batch=PLAN_BATCH,
                    claim_batch=min(PASS_CLAIM, self.app.settings.daemon.claim_batch),
                )
                metrics.observe_tick(time.monotonic() - started)
                self.last_tick = now
                if report.dispatch.sent or report.dispatch.failed or report.planned:
                    log.info(report.summary())
                more = report.dispatch.more_due or report.more_to_plan
                if not more or self.stopping.is_set():
                    break
            metrics.set_queue_depth(self.app.store.planning.due_count(utcnow()))
            metrics.set_unconfirmed(len(self.app.store.sending.unconfirmed_emails()))
            self._wake_for_next()
        except Exception:
            log.exception("tick failed; the next tick tries again")
        finally:
            self._busy.release()

    def _wake_for_next(self) -> None:
        """The next tick comes when the next email is due (or a customer's next moment, an
        event's, a sweep period's start: the moments `simulate` steps through), if that is
        sooner than the interval: the daemon does not poll for it."""
        from cadence.flows.timeline import next_moment

        wake = next_moment(self.app.store, self.app.rules(), utcnow())
        if wake is None or self.stopping.is_set():
            return
        job = self.scheduler.get_job("tick")
        if job is not None and job.next_run_time is not None and wake < job.next_run_time:
            # never sooner than a moment from now: something due that a tick cannot settle
            # (another daemon holds it) must not turn the loop into a spin
            soonest = utcnow() + timedelta(milliseconds=200)
            with _unless_shut_down():
                self.scheduler.modify_job("tick", next_run_time=max(wake, soonest))

    def _look_for_urgent(self) -> None:
        probe = None
        try:
            while not self.stopping.wait(URGENT_POLL.total_seconds()):
                if probe is None:
                    probe = self._open_probe()
                if probe is not None and not self.urgent(probe):
                    probe.close()  # a connection that failed is not used again
                    probe = None
        finally:
            if probe is not None:
                probe.close()

    def _open_probe(self) -> UrgentProbe | None:
        try:
            return self.app.store.planning.unplanned_transactional_probe()
        except Exception:
            log.exception("looking for transactional mail failed; the next look tries again")
            return None

    def urgent(self, probe: UrgentProbe) -> bool:
        """Start a pass now if transactional mail waits for its first plan (a pass in
        progress plans it first anyway). False if the look failed."""
        if self.stopping.is_set() or self._busy.locked():
            return True
        try:
            if probe():
                with _unless_shut_down():
                    self.scheduler.modify_job("tick", next_run_time=utcnow())
        except Exception:
            log.exception("looking for transactional mail failed; the next look tries again")
            return False
        return True

    def sweep(self) -> None:
        from cadence.flows.lifecycle import sweep_all

        try:
            created = sweep_all(self.app.store, self.app.rules(), utcnow())
            if created:
                log.info("sweep created %d check-ins", created)
        except Exception:
            log.exception("sweep failed; the next sweep tries again")

    def watch(self) -> None:
        from cadence.rules import RuleErrors, load_rules

        digest = folder_digest(*self.folders)
        if digest == self.digest:
            return
        self.digest = digest
        try:
            rules = load_rules(self.folders[0])
        except RuleErrors as exc:
            for error in exc.errors:
                log.error("rules reload failed, keeping the last good rules: %s", error)
            return
        from cadence.flows.checks import check_rules

        problems, _ = check_rules(*self.folders)
        if problems:
            for problem in problems:
                log.error("rules reload failed, keeping the last good rules: %s", problem)
            return
        from cadence.flows.passes import adopt_rules, live_version

        self.app._rules = rules
        adopt_rules(self.app.store, live_version(rules, self.app.renderer()))
        log.info("rules reloaded: version %s", rules.version)

    def run(self, stop: StopRequest) -> None:
        """Serve until a stop is requested, then stop by its deadline."""
        from apscheduler.triggers.interval import IntervalTrigger

        settings = self.app.settings
        tick: timedelta = settings.daemon.tick
        # the store is opened (a new SQLite file migrated) and the rules loaded before any job
        # runs: the first jobs start together and each would ask for them first
        self.app.store  # noqa: B018 - opened for its effect
        rules = self.app.rules()
        now = utcnow()
        for job, every_, first in (
            (self.tick, tick, now),
            # a sweep runs once a period, as of its start (`lifecycle.sweep_all`): asked as
            # often as the tick, it does its work within a tick of each period's start, and
            # otherwise only reads when the last period swept began
            (self.sweep, tick, now),
            (self.watch, timedelta(seconds=2), None),
        ):
            # next_run_time=None would add the job paused: leave it out to follow the trigger
            start = {"next_run_time": first} if first is not None else {}
            self.scheduler.add_job(
                job,
                IntervalTrigger(seconds=every_.total_seconds()),
                id=job.__name__,
                max_instances=1,
                coalesce=True,
                # late is better than never: the first tick is due before the HTTP side and
                # the control socket have started, and on a busy machine that takes over
                # APScheduler's default grace of a second; the tick would be skipped for a
                # whole interval
                misfire_grace_time=None,
                **start,
            )
        from cadence.feedback.server import start_http
        from cadence.runtime.control_server import start_control

        http = settings.http
        server = start_http(self.app, http.host, http.port, scheduler_alive=self.alive)
        control = None
        try:
            control = start_control(self.app)
            log.info("cadence daemon started: tick %s, rules version %s", tick, rules.version)
            self.scheduler.start()
            # the look for receipts, five times a second, on a thread of its own: as a
            # scheduler job each look cost five times the query it runs (most of an idle
            # daemon's CPU), and it needs no more than a wait between looks
            looking = threading.Thread(target=self._look_for_urgent, name="urgent", daemon=True)
            looking.start()
            stop.requested.wait()
            self._stop(stop)
        finally:
            if control is not None:
                control.stop()
            server.stop(timeout=max(0.5, stop.remaining()))
        log.info("cadence daemon stopped")

    def _stop(self, stop: StopRequest) -> None:
        """No job starts any more; the pass in flight sees `stopping` between emails, sends
        the chunk on the wire and releases the rest of its claim."""
        name = stop.signal.name if stop.signal else "request"
        log.info(
            "stopping on %s: finishing the email in flight (within the lease, %gs)",
            name,
            stop.deadline,
        )
        self.stopping.set()
        self.scheduler.shutdown(wait=False)
        if not self._busy.acquire(timeout=stop.remaining()):
            force_exit("the pass in flight did not end within the lease")

    def alive(self) -> bool:
        """For /healthz: the scheduler ticked recently (three ticks' worth of slack)."""
        if self.last_tick is None:
            return not self.stopping.is_set()
        slack: timedelta = max(self.app.settings.daemon.tick * 3, timedelta(seconds=10))
        return bool(utcnow() - self.last_tick < slack)


def run_daemon(app: App, log_format: str | None = None) -> None:
    """`log_format`: `text` or `json`; None: what `daemon.log_format` says."""
    from cadence.runtime import logs

    logs.configure(log_format or app.settings.daemon.log_format)
    # APScheduler says so at INFO each time a job runs: every 2 s for the rules watch, and
    # each tick and sweep. Its warnings (a job missed, a job still running) still show.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    # and "Adding job tentatively" for each job added before it starts, which reads like a
    # problem and is none; "Added job" and "Scheduler started" follow and stay
    logging.getLogger("apscheduler.scheduler").addFilter(
        lambda record: "tentatively" not in record.getMessage()
    )
    # Alembic lists its plugins at INFO before a first migration; the migrations themselves
    # ("Running upgrade") still show
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # from the start: a signal during start-up (the migration) is kept for when the daemon
    # can stop, and the deadline counts from it
    stop = StopRequest(app.settings.daemon.lease.total_seconds())
    stop.install()
    try:
        # the store first: a database that cannot be used (a SQLite folder that does not
        # exist) is said as such, before the lock file beside it is tried
        app.store  # noqa: B018 - opened for its effect
        with single_sqlite_daemon(app.settings.database_url):
            Daemon(app).run(stop)
    finally:
        stop.restore()


@contextlib.contextmanager
def _unless_shut_down() -> Iterator[None]:
    """A job moving the tick while the daemon stops: the scheduler, shut down, has no jobs."""
    from apscheduler.jobstores.base import JobLookupError

    with contextlib.suppress(JobLookupError):
        yield
