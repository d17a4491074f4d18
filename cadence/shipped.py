"""The folders the repository keeps at its top, where people look for them (`rules/`,
`templates/`, `migrations/`), which a plain install ships inside the package
(`cadence.starter.rules`, `cadence.starter.templates`, `cadence.migrations`: see
`pyproject.toml`). Either way, one answer: the installed package's copy where there is one,
else the repository's folder (code imported from a source tree that was installed some other
way, as the tests do beside a non-editable install)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

#: the repository's folder for each shipped package
FOLDERS = {
    "cadence.starter.rules": "rules",
    "cadence.starter.templates": "templates",
    "cadence.migrations": "migrations",
}


def shipped(package: str) -> Traversable:
    """The files of a shipped package (see the module's docs)."""
    try:
        return resources.files(package)
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parents[1] / FOLDERS[package]
        if not folder.is_dir():
            raise
        return folder
