"""One dispatching daemon for `python -m bench`: `python -m bench.dispatch_worker CONFIG NOW NAME`.

Imports and connects first, prints `ready`, waits for a line on stdin, then sends everything
due at NOW through the configured transport as the daemon's dispatcher does (claim under a
lease, render, mark `sending`, hand over, record), and prints as JSON how many it sent and
when it started and finished (Unix seconds). Start-up is left out of the figure on purpose:
a daemon starts once and sends for months.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from cadence.app import App
from cadence.config import load_settings
from cadence.delivery.transports import make_transport
from cadence.flows.sending import Dispatcher


def main(config: str, now: str, name: str) -> None:
    app = App(load_settings(Path(config)))
    transport = make_transport(app.settings)
    dispatcher = Dispatcher(
        app.store, transport, app.renderer(), app.settings, b"bench-secret", name
    )
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()
    report = dispatcher.run(datetime.fromisoformat(now), batch=500)
    finished = time.time()
    transport.close()
    print(json.dumps({"sent": len(report.sent), "started": started, "finished": finished}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
