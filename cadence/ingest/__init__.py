"""Reading customers, messages and events into the ledger, checked at the door.

`service` holds the use cases (all or nothing per file, repeats are no-ops, conflicts named),
`readers` turns files into raw records with their line numbers, `records` validates them and
turns them into `cadence.model` values.
"""

from cadence.ingest.readers import STDIN, SourceError
from cadence.ingest.records import CustomerIn, EventIn, MessageIn, RecordedIn
from cadence.ingest.service import (
    IngestReport,
    InputError,
    import_customers,
    ingest_events,
    record_messages,
    submit_messages,
)

__all__ = [
    "STDIN",
    "CustomerIn",
    "EventIn",
    "IngestReport",
    "InputError",
    "MessageIn",
    "RecordedIn",
    "SourceError",
    "import_customers",
    "ingest_events",
    "record_messages",
    "submit_messages",
]
