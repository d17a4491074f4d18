"""Run the SendGrid look-alike in its own process (benchmarks: it must not share our GIL).
Prints its URL on the first line, then serves until stdin closes; on exit prints, as JSON, the
cadence email id and arrival time (Unix seconds) of every request it accepted."""

from __future__ import annotations

import json
import sys
import time

from tests.support.sendgrid_lookalike import SendgridLookalike

if __name__ == "__main__":
    with SendgridLookalike() as sg:
        print(sg.url, flush=True)
        sys.stdin.read()
        time.sleep(0.1)
        arrivals = [[i, r.at] for i, r in zip(sg.email_ids(), sg.accepted, strict=True)]
        print(json.dumps(arrivals), flush=True)
