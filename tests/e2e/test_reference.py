"""docs/reference.md stays true and complete (issue 24).

Its examples are marked by the fence's info string:
- ```sh: every line is a command, run through a shell in order, in one folder fresh from
  `cadence init`, with the installed `cadence` first on the PATH; it must exit 0, or N when its
  comment says `exit N`. ```sh no-run blocks (the daemon, the demo) are shown, not run.
- ```yaml rules: a rule file that passes `cadence rules check`.
- ```yaml config: a cadence.yaml that `load_settings` accepts.
- ```jsonl KIND and ```csv KIND (customers, submit, record, events): every record is read and
  validated as the import command of that kind does.
- ```json shape=NAME: an output object whose keys are the keys the command prints (at the top,
  and in the objects of its lists).
And every command, option, configuration key, rule key, expression name and HTTP endpoint
appears on the page.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML

from cadence.config import iter_keys, load_settings
from cadence.ingest.readers import CUSTOMERS, MESSAGES, Table, parse_csv, parse_jsonl
from cadence.ingest.record_errors import explain
from cadence.ingest.records import CustomerIn, EventIn, MessageIn, Record, RecordedIn
from cadence.rules import schema
from cadence.rules.expressions import NAMES
from cadence.starter.writer import next_monday
from tests.support.doc_blocks import REPO, Block, blocks, check_rule_example

from .conftest import Cli

PAGE = (REPO / "docs" / "reference.md").read_text()
BLOCKS = blocks(PAGE)

SH = [b for b in BLOCKS if b.lang == "sh" and not b.tagged("no-run")]
RULES = [b for b in BLOCKS if b.lang == "yaml" and b.tagged("rules")]
CONFIGS = [b for b in BLOCKS if b.lang == "yaml" and b.tagged("config")]
INPUTS = [b for b in BLOCKS if b.lang in ("jsonl", "csv")]
SHAPES = {
    tag.removeprefix("shape="): b
    for b in BLOCKS
    if b.lang == "json"
    for tag in b.tags
    if tag.startswith("shape=")
}

#: what each kind of input is read as: (model, the CSV table, or None where CSV is refused)
KINDS: dict[str, tuple[type[Record], Table | None]] = {
    "customers": (CustomerIn, CUSTOMERS),
    "submit": (MessageIn, MESSAGES),
    "record": (RecordedIn, MESSAGES),
    "events": (EventIn, None),
}


def _ids(found: list[Block]) -> list[str]:
    return [f"line-{b.line}" for b in found]


def test_the_page_has_its_examples() -> None:
    assert len(SH) >= 14 and len(RULES) >= 7 and CONFIGS
    assert {b.tags[0] for b in INPUTS if b.tags} == set(KINDS)
    assert set(SHAPES) == {
        "preview",
        "explain",
        "simulate",
        "ledger",
        "upcoming",
        "report",
        "rules-check",
        "import",
    }


# -- the commands, run as a user runs them -------------------------------------------------------


def _expected_exit(line: str) -> int:
    comment = line.partition(" #")[2]
    found = re.search(r"\bexit (\d+)", comment)
    return int(found.group(1)) if found else 0


@pytest.mark.slow
def test_the_commands_run_in_order_in_a_fresh_folder(cli: Cli) -> None:
    cli("init", ".")
    env = dict(cli.env)
    # the `cadence` installed beside this interpreter, as a user's shell finds it
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    ran = 0
    for block in SH:
        for offset, line in enumerate(block.text.splitlines(), start=1):
            command = line.strip()
            if not command or command.startswith("#"):
                continue
            assert re.match(r"(\w+=\S+ )*cadence ", command), f"not a cadence command: {line}"
            proc = subprocess.run(
                ["bash", "-c", command],
                cwd=cli.cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            want = _expected_exit(command)
            where = f"docs/reference.md:{block.line + offset}: {command}"
            assert proc.returncode == want, (
                f"{where}\nexited {proc.returncode}, the page says {want}\n"
                f"{proc.stderr}{proc.stdout}"
            )
            if want == 0:
                assert "Traceback" not in proc.stderr, f"{where}\n{proc.stderr}"
            ran += 1
    assert ran >= 40


def _leaves() -> Iterator[tuple[str, Any]]:
    """(`cadence db upgrade`, its command) for the root, every group and every command."""
    from cadence.cli import commands, listing, main, report_cmd  # noqa: F401 - registers them
    from cadence.cli.base import app

    def walk(command: Any, path: str) -> Iterator[tuple[str, Any]]:
        yield path, command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, f"{path} {name}")

    yield from walk(typer.main.get_command(app), "cadence")


def _section(path: str) -> str:
    """The text under the heading of `path`, or of the nearest group above it that has one."""
    words = path.split()
    while words:
        heading = re.search(rf"^### `{' '.join(words)}`\n(.*?)(?=^##)", PAGE, re.S | re.M)
        if heading:
            return heading.group(1)
        words.pop()
    raise AssertionError(f"no heading for `{path}`")


def test_every_command_and_option_is_in_the_reference() -> None:
    shown = "\n".join(b.text for b in BLOCKS if b.lang == "sh")
    missing = []
    for path, command in _leaves():
        if f"`{path}" not in PAGE:
            missing.append(path)
            continue
        section = _section(path)
        for param in command.params:
            if param.param_type_name != "option":
                continue
            for flag in [*param.opts, *param.secondary_opts]:
                if flag.startswith("--") and not re.search(rf"{flag}\b", section):
                    missing.append(f"{path} {flag}")
        if not hasattr(command, "commands") and not re.search(rf"^{path}\b", shown, re.M):
            missing.append(f"{path} (no example)")
    assert missing == [], f"not in docs/reference.md: {missing}"


# -- rules, configuration and inputs, loaded as cadence loads them -------------------------------


@pytest.mark.parametrize("block", RULES, ids=_ids(RULES))
def test_rule_example_passes_rules_check(block: Block, tmp_path: Path) -> None:
    check_rule_example(block.text, tmp_path)


@pytest.mark.parametrize("block", CONFIGS, ids=_ids(CONFIGS))
def test_config_example_loads(block: Block, tmp_path: Path) -> None:
    (tmp_path / "cadence.yaml").write_text(block.text)
    settings = load_settings(tmp_path / "cadence.yaml", environ={})
    assert settings.transport.kind == "sendgrid"
    # the environment wins over the file, nested keys joined by `__`
    over = load_settings(tmp_path / "cadence.yaml", environ={"CADENCE_TRANSPORT__KIND": "console"})
    assert over.transport.kind == "console"


@pytest.mark.parametrize("block", INPUTS, ids=_ids(INPUTS))
def test_input_example_is_valid(block: Block) -> None:
    model, table = KINDS[block.tags[0]]
    if block.lang == "csv":
        assert table is not None, f"{block.tags[0]} has no CSV form"
        raws = parse_csv("reference.csv", block.text, table)
    else:
        raws = parse_jsonl(block.text)
    assert raws
    for raw in raws:
        assert raw.fields is not None, f"line {block.line + raw.line}: {raw.error}"
        try:
            model.model_validate(raw.fields)
        except ValidationError as exc:
            why = explain(exc, model)
            raise AssertionError(f"docs/reference.md:{block.line + raw.line}: {why}") from None


def _dotted(node: Any, prefix: str = "") -> Iterator[str]:
    for key, value in node.items():
        yield prefix + str(key)
        if isinstance(value, dict) and value:
            yield from _dotted(value, f"{prefix}{key}.")


def test_every_configuration_key_is_in_the_reference() -> None:
    example = YAML(typ="safe").load((REPO / "config.example.yaml").read_text())
    keys = set(_dotted(example)) | set(iter_keys())
    leaves = [k for k in keys if not any(other.startswith(k + ".") for other in keys)]
    assert len(leaves) >= 30
    missing = sorted(k for k in leaves if f"`{k}`" not in PAGE)
    assert missing == [], f"configuration keys not in docs/reference.md: {missing}"


def _rule_keys(model: type[BaseModel]) -> Iterator[str]:
    for name, field in model.model_fields.items():
        yield field.alias or name


def test_every_rule_key_and_expression_name_is_in_the_reference() -> None:
    models: list[type[BaseModel]] = [
        schema.RuleFile,
        schema.LimitFile,
        schema.SendWindowFile,
        schema.SuppressFile,
        schema.HoldFile,
        schema.MergeFile,
        schema.CancelFile,
        schema.PlaybookFile,
        schema.SendFile,
    ]
    keys = {key for model in models for key in _rule_keys(model)}
    missing = sorted(k for k in keys | NAMES if f"`{k}" not in PAGE)
    assert missing == [], f"not in docs/reference.md: {missing}"


def test_every_http_endpoint_is_in_the_reference(tmp_path: Path) -> None:
    from cadence.app import App
    from cadence.feedback.app import create_app

    env = {"CADENCE_DATABASE_URL": f"sqlite:///{tmp_path / 'cadence.db'}"}
    app = App(load_settings(None, env))
    try:
        routes = create_app(app, public_key=None, scheduler_alive=bool).routes
    finally:
        app.close()
    endpoints = [
        f"{method} {getattr(route, 'path', '').replace('{', '<').replace('}', '>')}"
        for route in routes
        for method in sorted(getattr(route, "methods", None) or ())
        if method != "HEAD"
    ]
    assert len(endpoints) >= 9
    missing = [e for e in endpoints if f"`{e}" not in PAGE]
    assert missing == [], f"HTTP endpoints not in docs/reference.md: {missing}"


# -- what the commands print ---------------------------------------------------------------------


def _keys(value: Any) -> set[str]:
    """The keys of an object, or of every object in a list together."""
    if isinstance(value, dict):
        return set(value)
    return set().union(*(set(item) for item in value if isinstance(item, dict)))


def _same_shape(name: str, shown: Any, printed: Any) -> None:
    assert _keys(shown) == _keys(printed), f"shape={name}: the page vs the command"
    if isinstance(shown, dict):
        for key, value in shown.items():
            if isinstance(value, list) and value and printed[key]:
                assert _keys(value) == _keys(printed[key]), f"shape={name}: `{key}`"


@pytest.mark.slow
def test_the_json_shapes_are_what_the_commands_print(setup: Cli) -> None:
    base = next_monday(datetime.now(UTC))
    at = (base + timedelta(days=1, hours=20)).isoformat()  # the onboarding digest goes
    setup("run", "--once", "--now", at)
    start, end = base.isoformat(), (base + timedelta(days=7)).isoformat()
    runs = {
        "preview": ["preview", "c-17", "--at", at, "--format", "json"],
        "explain": ["explain", "cs-12", "--at", at, "--format", "json"],
        "simulate": ["simulate", "--start", start, "--end", end, "--format", "json"],
        "ledger": ["ledger", "--format", "json"],
        "upcoming": ["upcoming", "--at", base.isoformat(), "--days", "14", "--format", "json"],
        "report": ["report", "--since", "4w", "--until", end, "--format", "json"],
        "rules-check": ["rules", "check", "--format", "json"],
        "import": ["events", "ingest", "samples/events.jsonl", "--format", "json"],
    }
    assert set(runs) == set(SHAPES)
    for name, args in runs.items():
        printed = json.loads(setup(*args).out)
        assert printed, f"`cadence {shlex.join(args)}` printed nothing to compare"
        _same_shape(name, json.loads(SHAPES[name].text), printed)


# -- the reference travels with the product ------------------------------------------------------


def _anchors(page: str) -> set[str]:
    """The anchors GitHub gives the headings of `page`."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", page, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_the_links_of_the_reference_lead_somewhere() -> None:
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", PAGE):
        if target.startswith("http"):
            continue
        path = (REPO / "docs" / target).resolve() if target else REPO / "docs" / "reference.md"
        assert path.is_file() and path.is_relative_to(REPO), f"({target}) leads nowhere"
        if anchor:
            assert anchor in _anchors(path.read_text()), f"({target}#{anchor}) leads nowhere"


def test_the_docs_link_only_inside_the_repository() -> None:
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text()
        assert "../shared" not in text and "CONTRACT.md" not in text, page
    assert "(docs/reference.md)" in (REPO / "README.md").read_text()
