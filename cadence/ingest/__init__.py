"""Reading customers, messages and events into the ledger, checked at the door."""

from cadence.ingest.service import (
    IngestReport,
    InputError,
    SourceError,
    import_customers,
    ingest_events,
    record_messages,
    submit_messages,
)

__all__ = [
    "IngestReport",
    "InputError",
    "SourceError",
    "import_customers",
    "ingest_events",
    "record_messages",
    "submit_messages",
]
