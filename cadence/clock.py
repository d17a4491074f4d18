"""The one place that reads the wall clock. Everything else is handed a time."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
