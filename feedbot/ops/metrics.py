"""Prometheus metrics: counters kept in memory, gauges read from the store at scrape time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from feedbot.clock import utcnow
from feedbot.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One registry per process: what happened (counters) and what is (gauges from the store)."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow):
        self.registry = CollectorRegistry(auto_describe=True)
        self.polls = Counter("feedbot_polls", "Source polls by result (ok, not_modified, failed).",
                             ["source", "result"], registry=self.registry)
        self.articles_seen = Counter("feedbot_articles_stored", "Articles stored, by kind (new, updated).",
                                     ["source", "kind"], registry=self.registry)
        self.deliveries = Counter("feedbot_delivery_attempts", "Delivery attempts by outcome.",
                                  ["target", "outcome"], registry=self.registry)
        self.rate_limited = Counter("feedbot_telegram_429", "HTTP 429 answers from the Bot API.",
                                    registry=self.registry)
        self.task_failures = Counter("feedbot_task_failures", "Failed rounds of a background task (feeds, drain, "
                                     "search-index, bot-commands, watchdog); each is retried.", ["task"],
                                     registry=self.registry)
        self.registry.register(_StoreCollector(store, clock))

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    def __init__(self, store: Store, clock: Callable[[], datetime]):
        self.store, self.clock = store, clock

    def describe(self):
        return []

    def collect(self):
        now = self.clock()
        per_topic = GaugeMetricFamily("feedbot_articles", "Stored articles per topic.", labels=["topic"])
        for topic, count in self.store.article_counts().items():
            per_topic.add_metric([topic], count)
        yield per_topic
        by_status = GaugeMetricFamily("feedbot_deliveries", "Outbox rows by target and status.",
                                      labels=["target", "status"])
        depth = 0
        for row in self.store.delivery_counts():
            by_status.add_metric([str(row.target), row.status], row.count)
            if row.status in ("pending", "sending"):
                depth += row.count
        yield by_status
        yield GaugeMetricFamily("feedbot_outbox_depth", "Deliveries not yet sent (pending or sending).", value=depth)
        since = GaugeMetricFamily("feedbot_source_seconds_since_success",
                                  "Seconds since each source's last successful poll (-1: never).", labels=["source"])
        failures = GaugeMetricFamily("feedbot_source_failures", "Consecutive failed polls per source.",
                                     labels=["source"])
        for state in self.store.source_states():
            age = (now - state.last_ok_at).total_seconds() if state.last_ok_at else -1
            since.add_metric([state.id], age)
            failures.add_metric([state.id], state.failures)
        yield since
        yield failures
        yield GaugeMetricFamily("feedbot_quarantined_items", "Source items set aside because they failed processing.",
                                value=self.store.quarantine_count())
        yield GaugeMetricFamily("feedbot_search_queue", "Stored articles waiting for the search index (a growing "
                                "queue: indexing is failing).", value=self.store.search_queue_length())
