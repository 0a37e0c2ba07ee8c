"""Group commit: the writes of polls that finish in the same turn of the event loop share one transaction.

A poll's writes are one transaction (pipeline.poll_source). Committing each costs an fsync and the WAL
frames of its pages; when polls finish together (a first cycle, a burst of 304s) one COMMIT for all of them
costs about what one costs alone. Each poll's writes are still all or nothing: inside the group each runs
in its own savepoint, so one that raises is rolled back alone and its caller gets the exception, while the
others commit. A poll's caller is answered only after the COMMIT: what it reports stored is durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from feedbot.errors import StateError
from feedbot.store.db import Database

T = TypeVar("T")


class GroupCommit:
    """Runs write functions in one transaction per event-loop turn (one COMMIT for what finished together)."""

    def __init__(self, store: Database):
        self.store = store
        self._pending: list[tuple[Callable[[], Any], bool, asyncio.Future[Any]]] = []
        self.commits = 0  # transactions committed, for tests and benchmarks
        self.writes = 0  # write functions run in them

    async def run(self, write: Callable[[], T], *, durable: bool = True) -> T:
        """``write()`` inside a transaction shared with the other writes of this turn; its result after COMMIT.

        ``write`` must not await (the connection is shared by every coroutine). ``durable=False`` as in
        ``Store.transaction``: a group is durable when any of its writes is.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)  # after every task resumed in this turn had its chance to join
        self._pending.append((write, durable, future))
        return await future

    def _flush(self) -> None:
        # A caller cancelled before its turn (its poll timed out, the daemon stops) wrote nothing: skipped.
        jobs = [job for job in self._pending if not job[2].cancelled()]
        self._pending = []
        if not jobs:
            return
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.store.transaction(durable=any(durable for _, durable, _ in jobs)):
                if len(jobs) == 1:  # alone: its transaction is the group's, no savepoint needed
                    outcomes.append((True, jobs[0][0]()))
                else:
                    for write, _, _ in jobs:
                        outcomes.append(self._one(write))
        except BaseException as exc:  # the group did not commit (or nothing failed but the COMMIT): none stored
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            for _, _, future in jobs:
                if not future.cancelled():
                    future.set_exception(exc)
            return
        self.commits += 1
        self.writes += len(jobs)
        for (_, _, future), (ok, value) in zip(jobs, outcomes, strict=True):
            if future.cancelled():
                continue  # committed all the same: what it wrote is stored, and recognised next poll
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _one(self, write: Callable[[], Any]) -> tuple[bool, Any]:
        """One write in its own savepoint: (True, result), or (False, exception) with the write rolled back."""
        try:
            with self.store.transaction():
                return True, write()
        except StateError:
            raise  # the database refused: the whole group is rolled back and every caller told
        except Exception as exc:  # rolled back by its savepoint, which forgets the store's caches too
            return False, exc
