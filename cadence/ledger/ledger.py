"""`Ledger`: every message of every role, past and planned, with its status and the reason for
it. The only code that speaks SQL, one concern an object: what comes in (`ingest`), planning
(`planning`), sending and what became of each email (`sending`), reading (`reads`), and
listing what matches a filter (`listing`)."""

from __future__ import annotations

from cadence.ledger.db import IN_MEMORY, make_engine
from cadence.ledger.ingest import Ingest
from cadence.ledger.listing import Listing
from cadence.ledger.planning import Planning
from cadence.ledger.reads import Reads
from cadence.ledger.sending import Sending


class Ledger:
    def __init__(self, url: str, *, memo: bool | None = None) -> None:
        """With `memo` (by default for a ledger in memory), what planning converts from a
        stored row is kept for the next read of that row: for a ledger that stays small (a
        scratch copy, the demo's), which the memo cannot outgrow by much."""
        self.url = url
        self.engine = make_engine(url)
        self.is_postgres = url.startswith("postgresql")
        self.ingest = Ingest(self.engine, self.is_postgres)
        self.planning = Planning(
            self.engine, self.is_postgres, memo=url == IN_MEMORY if memo is None else memo
        )
        self.sending = Sending(self.engine, self.is_postgres)
        self.reads = Reads(self.engine, self.is_postgres)
        self.listing = Listing(self.engine, self.is_postgres)

    def close(self) -> None:
        self.engine.dispose()
