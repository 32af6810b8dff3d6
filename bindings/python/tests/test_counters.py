"""The pool's and each tenant's counters in stats(), as libfairsem counts them."""

import asyncio
import threading
import time

import pytest

from test_sync import PATIENCE, wait_until_queued

from fairsem import WAIT_BUCKET_BOUNDS_NS, Counters, FairShareSemaphore

MS = 1_000_000


def test_wait_bucket_bounds_are_1_2_5_steps_from_1us_to_100s():
    assert len(WAIT_BUCKET_BOUNDS_NS) == 26
    assert WAIT_BUCKET_BOUNDS_NS[:4] == (1_000, 2_000, 5_000, 10_000)
    assert WAIT_BUCKET_BOUNDS_NS[24] == 100_000_000_000
    assert WAIT_BUCKET_BOUNDS_NS[25] is None


def test_a_new_pool_has_counted_nothing():
    semaphore = FairShareSemaphore(max_slots=1)
    stats = semaphore.stats_sync()
    assert stats.counters == Counters()
    assert stats.oldest_wait_ns == 0


def test_grants_waits_timeouts_and_holds_are_counted():
    semaphore = FairShareSemaphore(max_slots=1)
    with semaphore.tenant_sync("a"), semaphore.tenant_sync("b"):
        for _ in range(3):
            semaphore.try_acquire("a").release()
        holder = semaphore.try_acquire("a")
        with pytest.raises(TimeoutError):
            with semaphore.acquire_sync("b", timeout=0.01):
                pass
        waited = []

        def wait_for_slot():
            started = time.monotonic_ns()
            with semaphore.acquire_sync("b"):
                waited.append(time.monotonic_ns() - started)

        thread = threading.Thread(target=wait_for_slot)
        thread.start()
        wait_until_queued(semaphore, 1)
        time.sleep(0.03)
        stats = semaphore.stats_sync()
        assert 30 * MS <= stats.oldest_wait_ns
        assert stats.tenants["b"].oldest_wait_ns == stats.oldest_wait_ns
        assert stats.tenants["a"].oldest_wait_ns == 0
        holder.release()
        thread.join(PATIENCE)
        stats = semaphore.stats_sync()
    pool, a, b = stats.counters, stats.tenants["a"].counters, stats.tenants["b"].counters
    assert (pool.grants_immediate, pool.grants_waited, pool.timeouts, pool.cancels) == (4, 1, 1, 0)
    assert (a.grants_immediate, a.grants_waited, a.timeouts) == (4, 0, 0)
    assert (b.grants_immediate, b.grants_waited, b.timeouts) == (0, 1, 1)
    assert sum(pool.wait_buckets) == pool.grants_waited == 1
    assert 30 * MS <= pool.wait_ns <= waited[0]
    assert pool.wait_buckets == b.wait_buckets
    # The coarse clock the holds are timed with ticks every few ms: the
    # 30 ms hold counts at least 20 ms.
    assert a.held_ns >= 20 * MS
    assert pool.held_ns == a.held_ns + b.held_ns
    assert stats.oldest_wait_ns == 0


@pytest.mark.asyncio
async def test_a_cancelled_acquisition_counts_as_a_cancel():
    semaphore = FairShareSemaphore(max_slots=1)
    await semaphore.register_tenant("a")
    await semaphore.register_tenant("b")
    holder = semaphore.try_acquire("a")

    async def acquire():
        async with semaphore.acquire("b"):
            pass

    task = asyncio.create_task(acquire())
    while (await semaphore.stats()).tenants["b"].waiting != 1:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    holder.release()
    stats = await semaphore.stats()
    assert stats.counters.cancels == 1
    assert stats.tenants["b"].counters.cancels == 1
    assert stats.counters.grants_waited == 0
