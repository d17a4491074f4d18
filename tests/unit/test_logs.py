"""The daemon's JSON log lines: one object a line, with time, level, logger, message, the
fields a call passed in `extra=`, and the traceback of an exception."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cadence.runtime.logs import JsonFormatter


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("cadence.test-logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_object_a_line_with_the_four_fields(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.warning("sent %d emails", 3)
    logger.warning("and a second line")
    first, second = _lines(stream)
    assert set(first) == {"time", "level", "logger", "message"}
    assert (first["level"], first["logger"], first["message"]) == (
        "WARNING",
        "cadence.test-logs",
        "sent 3 emails",
    )
    assert first["time"].endswith("Z") and datetime.fromisoformat(first["time"])
    assert second["message"] == "and a second line"


def test_extra_fields_are_kept_and_any_value_is_written(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.warning("claimed", extra={"email": "e-1", "batch": 50, "folder": Path("/srv")})
    (out,) = _lines(stream)
    assert (out["email"], out["batch"], out["folder"]) == ("e-1", 50, "/srv")


def test_an_exception_comes_with_its_traceback(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    try:
        raise ValueError("the transport said no")
    except ValueError:
        logger.exception("failed")
    (out,) = _lines(stream)
    assert out["message"] == "failed" and out["level"] == "ERROR"
    assert "Traceback" in out["exception"]
    assert "ValueError: the transport said no" in out["exception"]
