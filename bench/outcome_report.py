"""What the runs of `python -m bench outcome` add up to: each run's figures (`Result`), the
issue's goal checked on every run and on the means (`goals`), and the tables printed."""

from __future__ import annotations

import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cadence.report import outcome

POLICIES = ("send everything", "dropping cap", "rules")
#: the issue's goal
P95_CUT = 0.40
DISTINCT = 0.95


@dataclass
class Result:
    """The figures of one policy over one generated month."""

    policy: str
    seed: int
    size: int
    p50: float
    p95: float
    mean: float
    transactional_on_time: int
    transactional: int
    distinct_delivered: int
    distinct: int
    redundant: int  # left out of `distinct`
    emails: int  # sent in the month to customers (alerts to account owners not counted)
    digests: int  # of them, those holding more than one message
    passes: int
    seconds: float
    cpu: float  # seconds of CPU the run's process spent
    #: distinct content still on its way when the run stopped (left out of `distinct`)
    pending: int = 0
    #: what became of the distinct content not delivered: "status: rule" -> category ->
    #: messages
    lost: dict[str, dict[str, int]] = field(default_factory=dict)

    # the two shares as `cadence report` defines them, over the same counts
    @property
    def on_time(self) -> float:
        return outcome.share(self.transactional_on_time, self.transactional)

    @property
    def delivered(self) -> float:
        return outcome.share(self.distinct_delivered, self.distinct)


@dataclass
class Goal:
    """One part of the issue's goal: met when it holds in every run (each seed and size)
    and on the policies' means."""

    name: str
    met_runs: int
    runs: int
    on_means: bool

    @property
    def met(self) -> bool:
        return self.met_runs == self.runs and self.on_means


def _by(results: Sequence[Result]) -> dict[tuple[int, int], dict[str, Result]]:
    out: dict[tuple[int, int], dict[str, Result]] = defaultdict(dict)
    for r in results:
        out[r.size, r.seed][r.policy] = r
    return dict(sorted(out.items()))


def means(results: Sequence[Result]) -> dict[str, dict[str, float]]:
    """Each policy's figures averaged over every run (seed and size)."""
    out = {}
    for policy in POLICIES:
        rs = [r for r in results if r.policy == policy]
        out[policy] = {
            "p50": statistics.fmean(r.p50 for r in rs),
            "p95": statistics.fmean(r.p95 for r in rs),
            "on_time": statistics.fmean(r.on_time for r in rs),
            "delivered": statistics.fmean(r.delivered for r in rs),
        }
    return out


def cut(before: float, after: float) -> float:
    """How much smaller `after` is than `before`, as a share of it."""
    return 1 - after / before if before else 0.0


def goals(results: Sequence[Result]) -> list[Goal]:
    runs = list(_by(results).values())
    avg = means(results)
    every, cap, ours = avg["send everything"], avg["dropping cap"], avg["rules"]
    Run = dict[str, Result]
    checks: list[tuple[str, Callable[[Run], bool], bool]] = [
        (
            f"p95 emails per customer per week cut by >= {P95_CUT:.0%} against sending everything",
            lambda g: cut(g["send everything"].p95, g["rules"].p95) >= P95_CUT,
            cut(every["p95"], ours["p95"]) >= P95_CUT,
        ),
        (
            "100% of transactional mail on time (within 5 minutes)",
            lambda g: g["rules"].on_time == 1.0,
            ours["on_time"] == 1.0,
        ),
        (
            f">= {DISTINCT:.0%} of distinct content delivered",
            lambda g: g["rules"].delivered >= DISTINCT,
            ours["delivered"] >= DISTINCT,
        ),
        (
            "more distinct content delivered than the dropping cap",
            lambda g: g["rules"].delivered > g["dropping cap"].delivered,
            ours["delivered"] > cap["delivered"],
        ),
    ]
    return [
        Goal(name, sum(bool(test(g)) for g in runs), len(runs), avg_ok)
        for name, test, avg_ok in checks
    ]


def print_report(
    header: dict[str, Any], results: Sequence[Result], checked: Sequence[Goal]
) -> None:
    from rich.console import Console
    from rich.table import Table

    # wide enough for the table when the output goes to a file or a pipe
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(
        f"[bold]{header['command']}[/bold]  N = {', '.join(map(str, header['n']))} people, "
        f"seeds {', '.join(map(str, header['seeds']))}, a month (4 weeks)  "
        f"machine: {header['machine']}"
    )
    console.print(
        f"rules measured: {header['rules']} (version {header['rules_version'][:12]}); "
        f"dropping cap: max {header['cap']} per 7d, over: drop"
    )
    console.print(
        f"whole run {header['seconds']:.0f} s ({header['jobs']} runs at a time; "
        f"{sum(r.cpu for r in results):.0f} s of CPU in the runs, "
        f"{header['load']} load average at the end)"
    )
    table = Table(
        title="emails per customer per week; transactional on time; distinct content delivered",
        title_justify="left",
    )
    for col in (
        "N",
        "seed",
        "policy",
        "p50",
        "p95",
        "transactional on time",
        "distinct delivered",
        "p95 cut",
        "emails",
        "digests",
    ):
        table.add_column(col, justify="right" if col not in ("policy",) else "left")
    for (size, seed), row in _by(results).items():
        for policy in POLICIES:
            r = row[policy]
            everything = row["send everything"].p95
            table.add_row(
                str(size),
                str(seed),
                policy,
                f"{r.p50:g}",
                f"{r.p95:g}",
                f"{r.on_time:.1%} of {r.transactional}",
                f"{r.delivered:.1%} of {r.distinct}",
                f"{cut(everything, r.p95):.0%}",
                f"{r.emails:,}",
                f"{r.digests:,}",
            )
        table.add_section()
    avg = means(results)
    for policy, f in avg.items():
        table.add_row(
            "mean",
            "",
            policy,
            f"{f['p50']:.2f}",
            f"{f['p95']:.2f}",
            f"{f['on_time']:.1%}",
            f"{f['delivered']:.1%}",
            f"{cut(avg['send everything']['p95'], f['p95']):.0%}",
            "",
            "",
        )
    console.print(table)
    console.print("[bold]goal[/bold] (the rules against the other two policies):")
    for g in checked:
        mark = "[green]met[/green]" if g.met else "[red]not met[/red]"
        means_ok = "yes" if g.on_means else "no"
        console.print(f"  {mark}: {g.name} (in {g.met_runs} of {g.runs} runs; means: {means_ok})")
    for policy in POLICIES[1:]:
        lost = lost_over(results, policy)
        total = sum(sum(by.values()) for by in lost.values())
        if not total:
            continue
        console.print(f"distinct content not delivered under {policy}, all runs: {total:,}")
        for label, by in lost.items():
            n = sum(by.values())
            what = ", ".join(f"{category} {k:,}" for category, k in by.most_common())
            console.print(f"  {n:>7,}  {n / total:6.1%}  {label} ({what})")


def lost_over(results: Sequence[Result], policy: str) -> dict[str, Counter[str]]:
    """The policy's lost distinct content over every run: label -> category -> messages,
    the largest first."""
    lost: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        if r.policy == policy:
            for label, by in r.lost.items():
                lost[label].update(by)
    return dict(sorted(lost.items(), key=lambda kv: -sum(kv[1].values())))
