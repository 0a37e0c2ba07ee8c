"""Times as the store keeps them: sortable UTC ISO strings."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


def to_db(moment: datetime | None) -> str | None:
    """A timezone-aware datetime as a sortable UTC ISO string."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r} reached the store")
    return _utc_text(moment)


# A poll writes the same few moments (its own "now", a feed's dates) for every row: each formatted once.
# Equal datetimes are the same instant, whatever their zone, so they share one UTC text.
@lru_cache(maxsize=512)
def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def from_db(value: str | None) -> datetime | None:
    """The inverse of to_db."""
    return datetime.fromisoformat(value) if value else None
