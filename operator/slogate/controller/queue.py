"""A de-duplicating work queue: each key is reconciled by one worker at a time.

controller-runtime's workqueue semantics in a few lines: adding a key that is already queued does
nothing; adding a key that is being processed marks it dirty, and it is queued again when the
current pass ends. So a burst of watch events for one ModelDeployment costs one or two reconciles,
and two workers never reconcile the same object concurrently.

Failures back off per key, as controller-runtime's ``ItemExponentialFailureRateLimiter`` does:
``base x 2^n`` after the n-th failure in a row (5 ms, 10 ms, 20 ms, ... up to ``max_delay``), reset by
``forget`` after a success; one failing key never delays the others. A periodic resync
(``add_resync``) leaves a backing-off key to its timer, so a resync cannot turn a failure into a
retry loop at the resync period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class WorkQueue:
    """Keys in, one worker per key at a time."""

    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 300.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}
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

    def backoff_delay(self, key: Hashable) -> float:
        """The delay before the next retry of ``key`` after one more failure. Pure of the loop."""
        return min(self.base_delay * 2 ** self._failures.get(key, 0), self.max_delay)

    def add_rate_limited(self, key: Hashable, *, at_least: float = 0.0) -> float:
        """Count a failure of ``key`` and queue it again after its backoff (or ``at_least``, a
        server's ``Retry-After``, when longer); returns the delay."""
        delay = max(self.backoff_delay(key), at_least)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        """A success: the next failure of ``key`` starts from ``base_delay`` again."""
        self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def add_resync(self, key: Hashable) -> None:
        """A periodic resync's add: a key that is backing off keeps its timer."""
        if key not in self._failures:
            self.add(key)

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
