"""`cadence rules check`: rules and the templates they name, every problem in one run.

The rules are loaded as the daemon loads them; the templates are found where the YAML names
them (`cadence.rules.sites`), so a template's problem is reported at its `template:` line,
and also when other rules in the folder have errors. Event types the playbooks wait for are
held against what can arrive: the types cadence makes itself and, when the ledger can be
read, every type it has had. A name close to one of those is a likely typo: a warning with
the name it is close to. A name nothing has produced yet is listed under the summary, not
warned about: a team's own type is unknown until its first event arrives (a churn).

What the expressions read of the customer (`customer.plan`) is held the same way against the
customer's own fields and every attribute the ledger's customers and events carry: a typo
there holds every message the rule covers (its condition fails) or silently never matches
(behind `| default`).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cadence.engine.events import OWN_TYPES
from cadence.rules import RuleError, RuleErrors, load_rules
from cadence.rules.expressions import customer_names
from cadence.rules.loader import KINDS
from cadence.rules.model import Expression, Location, Rules
from cadence.rules.sites import Site, sites
from cadence.views import CUSTOMER_FIELDS
from cadence.words import plural

#: closer than the rule compiler's 0.6: `ticket_opened` is a team's own type, not a typo of
#: `opened`, while `ticket_resolvd` and `unsubscribe` are typos of what is known
_EVENT_CUTOFF = 0.8
#: `plna` is a typo of `plan` (0.75) and `helth` of `health` (0.91); `country` is not one of
#: `account` (0.71), nor `region` of `reason` (0.67): a team's own attributes, listed instead
_ATTRIBUTE_CUTOFF = 0.75


@dataclass(frozen=True)
class Seen:
    """What the ledger has had: the event types, the attribute names of its customers and
    events, how many customers."""

    event_types: frozenset[str]
    attributes: frozenset[str]
    customers: int


@dataclass(frozen=True)
class Reads:
    """A name an expression reads of the customer, in `what` (`suppress rule `x``)."""

    name: str
    what: str
    location: Location


@dataclass
class Check:
    """What `rules check` found: problems (exit 1), warnings, and the rules when they load."""

    folder: Path
    problems: list[RuleError] = field(default_factory=list)
    warnings: list[RuleError] = field(default_factory=list)
    #: event types the rules wait for that neither cadence nor the ledger has produced
    unseen: list[Site] = field(default_factory=list)
    #: names read of the customer that no customer or event of the ledger has
    unseen_attributes: list[Reads] = field(default_factory=list)
    rules: Rules | None = None

    def counts(self) -> dict[str, int]:
        r = self.rules
        if r is None:
            return {}
        return {
            "files": len(r.files),
            "limits": len(r.limits),
            "send_windows": len(r.send_windows),
            "suppress": len(r.suppress),
            "hold": len(r.hold),
            "merge": len(r.merge),
            "playbooks": len(r.playbooks),
            "templates": len(r.templates()),
        }

    def summary(self) -> str:
        """One line when the rules load and every template compiles, else "": what they
        hold; and a second naming the event types they wait for that have not arrived yet."""
        if self.rules is None or self.problems:
            return ""
        c = self.counts()
        return (
            f"{self.folder}: {plural(c['files'], 'file')}, {plural(c['limits'], 'limit')}, "
            f"{plural(c['send_windows'], 'send window')}, "
            f"{plural(c['suppress'], 'suppress rule')}, {plural(c['hold'], 'hold rule')}, "
            f"{plural(c['merge'], 'merge rule')}, {plural(c['playbooks'], 'playbook')}; "
            f"{plural(c['templates'], 'template')} compile; rules version {self.rules.version}"
        ) + self._unseen_line()

    def _unseen_line(self) -> str:
        lines = ""
        if self.unseen:
            waits = ", ".join(f"{s.name} ({s.what}, {s.key})" for s in self.unseen)
            lines += f"\nno event of these types has arrived yet: {waits}"
        if self.unseen_attributes:
            reads = ", ".join(f"{r.name} ({r.what})" for r in self.unseen_attributes)
            lines += f"\nno customer has these attributes yet: {reads}"
        return lines

    def as_json(self) -> dict[str, Any]:
        def entry(e: RuleError) -> dict[str, Any]:
            return {"file": e.file, "line": e.line, "column": e.column, "message": e.message}

        def entry_at(s: Site | Reads) -> dict[str, Any]:
            at = s.location
            return {"file": at.file, "line": at.line, "column": at.column}

        return {
            "folder": str(self.folder),
            "ok": not self.problems,
            "problems": [entry(e) for e in self.problems],
            "warnings": [entry(e) for e in self.warnings],
            "unseen_event_types": [
                {"type": s.name, "rule": s.what, "key": s.key, **entry_at(s)} for s in self.unseen
            ],
            "unseen_attributes": [
                {"name": r.name, "rule": r.what, **entry_at(r)} for r in self.unseen_attributes
            ],
            "counts": self.counts() if not self.problems else None,
            "rules_version": self.rules.version if self.rules and not self.problems else None,
        }


def _template_problems(named: list[Site], templates_dir: Path) -> list[RuleError]:
    from cadence.delivery.render import Renderer

    wrong = Renderer(templates_dir).check(s.name for s in named)
    return [
        RuleError(
            s.location.file,
            s.location.line,
            s.location.column,
            f"template `{s.name}` ({s.what}): {wrong[s.name]}",
        )
        for s in named
        if s.name in wrong
    ]


class Named(Protocol):
    """A name written in a rule, where, and in which rule: an event type it waits for
    (`Site`), a name it reads of the customer (`Reads`)."""

    @property
    def name(self) -> str: ...
    @property
    def what(self) -> str: ...
    @property
    def location(self) -> Location: ...


N = TypeVar("N", bound=Named)


def _typos(
    names: list[N], known: Collection[str], cutoff: float, missing: str
) -> tuple[list[RuleError], list[N]]:
    """(a warning for each name close to a known one: a likely typo, the names close to
    none). `missing` says what is not there, with `{}` for the name."""
    choices = sorted(known)
    warnings: list[RuleError] = []
    rest: list[N] = []
    for n in names:
        if n.name in known:
            continue
        close = difflib.get_close_matches(n.name, choices, n=1, cutoff=cutoff)
        if close:
            at = n.location
            why = f"{missing.format(n.name)}; did you mean `{close[0]}`?"
            warnings.append(RuleError(at.file, at.line, at.column, f"warning: {n.what}: {why}"))
        else:
            rest.append(n)
    return warnings, rest


def _events(
    waited: list[Site], ledger_types: Collection[str] | None
) -> tuple[list[RuleError], list[Site]]:
    """(warnings for names close to a known type, the names nothing has produced yet)."""
    known = OWN_TYPES | set(ledger_types or ())
    missing = "no event of type `{}` has arrived"
    warnings, rest = _typos(waited, known, _EVENT_CUTOFF, missing)
    return warnings, rest if ledger_types is not None else []


def customer_reads(rules: Rules) -> list[Reads]:
    """Every name an expression of the rules reads of the customer, in rule order."""
    out = []
    for attr, kind in KINDS.items():  # those without expressions give none
        for rule in getattr(rules, attr):
            for f in fields(rule):
                value = getattr(rule, f.name)
                if isinstance(value, Expression):
                    what = f"{kind} `{rule.name}`"
                    out += [Reads(n, what, value.location) for n in customer_names(value.source)]
    return out


def _attributes(reads: list[Reads], seen: Seen | None) -> tuple[list[RuleError], list[Reads]]:
    """(warnings for names close to a known one, the names no customer has yet, once each).
    Nothing when the ledger could not be read or holds no customer: then every name is
    unknown."""
    if seen is None or not seen.customers:
        return [], []
    missing = "no customer has attribute `{}`"
    warnings, rest = _typos(reads, CUSTOMER_FIELDS | seen.attributes, _ATTRIBUTE_CUTOFF, missing)
    first: dict[str, Reads] = {}
    for r in rest:
        first.setdefault(r.name, r)
    return warnings, list(first.values())


def ledger_seen(database_url: str) -> Seen | None:
    """What the ledger has had, or None when there is no ledger to read: a SQLite file not
    made yet (a check does not make one), a database at an older schema or one that cannot
    be reached. The check goes on without it, as it would before the first event."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from cadence.ledger import db

    try:
        if database_url.startswith("sqlite"):
            path = make_url(database_url).database
            if not path or not Path(path).is_file():
                return None
        if db.schema_state(database_url) != "current":
            return None
        from cadence.app import open_store

        store = open_store(database_url)
        try:
            attributes, customers = store.reads.attribute_names()
            return Seen(frozenset(store.reads.event_types()), frozenset(attributes), customers)
        finally:
            store.close()
    except (SQLAlchemyError, db.HalfMade, db.UnsupportedDatabase, ValueError):
        return None


def run_check(rules_dir: Path, templates_dir: Path, seen: Seen | None = None) -> Check:
    """Every problem and warning in `rules_dir`, in file and line order. `seen`: what the
    ledger has had (None when it could not be read)."""
    check = Check(Path(rules_dir))
    try:
        check.rules = load_rules(rules_dir)
    except RuleErrors as exc:
        check.problems += exc.errors
    named, waited = sites(rules_dir) if Path(rules_dir).is_dir() else ([], [])
    check.problems += _template_problems(named, templates_dir)
    check.warnings, check.unseen = _events(waited, seen.event_types if seen else None)
    if check.rules is not None:
        misread, check.unseen_attributes = _attributes(customer_reads(check.rules), seen)
        check.warnings += misread
    check.warnings.sort(key=lambda e: (e.file, e.line, e.column))
    check.problems.sort(key=lambda e: (e.file, e.line, e.column))
    return check


def check_rules(rules_dir: Path, templates_dir: Path) -> tuple[list[str], str]:
    """(problems as `FILE:LINE:COL: message` lines, a one-line summary when there are none)."""
    check = run_check(rules_dir, templates_dir)
    return [str(e) for e in check.problems], check.summary()
