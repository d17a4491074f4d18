"""How the daemon's log lines look: text for a person at a terminal, or JSON for a log
pipeline (`cadence run --log-format json`, or `daemon.log_format: json` in cadence.yaml).

JSON is one object a line: `time` (UTC, ISO 8601 with milliseconds and a Z), `level`,
`logger`, `message` (the arguments already put in), every field a call passed in `extra=`,
and `exception` with the traceback when there is one. A value JSON cannot hold is written as
its `str()`, so a log call never fails over what it carries.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FORMATS = ("text", "json")

#: what every LogRecord has: anything else on a record came from `extra=`
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(fmt: str) -> None:
    """The root logger at INFO, writing to standard error in `fmt` (`text` or `json`). As
    `logging.basicConfig`, it leaves a logger that already has handlers as it is."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
