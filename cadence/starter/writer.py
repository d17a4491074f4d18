"""`cadence init`: a folder that works as it is: `cadence.yaml`, `rules/`, `templates/`, `samples/`.

Why the files come from the installed package (importlib.resources) and not from the
repository: `cadence init` must work after a plain `pip install`, where the repository's
top-level `rules/` and `templates/` exist only as `cadence.starter.rules` and
`cadence.starter.templates`.

Why it refuses to overwrite: a person who runs `cadence init` in a folder where they already
edited rules or templates would lose that work; `overwrite=True` (`--force`) says they mean it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.resources.abc import Traversable
from pathlib import Path

from cadence.shipped import shipped
from cadence.starter.samples import FILES as SAMPLE_FILES
from cadence.starter.samples import sample_records, write_samples

RULES_PACKAGE = "cadence.starter.rules"
TEMPLATES_PACKAGE = "cadence.starter.templates"

CONFIG = """\
# cadence configuration, written by `cadence init`. Every key, with its default, is documented
# in config.example.yaml. Relative paths are relative to this file's folder.
database_url: sqlite:///cadence.db
rules_dir: rules
templates_dir: templates
default_timezone: UTC

sender:
  email: success@vendor.test
  name: Vendor
  reply_to: null
senders: {}                 # per role, e.g. {sales: {email: sales@vendor.test, name: Vendor Sales}}

transport:
  kind: file                # file | console | smtp | sendgrid
  file:
    dir: outbox             # one .eml file per email sent

unsubscribe:
  base_url: "http://localhost:8787"
  secret_env: CADENCE_UNSUBSCRIBE_SECRET

http:
  listen: "127.0.0.1:8787"

daemon:
  tick: 30s
  claim_batch: 500
  lease: 5m
"""


class StarterExists(FileExistsError):
    """`cadence init` would overwrite files; names every one of them."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        listed = "\n".join(f"  {p}" for p in paths)
        super().__init__(
            f"{len(paths)} file(s) already exist and would be overwritten "
            f"(use --force to overwrite them):\n{listed}"
        )


def next_monday(t: datetime) -> datetime:
    """The first Monday 00:00 UTC at or after `t`: the base the samples are written around."""
    if t.tzinfo is None:
        raise ValueError("expected an aware datetime")
    t = t.astimezone(UTC)
    midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight == t and t.weekday() == 0:
        return t
    return midnight + timedelta(days=7 - t.weekday())


def _resources(package: str, suffix: str) -> list[Traversable]:
    root = shipped(package)
    return sorted(
        (f for f in root.iterdir() if f.is_file() and f.name.endswith(suffix)),
        key=lambda f: f.name,
    )


def planned_files(target: Path) -> dict[Path, Traversable | str | None]:
    """Every file `write_starter` writes, with where its content comes from (None: samples)."""
    files: dict[Path, Traversable | str | None] = {target / "cadence.yaml": CONFIG}
    for suffix in (".yaml", ".json"):  # the rules, and the schema their modeline names
        for rule in _resources(RULES_PACKAGE, suffix):
            files[target / "rules" / rule.name] = rule
    for template in _resources(TEMPLATES_PACKAGE, ".j2"):
        files[target / "templates" / template.name] = template
    for name in SAMPLE_FILES:
        files[target / "samples" / f"{name}.jsonl"] = None
    return files


def write_starter(target: Path, base: datetime, *, overwrite: bool = False) -> list[Path]:
    """Write the starter folder; samples are timed around `base` (a Monday 00:00 UTC).
    Raises `StarterExists` (writing nothing) if any file exists and `overwrite` is False."""
    target = Path(target)
    sample_records(base)  # fail on a bad base before anything is written
    files = planned_files(target)
    existing = [p for p in files if p.exists()]
    if existing and not overwrite:
        raise StarterExists(existing)
    written: list[Path] = []
    for path, source in files.items():
        if source is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, str):
            path.write_text(source, encoding="utf-8")
        else:
            path.write_bytes(source.read_bytes())
        written.append(path)
    written += write_samples(target / "samples", base)
    return written
