"""Prometheus metrics (`GET /metrics`). No label ever carries a task name, URL or id.

Counters and histograms are updated where things happen (the scheduler, the HTTP middleware);
the state gauges (tasks by status, due backlog, retries pending) are read from the database when
Prometheus scrapes, so every replica reports the same shared numbers.
"""

import logging
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction
from app.models import Occurrence, Task

logger = logging.getLogger(__name__)

# Set (by `serve` with WORKERS > 1) before the workers start: where their counters meet.
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The metrics of one service instance, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # What GET /metrics shows: this registry, or with several worker processes their
        # counters merged (prometheus_client's multiprocess mode) and the database's gauges.
        self.exposition = self.registry
        counter, histogram = self._counter, self._histogram
        self.deliveries = counter(
            "insignia_deliveries", "Delivery attempts by what came of them", ["outcome"]
        )
        self.delivery_duration = histogram(
            "insignia_delivery_duration_seconds",
            "Time from sending a webhook request to its answer (or error)",
        )
        self.firing_lateness = histogram(
            "insignia_firing_lateness_seconds",
            "Time from an occurrence's due instant to its first request being sent",
            ["trigger"],
        )
        self.deactivations = counter(
            "insignia_task_deactivations", "Tasks deactivated because their deliveries failed"
        )
        self.probes = counter(
            "insignia_probes",
            "Health probes of tasks switched off by transient failures, by what came of them",
            ["step"],
        )
        self.recoveries = counter(
            "insignia_task_recoveries", "Tasks made active again by a successful probe"
        )
        self.http_requests = counter(
            "insignia_http_requests",
            "API requests by method, route template and status",
            ["method", "route", "status"],
        )
        self.http_duration = histogram(
            "insignia_http_request_duration_seconds",
            "API request duration by method and route template",
            ["method", "route"],
        )

    def _counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _histogram(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Histogram:
        return Histogram(
            name, documentation, labels, buckets=LATENCY_BUCKETS, registry=self.registry
        )

    def watch_database(self, factory: sessionmaker[Session]) -> None:
        """Report the shared state gauges from this database at scrape time."""
        collector = DatabaseStateCollector(factory)
        self.registry.register(collector)
        if os.environ.get(MULTIPROCESS_DIRECTORY):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)
            merged.register(collector)
            self.exposition = merged


class DatabaseStateCollector(Collector):
    """Tasks by status, due backlog and pending retries, read when Prometheus scrapes."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            by_status, backlog, retries = self._read(datetime.now(UTC))
        except Exception as exc:  # the database is down: report nothing rather than fail
            logger.warning("cannot read metrics from the database: %s", type(exc).__name__)
            return
        tasks = GaugeMetricFamily("insignia_tasks", "Tasks by status", labels=["status"])
        for status in ("active", "inactive"):
            tasks.add_metric([status], by_status.get(status, 0))
        yield tasks
        yield GaugeMetricFamily(
            "insignia_due_backlog",
            "Occurrences due now and not yet claimed (due tasks and available retries)",
            value=backlog,
        )
        yield GaugeMetricFamily(
            "insignia_retries_pending",
            "Occurrences waiting for a retry or a rate-limit wait",
            value=retries,
        )

    def _read(self, now: datetime) -> tuple[dict[str, int], int, int]:
        with transaction(self._factory) as session:
            by_status = dict(
                session.execute(select(Task.status, func.count()).group_by(Task.status)).all()
            )
            due_tasks = session.scalar(
                select(func.count()).select_from(Task).where(Task.next_run_at <= now)
            )
            available = session.scalar(
                select(func.count())
                .select_from(Occurrence)
                .where(Occurrence.available_at <= now, Occurrence.lease_owner.is_(None))
            )
            retries = session.scalar(
                select(func.count())
                .select_from(Occurrence)
                .where(
                    Occurrence.available_at.is_not(None),
                    Occurrence.lease_owner.is_(None),
                    Occurrence.available_at > now,
                )
            )
        return by_status, (due_tasks or 0) + (available or 0), retries or 0
