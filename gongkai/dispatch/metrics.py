"""Prometheus metrics. Counters live per process; gauges are read from the database on scrape."""

from __future__ import annotations

from functools import cache
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

DELIVERIES = Counter(
    "gongkai_delivery_outcomes_total",
    "Delivery outcomes seen by this process",
    ["channel", "status"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "gongkai_rate_limited_total",
    "Sends deferred by a provider limit",
    ["channel"],
    registry=REGISTRY,
)
SEND_LATENCY = Histogram(
    "gongkai_send_seconds",
    "Time a provider took to accept one message",
    ["channel"],
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ITEMS = Gauge("gongkai_items", "Items by status", ["status"], registry=REGISTRY)
DELIVERY_ROWS = Gauge(
    "gongkai_deliveries",
    "Deliveries by channel and status",
    ["channel", "status"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("gongkai_queue_depth", "Jobs waiting in the queue", registry=REGISTRY)
OLDEST_UNDELIVERED = Gauge(
    "gongkai_oldest_undelivered_seconds",
    "Age of the oldest delivery that is due and not yet delivered (0 when none)",
    registry=REGISTRY,
)
SHARED = Gauge(
    "gongkai_worker_events",
    "Events every worker counts in Redis: leases_taken_over, reconciled, polls_reconciled",
    ["event"],
    registry=REGISTRY,
)
SHARED_KEY = "gongkai:counters"
SHARED_EVENTS = ("leases_taken_over", "reconciled", "polls_reconciled", "plans_reconciled")


@cache
def _child(metric: Any, *labels: str) -> Any:
    """A metric's labelled child, looked up once: a worker counts every delivery."""
    return metric.labels(*labels)


def outcome(channel: str, status: str, n: int = 1) -> None:
    _child(DELIVERIES, channel, status).inc(n)


def latency(channel: str) -> Any:
    """The send-latency histogram of one channel."""
    return _child(SEND_LATENCY, channel)


async def count_shared(pool: Any, event: str, n: int = 1) -> None:
    """Count an event where every process's /metrics can read it (workers serve no HTTP)."""
    try:
        await pool.hincrby(SHARED_KEY, event, n)
    except Exception:  # Redis away: the count is lost, not the work
        return
