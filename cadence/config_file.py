"""Which `cadence.yaml` the settings come from. Standard library only: the command line's
quick path (a preview a running daemon answers) finds the file before anything heavy loads,
and the settings themselves read the same answer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

CONFIG_ENV = "CADENCE_CONFIG"
#: what every environment variable that sets a key starts with (`CADENCE_TRANSPORT__KIND`)
ENV_PREFIX = "CADENCE_"
DEFAULT_FILE = "cadence.yaml"


class ConfigMissing(Exception):
    """A config file was named and does not exist; the message says which and by what."""


def config_file(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The file settings are read from: `path`, else `$CADENCE_CONFIG`, else `./cadence.yaml`
    if it exists, else none (defaults and environment only)."""
    if path is not None:
        if not Path(path).is_file():
            raise ConfigMissing(f"{path}: no such config file")
        return Path(path)
    named = environ.get(CONFIG_ENV)
    if named:
        if not Path(named).is_file():
            raise ConfigMissing(f"{named}: no such config file (named by {CONFIG_ENV})")
        return Path(named)
    default = Path(DEFAULT_FILE)
    return default if default.is_file() else None
