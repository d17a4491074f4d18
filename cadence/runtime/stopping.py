"""How `cadence run` learns it must stop (SIGTERM, SIGINT), and the deadline it stops by.

Why the signal handler does nothing: Python runs a handler in the main thread, between two
bytecodes of whatever that thread is doing at the time, and a handler that takes a lock the
interrupted code holds waits for itself for ever. The daemon's handler used to shut the
scheduler down. The main thread was the scheduler's loop (a BlockingScheduler), which hands a
job to its thread pool ten times a second (the look for receipts), and
`ThreadPoolExecutor.submit` holds the pool's lock and the module's global one while it does.
A SIGTERM then ran `shutdown`, which takes the pool's lock again: the main thread hung, and
the pass in flight hung with it on the global lock the next time it handed a chunk to its own
pool of senders ("stopping" logged, /healthz saying `scheduler: stalled`, the process up).

So the handler is a no-op whose only effect is the C side's: the signal's number is written to
a socket (`signal.set_wakeup_fd`). A thread of ours reads it and sets an ordinary Event, which
the main thread waits on; the main thread then stops the daemon in ordinary code.

Why a deadline: what the stop waits for (the pass in flight, the HTTP server, the interpreter
joining threads at exit) could still hang. The lease (`daemon.lease`) is how long an email
this daemon claimed stays its own; after it another daemon may take over. So the process never
outlives the lease after a signal: the same thread ends it then, with a message and
EXIT_FORCED. What was in flight stays `sending` and becomes `unconfirmed` when the lease runs
out: never sent twice, left for a provider event or a person.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

#: what `signal.signal` takes and returns
Handler = Callable[[int, FrameType | None], Any] | int | None

log = logging.getLogger("cadence.daemon")

#: the exit code of a daemon that did not stop by its deadline
EXIT_FORCED = 3
#: the signals that stop the daemon
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _noted(_signum: int, _frame: FrameType | None) -> None:
    """The handler: nothing. The wakeup socket has the signal (see the module's docstring)."""


class StopRequest:
    """SIGTERM/SIGINT turned into an Event (`requested`), and the deadline that follows one.

    `install` from the main thread (signals can be set nowhere else), before anything that
    should not be cut short by a signal (the migration); `restore` undoes it."""

    def __init__(self, deadline: float) -> None:
        #: seconds after the signal by which the process has ended
        self.deadline = deadline
        self.requested = threading.Event()
        self.signal: signal.Signals | None = None
        self.at: float | None = None  # time.monotonic() of the signal
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = -1
        self._previous: dict[int, Handler] = {}

    def install(self) -> None:
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, _noted)
        threading.Thread(target=self._watch, name="cadence-stop", daemon=True).start()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._writer.close()  # the watching thread sees the end of the stream and returns

    def remaining(self) -> float:
        """Seconds left before the deadline (the whole deadline before any signal)."""
        if self.at is None:
            return self.deadline
        return max(0.0, self.at + self.deadline - time.monotonic())

    def _watch(self) -> None:
        """Wait for a stop signal; then give the process until the deadline. Nothing calls
        the deadline off: a clean stop whose exit then hangs (the interpreter joins threads
        at exit) is cut short too."""
        while self.signal is None:
            select.select([self._reader], [], [])
            try:
                data = self._reader.recv(64)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:  # restored: the daemon has stopped
                return
            stops = [b for b in data if b in STOP_SIGNALS]
            if stops:
                self.at = time.monotonic()
                self.signal = signal.Signals(stops[0])
                self.requested.set()
        time.sleep(self.deadline)
        force_exit(f"not stopped within {self.deadline:g}s of {self.signal.name}")


def force_exit(why: str) -> None:
    """End the process now, after saying why. The message is written from a thread of its
    own and given a second: a logging handler blocked (stderr full) must not keep the
    process up."""
    message = (
        f"{why}: exiting anyway (code {EXIT_FORCED}); emails in flight stay `sending` and "
        "become `unconfirmed` when their lease runs out, never sent twice"
    )
    said = threading.Thread(target=log.error, args=(message,), daemon=True)
    said.start()
    said.join(1.0)
    with contextlib.suppress(Exception):
        for handler in logging.getLogger().handlers:
            handler.flush()
    os._exit(EXIT_FORCED)
