"""Prometheus metrics of one daemon, in a registry of our own (what `/metrics` serves)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cadence.model import Decision

REGISTRY = CollectorRegistry()

EMAILS_SENT = Counter("cadence_emails_sent", "Emails handed to the transport", registry=REGISTRY)
EMAILS_FAILED = Counter("cadence_emails_failed", "Emails that failed for good", registry=REGISTRY)
EMAILS_RETRIED = Counter(
    "cadence_emails_retried", "Temporary failures that will be retried", registry=REGISTRY
)
EMAILS_UNCONFIRMED = Counter(
    "cadence_emails_unconfirmed",
    "Emails whose send may or may not have happened",
    registry=REGISTRY,
)
DECISIONS = Counter(
    "cadence_decisions", "Decisions made on messages", ["status", "rule"], registry=REGISTRY
)
TICK_SECONDS = Histogram(
    "cadence_tick_seconds",
    "Duration of one daemon tick",
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge("cadence_queue_depth", "Planned emails that are due", registry=REGISTRY)


def record_dispatch(sent: int, failed: int, retried: int, unconfirmed: int) -> None:
    EMAILS_SENT.inc(sent)
    EMAILS_FAILED.inc(failed)
    EMAILS_RETRIED.inc(retried)
    EMAILS_UNCONFIRMED.inc(unconfirmed)


def record_decisions(decisions: Iterable[Decision]) -> None:
    for d in decisions:
        DECISIONS.labels(status=str(d.status), rule=d.rule or "").inc()


def render() -> bytes:
    return generate_latest(REGISTRY)
