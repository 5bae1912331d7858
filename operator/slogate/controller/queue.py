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

Two lanes: a key added by a watch event, a timer or a retry is served before every key a resync
added, and a resync-queued key that an event adds moves to the front lane. So with 1,000 objects
re-planned every resync, a change to one of them waits for at most the passes already running, not
for the whole resync (the reaction latency at N in bench/README.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable


class WorkQueue:
    """Keys in, one worker per key at a time."""

    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 300.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}
        self._urgent: deque[Hashable] = deque()
        self._resync: deque[Hashable] = deque()
        self._ready = asyncio.Event()
        self._queued: dict[Hashable, bool] = {}  # key → in the urgent lane
        self._active: set[Hashable] = set()
        self._dirty: set[Hashable] = set()

    def add(self, key: Hashable) -> None:
        self._add(key, urgent=True)

    def _add(self, key: Hashable, *, urgent: bool) -> None:
        if key in self._active:
            self._dirty.add(key)
            return
        lane = self._queued.get(key)
        if lane is None:
            self._queued[key] = urgent
            (self._urgent if urgent else self._resync).append(key)
        elif urgent and not lane:
            # Promoted: its place in the resync lane is skipped when reached (get checks the lane).
            self._queued[key] = True
            self._urgent.append(key)
        self._ready.set()

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
        """A periodic resync's add, in the back lane: a key that is backing off keeps its timer."""
        if key not in self._failures:
            self._add(key, urgent=False)

    async def get(self) -> Hashable:
        while True:
            while self._urgent or self._resync:
                urgent = bool(self._urgent)
                key = (self._urgent if urgent else self._resync).popleft()
                lane = self._queued.get(key)
                if lane is None or lane != urgent:
                    continue  # promoted to the urgent lane, or already served from it
                del self._queued[key]
                self._active.add(key)
                return key
            self._ready.clear()
            await self._ready.wait()

    def done(self, key: Hashable) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._queued)
