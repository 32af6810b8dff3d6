"""tenant()/tenant_sync() blocks are counted: concurrent blocks of one id
never unregister each other; the last one out ends the registration."""

import asyncio
import random
import threading

import pytest

from fairsem import FairShareSemaphore, TenantNotRegisteredError

THREADS = 8
TENANTS = ("a", "b")
REQUESTS = 300


def test_threads_in_tenant_sync_blocks_never_unregister_each_other():
    semaphore = FairShareSemaphore(max_slots=3)
    errors = []
    served = {tenant: 0 for tenant in TENANTS}
    count_lock = threading.Lock()
    start = threading.Barrier(THREADS * len(TENANTS))

    def worker(tenant_id):
        start.wait()
        for _ in range(REQUESTS):
            try:
                with semaphore.tenant_sync(tenant_id):
                    with semaphore.acquire_sync():
                        with count_lock:
                            served[tenant_id] += 1
            except Exception as error:  # counted by the assertion below
                errors.append(error)

    threads = [threading.Thread(target=worker, args=(t,)) for t in TENANTS for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert served == {tenant: THREADS * REQUESTS for tenant in TENANTS}
    # The last block out of each id ended its registration.
    stats = semaphore.stats_sync()
    assert stats.tenants == {} and stats.available_slots == 3
    semaphore.close()


@pytest.mark.asyncio
async def test_tasks_in_tenant_blocks_never_unregister_each_other():
    semaphore = FairShareSemaphore(max_slots=3)
    served = {tenant: 0 for tenant in TENANTS}

    pauses = random.Random(13)

    async def pause():
        # Other tasks enter and leave their blocks meanwhile, in no fixed order.
        for _ in range(pauses.randrange(3)):
            await asyncio.sleep(0)

    async def worker(tenant_id):
        for _ in range(REQUESTS):
            async with semaphore.tenant(tenant_id):
                await pause()
                async with semaphore.acquire():
                    served[tenant_id] += 1
                    await pause()

    results = await asyncio.gather(
        *(worker(t) for t in TENANTS for _ in range(THREADS)), return_exceptions=True
    )
    assert [r for r in results if r is not None] == []
    assert served == {tenant: THREADS * REQUESTS for tenant in TENANTS}
    stats = await semaphore.stats()
    assert stats.tenants == {} and stats.available_slots == 3
    semaphore.close()


def test_registration_lasts_until_the_last_block_leaves():
    semaphore = FairShareSemaphore(max_slots=2)
    outer = semaphore.tenant_sync("t")
    inner = semaphore.tenant_sync("t")
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)  # another block is still inside
    with semaphore.acquire_sync("t"):
        assert "t" in semaphore.stats_sync().tenants
    inner.__exit__(None, None, None)  # the last one out unregisters
    assert "t" not in semaphore.stats_sync().tenants
    with pytest.raises(TenantNotRegisteredError):
        semaphore.try_acquire("t")
    semaphore.close()


def test_explicit_unregister_still_ends_the_registration_at_once():
    semaphore = FairShareSemaphore(max_slots=2)
    stale = semaphore.tenant_sync("t")
    stale.__enter__()
    semaphore.unregister_tenant_sync("t")
    with pytest.raises(TenantNotRegisteredError):
        semaphore.try_acquire("t")
    # A block that starts afterwards counts afresh: the block the explicit
    # unregister ended does not end the new registration when it leaves.
    with semaphore.tenant_sync("t"):
        stale.__exit__(None, None, None)
        slot = semaphore.try_acquire("t")
        assert slot is not None
        slot.release()
    assert "t" not in semaphore.stats_sync().tenants
    semaphore.close()


def test_a_too_long_tenant_id_names_its_length_and_the_limit():
    semaphore = FairShareSemaphore(max_slots=1)
    with pytest.raises(ValueError, match=r"is 70 bytes \(UTF-8\); the limit is 63"):
        with semaphore.tenant_sync("x" * 70):
            pass
    with pytest.raises(ValueError, match=r"is 64 bytes \(UTF-8\); the limit is 63"):
        semaphore.register_tenant_sync("é" * 32)
    semaphore.close()
