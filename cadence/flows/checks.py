"""`cadence rules check`: rules and the templates they name, every problem at once."""

from __future__ import annotations

from pathlib import Path

from cadence.rules import RuleErrors, load_rules
from cadence.rules.model import Location, Rules
from cadence.words import plural


def _template_users(rules: Rules) -> list[tuple[str, Location]]:
    users = [(m.template, m.location) for m in rules.merge]
    users += [(p.send.template, p.location) for p in rules.playbooks if p.send.template]
    return users


def check_rules(rules_dir: Path, templates_dir: Path) -> tuple[list[str], str]:
    """(problems as `FILE:LINE:COL: message` lines, a one-line summary when there are none)."""
    from cadence.delivery.render import Renderer

    try:
        rules = load_rules(rules_dir)
    except RuleErrors as exc:
        return [str(e) for e in exc.errors], ""
    problems_by_name = Renderer(templates_dir).check(rules.templates())
    problems = [
        f"{where}: template `{name}`: {problems_by_name[name]}"
        for name, where in _template_users(rules)
        if name in problems_by_name
    ]
    summary = (
        f"{rules_dir}: {plural(len(rules.files), 'file')}, {plural(len(rules.limits), 'limit')}, "
        f"{plural(len(rules.send_windows), 'send window')}, "
        f"{plural(len(rules.suppress), 'suppress rule')}, {plural(len(rules.hold), 'hold rule')}, "
        f"{plural(len(rules.merge), 'merge rule')}, {plural(len(rules.playbooks), 'playbook')}; "
        f"{plural(len(rules.templates()), 'template')} compile; rules version {rules.version}"
    )
    return problems, summary
