"""The state database: the only wing that speaks SQL; one module per entity, dataclasses out."""

from __future__ import annotations

from feedbot.store.articles import ArticlesTable
from feedbot.store.db import SCHEMA_VERSION, from_db, to_db
from feedbot.store.deliveries import DeliveriesTable
from feedbot.store.digests import DigestsTable
from feedbot.store.quarantine import QuarantineTable
from feedbot.store.reprints import ReprintsTable
from feedbot.store.search import SearchTable
from feedbot.store.sources import SourcesTable


class Store(SourcesTable, SearchTable, ArticlesTable, DeliveriesTable, DigestsTable, QuarantineTable, ReprintsTable):
    """One SQLite file: sources and pages, articles with classifications and search index, the outbox and
    digests, quarantined items, story signatures and reprints."""


__all__ = ["SCHEMA_VERSION", "Store", "from_db", "to_db"]
