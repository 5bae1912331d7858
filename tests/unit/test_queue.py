"""The work queue's per-object backoff (controller-runtime's item exponential failure rate limiter)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from slogate.controller.queue import WorkQueue


def test_failures_back_off_exponentially_per_key_and_a_success_resets():
    q = WorkQueue(base_delay=0.005, max_delay=300.0)
    delays = [q.backoff_delay("a")]
    for _ in range(20):
        q._failures["a"] = q._failures.get("a", 0) + 1
        delays.append(q.backoff_delay("a"))
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 300.0 and all(b >= a for a, b in itertools.pairwise(delays))
    assert q.backoff_delay("b") == 0.005  # one failing key never delays another
    q.forget("a")
    assert q.backoff_delay("a") == 0.005 and q.failures("a") == 0


def test_rate_limited_adds_requeue_after_the_backoff_or_retry_after():
    async def run() -> list[tuple[str, float]]:
        q = WorkQueue(base_delay=0.01, max_delay=1.0)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        seen = []
        assert q.add_rate_limited("k") == 0.01
        key = await q.get()
        seen.append((key, loop.time() - t0))
        q.done(key)
        assert q.add_rate_limited("k") == 0.02
        assert q.add_rate_limited("r", at_least=0.2) == 0.2  # a server's Retry-After wins when longer
        for _ in range(2):
            key = await q.get()
            seen.append((key, loop.time() - t0))
            q.done(key)
        return seen

    seen = asyncio.run(run())
    assert [k for k, _ in seen] == ["k", "k", "r"]
    assert seen[0][1] >= 0.009 and seen[2][1] >= 0.19


def test_a_resync_leaves_a_backing_off_key_to_its_timer():
    async def run() -> int:
        q = WorkQueue(base_delay=10.0)
        q.add_rate_limited("bad")  # retried in 10 s
        q.add_resync("bad")
        q.add_resync("good")
        return len(q)

    assert asyncio.run(run()) == 1  # only "good" is queued now


@pytest.mark.parametrize("n", [0, 1, 5])
def test_forget_after_a_success_clears_the_count(n):
    q = WorkQueue()
    q._failures["x"] = n
    q.forget("x")
    assert q.failures("x") == 0


def drain(q: WorkQueue) -> list:
    async def run() -> list:
        out = []
        while len(q):
            key = await q.get()
            out.append(key)
            q.done(key)
        return out

    return asyncio.run(run())


def test_an_event_is_served_before_a_whole_resync():
    """1,000 keys re-planned by a resync, then one changes: it is next, not 1,001st."""
    q = WorkQueue()
    for i in range(1000):
        q.add_resync(("ns", f"m-{i}"))
    q.add(("ns", "probe"))
    order = drain(q)
    assert order[0] == ("ns", "probe") and len(order) == 1001


def test_a_resync_queued_key_an_event_adds_moves_to_the_front_once():
    q = WorkQueue()
    for name in ("a", "b", "c"):
        q.add_resync(name)
    q.add("c")  # a watch event for a key the resync already queued
    q.add_resync("c")  # and the resync again: still queued once, in the front lane
    assert len(q) == 3
    assert drain(q) == ["c", "a", "b"]


def test_a_key_being_reconciled_is_queued_again_after_its_pass_in_either_lane():
    async def run() -> list:
        q = WorkQueue()
        q.add_resync("a")
        key = await q.get()
        q.add_resync("a")  # dirty while active: served again after done
        q.done(key)
        return [key, await q.get()]

    assert asyncio.run(run()) == ["a", "a"]
