"""A de-duplicating work queue: each key is reconciled by one worker at a time.

controller-runtime's workqueue semantics in a few lines: adding a key that is already queued does
nothing; adding a key that is being processed marks it dirty, and it is queued again when the
current pass ends. So a burst of watch events for one ModelDeployment costs one or two reconciles,
and two workers never reconcile the same object concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class WorkQueue:
    """Keys in, one worker per key at a time."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._active: set[Hashable] = set()
        self._dirty: set[Hashable] = set()

    def add(self, key: Hashable) -> None:
        if key in self._active:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    async def get(self) -> Hashable:
        key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: Hashable) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return self._queue.qsize()
