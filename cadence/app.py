"""What every command and the daemon start from: settings, the store, the rules, templates.

Built lazily, so a command pays only for what it uses (`preview` should not import the
transports, `rules check` should not open the database).
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cadence import collector

if TYPE_CHECKING:
    from cadence.config import Settings
    from cadence.delivery.render import Renderer
    from cadence.ledger.ledger import Ledger
    from cadence.rules.model import Rules


#: where a setup with no secret of its own keeps the one generated for it (`meta`)
UNSUBSCRIBE_SECRET = "unsubscribe_secret"


class NotReady(Exception):
    """The setup cannot serve the command yet; the message says what to run."""


@dataclass
class App:
    settings: Settings
    _store: Ledger | None = field(default=None, repr=False)
    _rules: Rules | None = field(default=None, repr=False)
    _renderer: Renderer | None = field(default=None, repr=False)
    _secret: bytes | None = field(default=None, repr=False)
    _opening: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def store(self) -> Ledger:
        """The store, opened once: threads asking together (the daemon's jobs, the HTTP
        side) wait for the first to open it, and migrate it, instead of each doing so."""
        if self._store is None:
            with self._opening:
                if self._store is None:
                    self._store = open_store(self.settings.database_url)
                    # what is loaded by now lives as long as the process (`collector`)
                    collector.settle()
        return self._store

    def rules(self, directory: Path | None = None) -> Rules:
        """The live rules, or those in `directory` (preview/simulate of rules not yet live).
        Raises `RuleErrors` with every problem found."""
        from cadence.rules import load_rules

        if directory is not None:
            return load_rules(directory)
        if self._rules is None:
            folder = Path(self.settings.rules_dir)
            unset = self.settings.source is None and "CADENCE_RULES_DIR" not in os.environ
            if not folder.exists() and unset:
                # no configuration at all: the defaults serve (priorities, max_delay), as the
                # contract promises; a rules_dir someone set and got wrong is still an error
                from cadence.rules.model import EMPTY_RULES

                self._rules = EMPTY_RULES
            else:
                self._rules = load_rules(folder)
        return self._rules

    def renderer(self) -> Renderer:
        """The templates, compiled once and kept: Jinja2 looks at each file's time when it
        is used and compiles it again if it changed."""
        if self._renderer is None:
            from cadence.delivery.render import Renderer

            self._renderer = Renderer(Path(self.settings.templates_dir))
        return self._renderer

    def unsubscribe_secret(self) -> bytes:
        """From the environment variable the config names; else one generated once and kept
        in the database, so links keep working across restarts of a setup with no secret."""
        if self._secret is None:
            name = self.settings.unsubscribe.secret_env
            value = os.environ.get(name) if name else None
            if value:
                self._secret = value.encode()
            else:
                # the first to store one wins: two daemons starting together sign alike
                stored = self.store.reads.meta_once(UNSUBSCRIBE_SECRET, secrets.token_urlsafe(32))
                self._secret = stored.encode()
        return self._secret

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def open_store(url: str, *, memo: bool | None = None) -> Ledger:
    """The store at `url`. A new embedded SQLite database, or one a first migration left half
    made, is migrated here (the default setup should just work), under `migrate`'s lock; any
    other database must be upgraded on purpose with `cadence db upgrade`. `memo`: see
    `Ledger`."""
    from cadence.ledger.db import migrate, safe_url, schema_state
    from cadence.ledger.ledger import Ledger

    state = migrate(url, ("empty", "partial")) if url.startswith("sqlite") else schema_state(url)
    if state != "current":
        what = {
            "empty": "empty",
            "outdated": "at an older schema",
            "partial": "half made by a first migration that did not finish",
        }[state]
        raise NotReady(f"the database at {safe_url(url)} is {what}: run `cadence db upgrade` first")
    return Ledger(url, memo=memo)


def open_app(config: Path | None = None) -> App:
    from cadence.config import load_settings

    return App(load_settings(config))
