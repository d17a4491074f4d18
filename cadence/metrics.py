"""Prometheus metrics of one daemon process, in a registry of our own (what `GET /metrics`
serves).

Why a registry of our own rather than prometheus_client's global one: `/metrics` then shows
cadence's numbers only, whatever else in the process registers collectors, and tests can read
exactly these. The sending loop calls the small `record_*`/`set_*`/`observe_*` functions below,
never the metric objects, so names and labels are decided in this one file.

Counters count what this process did since it started (Prometheus turns them into rates);
gauges say how things stand now (the daemon sets them each tick).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from cadence.model import Decision

REGISTRY = CollectorRegistry()
#: the media type `GET /metrics` answers with (the Prometheus text format)
CONTENT_TYPE = CONTENT_TYPE_LATEST

EMAILS_SENT = Counter("cadence_emails_sent", "Emails the transport accepted", registry=REGISTRY)
EMAILS_FAILED = Counter("cadence_emails_failed", "Emails that failed for good", registry=REGISTRY)
EMAILS_RETRIED = Counter(
    "cadence_emails_retried", "Temporary failures that will be retried", registry=REGISTRY
)
EMAILS_UNCONFIRMED = Counter(
    "cadence_emails_unconfirmed",
    "Emails that became unconfirmed (the provider may or may not have them)",
    registry=REGISTRY,
)
UNCONFIRMED_NOW = Gauge(
    "cadence_unconfirmed_emails",
    "Emails unconfirmed right now, waiting for a provider event or an operator",
    registry=REGISTRY,
)
DECISIONS = Counter(
    "cadence_decisions",
    "Planner decisions on messages, by status and rule (a message re-planned counts again)",
    ["status", "rule"],
    registry=REGISTRY,
)
TICK_SECONDS = Histogram(
    "cadence_tick_seconds",
    "Duration of one daemon tick",
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
QUEUE_DEPTH = Gauge("cadence_queue_depth", "Planned emails that are due", registry=REGISTRY)
UNSUBSCRIBES = Counter(
    "cadence_http_unsubscribes",
    "One-click unsubscribe requests, by outcome (recorded, repeat, rejected)",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_EVENTS = Counter(
    "cadence_webhook_events",
    "SendGrid webhook events, by outcome (stored, duplicate, ignored)",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_REJECTED = Counter(
    "cadence_webhook_batches_rejected",
    "SendGrid webhook batches refused whole, by reason (signature, malformed, too_large)",
    ["reason"],
    registry=REGISTRY,
)

INBOUND_REPLIES = Counter(
    "cadence_inbound_replies",
    "Inbound Parse posts (customers' replies), by outcome: matched (a replied event stored), "
    "duplicate (SendGrid posting one again), unknown_sender, automatic (an out of office), "
    "refused (no or wrong key), malformed (not an Inbound Parse post, or too large)",
    ["outcome"],
    registry=REGISTRY,
)
PREFERENCE_SAVES = Counter(
    "cadence_preference_saves",
    "Preference page saves, by outcome: recorded, repeat (the same choice sent again), "
    "invalid (the form was refused), unknown (no such customer), rejected (a forged, "
    "altered or expired link)",
    ["outcome"],
    registry=REGISTRY,
)


def record_sent(n: int = 1) -> None:
    EMAILS_SENT.inc(n)


def record_failed(n: int = 1) -> None:
    EMAILS_FAILED.inc(n)


def record_retried(n: int = 1) -> None:
    EMAILS_RETRIED.inc(n)


def record_unconfirmed(n: int = 1) -> None:
    EMAILS_UNCONFIRMED.inc(n)


def set_unconfirmed(n: int) -> None:
    """How many emails are `unconfirmed` now (a number an operator should bring to zero)."""
    UNCONFIRMED_NOW.set(n)


def record_dispatch(sent: int, failed: int, retried: int, unconfirmed: int) -> None:
    """One dispatch pass's outcome at once."""
    record_sent(sent)
    record_failed(failed)
    record_retried(retried)
    record_unconfirmed(unconfirmed)


def record_decisions(decisions: Iterable[Decision]) -> None:
    for d in decisions:
        DECISIONS.labels(status=str(d.status), rule=d.rule or "").inc()


def observe_tick(seconds: float) -> None:
    TICK_SECONDS.observe(seconds)


def set_queue_depth(n: int) -> None:
    QUEUE_DEPTH.set(n)


def record_unsubscribe(outcome: str) -> None:
    UNSUBSCRIBES.labels(outcome=outcome).inc()


def record_webhook(*, stored: int, duplicates: int, ignored: int) -> None:
    WEBHOOK_EVENTS.labels(outcome="stored").inc(stored)
    WEBHOOK_EVENTS.labels(outcome="duplicate").inc(duplicates)
    WEBHOOK_EVENTS.labels(outcome="ignored").inc(ignored)


def record_webhook_rejected(reason: str) -> None:
    WEBHOOK_REJECTED.labels(reason=reason).inc()


def record_inbound(outcome: str, n: int = 1) -> None:
    INBOUND_REPLIES.labels(outcome=outcome).inc(n)


def record_preference_save(outcome: str) -> None:
    PREFERENCE_SAVES.labels(outcome=outcome).inc()


def render() -> bytes:
    """The registry in the Prometheus text format (serve it as `CONTENT_TYPE`)."""
    return generate_latest(REGISTRY)
