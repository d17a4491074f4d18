"""docs/architecture.md stays true to the code: its map names every module of `cadence/`, and
every module it names exists. A module added without a line there, or one renamed or removed
with its line left behind, fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cadence"
DOC = ROOT / "docs" / "architecture.md"

#: `engine/planner.py`, and `delivery/transports/{file,smtp}.py` for several in one folder
_NAMED = re.compile(r"`((?:[\w]+/)*)(?:\{([\w,]+)\}|(\w+))\.py`")
#: a whole folder the map describes in one row (`starter/`)
_FOLDER = re.compile(r"^\| `(\w+)/` \|", re.MULTILINE)


def _named(doc: str) -> set[str]:
    out: set[str] = set()
    for folder, group, single in _NAMED.findall(doc):
        for name in group.split(",") if group else [single]:
            out.add(f"{folder}{name}.py")
    return out


def _modules() -> set[str]:
    return {
        p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"
    }


def test_every_module_is_on_the_map() -> None:
    doc = DOC.read_text()
    folders = set(_FOLDER.findall(doc))
    named = _named(doc)
    missing = sorted(m for m in _modules() if m not in named and m.split("/", 1)[0] not in folders)
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"


def test_every_module_the_map_names_exists() -> None:
    # a path is the package's (`engine/planner.py`) or the repository's (`bench/generate.py`);
    # a bare file name in the prose (`convert.py`) is short for a module of that name
    stale = sorted(
        n
        for n in _named(DOC.read_text())
        if not (PACKAGE / n).is_file()
        and not (ROOT / n).is_file()
        and not ("/" not in n and any(PACKAGE.rglob(n)))
    )
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"


def test_the_map_reader_sees_groups_and_folders() -> None:
    """The reader itself: a brace group is several modules, a folder row covers its folder."""
    doc = "| `a/{b,c}.py` | x |\n| `d.py` | y |\n| `e/` | z |\n"
    assert _named(doc) == {"a/b.py", "a/c.py", "d.py"}
    assert _FOLDER.findall(doc) == ["e"]
