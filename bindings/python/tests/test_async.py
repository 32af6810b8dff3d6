"""The behaviours of aio-fairshare's README, through the async API."""

import asyncio
import time

import pytest

from fairsem import (
    Counters,
    FairShareSemaphore,
    SemaphoreStats,
    TenantHasActiveSlotsError,
    TenantNotRegisteredError,
    TenantStats,
    get_tenant_id,
    set_tenant_id,
    tenant_context,
)

pytestmark = pytest.mark.asyncio


def take_all(semaphore, tenant_id):
    """Every slot `tenant_id` may take right now."""
    slots = []
    while (slot := semaphore.try_acquire(tenant_id)) is not None:
        slots.append(slot)
    return slots


# How long a test waits for something that must happen: a busy machine is
# slow, not wrong, so this only bounds how long a broken test takes to fail.
PATIENCE = 60


async def queued(semaphore, waiting):
    """Wait until `waiting` acquisitions are queued in the pool."""

    async def poll():
        while sum(t.waiting for t in (await semaphore.stats()).tenants.values()) != waiting:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), PATIENCE)


@pytest.mark.parametrize("demanding, share", [(1, 10), (2, 5), (3, 3), (5, 2), (10, 1)])
async def test_share_table(demanding, share):
    semaphore = FairShareSemaphore(max_slots=10)
    tenants = [f"t{i}" for i in range(demanding)]
    for tenant_id in tenants:
        await semaphore.register_tenant(tenant_id)
    first = [semaphore.try_acquire(tenant_id) for tenant_id in tenants]
    stats = await semaphore.stats()
    assert stats.demanding_tenants == demanding
    assert {t.share for t in stats.tenants.values()} == {share}
    # The share is enforced, not only reported.
    extra = take_all(semaphore, tenants[0])
    assert 1 + len(extra) == share
    for slot in first + extra:
        slot.release()


async def test_idle_registered_tenants_do_not_count():
    semaphore = FairShareSemaphore(max_slots=10)
    for tenant_id in ("busy", "idle-1", "idle-2"):
        await semaphore.register_tenant(tenant_id)
    slots = take_all(semaphore, "busy")
    stats = await semaphore.stats()
    assert len(slots) == 10
    assert stats.active_tenants == 3
    assert stats.demanding_tenants == 1
    for slot in slots:
        slot.release()


async def test_a_waiting_tenant_is_demanding_and_gets_the_next_slot():
    semaphore = FairShareSemaphore(max_slots=10)
    await semaphore.register_tenant("a")
    await semaphore.register_tenant("b")
    held_by_a = take_all(semaphore, "a")
    assert len(held_by_a) == 10

    async def b_acquires():
        async with semaphore.acquire("b") as slot:
            return slot.index

    waiter = asyncio.create_task(b_acquires())
    await queued(semaphore, 1)
    stats = await semaphore.stats()
    assert stats.demanding_tenants == 2
    assert stats.tenants["b"].waiting == 1
    assert stats.tenants["a"].share == 5
    assert not waiter.done()
    released = held_by_a.pop()
    released.release()
    assert await asyncio.wait_for(waiter, PATIENCE) == released.index
    for slot in held_by_a:
        slot.release()


async def test_over_share_tenant_is_held_to_its_share_and_shares_grow_back():
    semaphore = FairShareSemaphore(max_slots=10)
    await semaphore.register_tenant("a")
    await semaphore.register_tenant("b")
    held_by_b = semaphore.try_acquire("b")
    held_by_a = take_all(semaphore, "a")
    assert len(held_by_a) == 5
    assert (await semaphore.stats()).available_slots == 4
    held_by_b.release()  # b is idle again: a's share is back to 10
    held_by_a += take_all(semaphore, "a")
    assert len(held_by_a) == 10
    for slot in held_by_a:
        slot.release()


async def test_fifo_among_eligible_waiters():
    semaphore = FairShareSemaphore(max_slots=1)
    order = []
    tenants = [f"t{i}" for i in range(6)]
    for tenant_id in tenants:
        await semaphore.register_tenant(tenant_id)
    holder = semaphore.try_acquire(tenants[0])

    async def worker(tenant_id):
        async with semaphore.acquire(tenant_id):
            order.append(tenant_id)

    tasks = []
    for tenant_id in tenants[1:]:
        tasks.append(asyncio.create_task(worker(tenant_id)))
        await queued(semaphore, len(tasks))  # queue them in a known order
    holder.release()
    await asyncio.wait_for(asyncio.gather(*tasks), PATIENCE)
    assert order == tenants[1:]


async def test_cancelling_a_waiter_leaks_nothing():
    semaphore = FairShareSemaphore(max_slots=1)
    async with semaphore.tenant("a"):
        holder = semaphore.try_acquire()
        waiter = asyncio.create_task(semaphore.acquire().__aenter__())
        await queued(semaphore, 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        stats = await semaphore.stats()
        assert stats.tenants["a"].waiting == 0
        holder.release()
        assert (await semaphore.stats()).available_slots == 1


async def test_cancel_racing_a_grant_gives_the_slot_back():
    semaphore = FairShareSemaphore(max_slots=1)
    await semaphore.register_tenant("a")
    for _ in range(50):
        holder = semaphore.try_acquire("a")

        async def acquire_and_keep():
            async with semaphore.acquire("a"):
                await asyncio.sleep(10)

        waiter = asyncio.create_task(acquire_and_keep())
        await queued(semaphore, 1)
        holder.release()  # grants the waiter inside the C library...
        waiter.cancel()  # ...which is cancelled before it sees the grant
        with pytest.raises(asyncio.CancelledError):
            await waiter
        stats = await semaphore.stats()
        assert (stats.available_slots, stats.tenants["a"].waiting) == (1, 0)


async def test_cancellation_storm_leaves_the_pool_whole():
    semaphore = FairShareSemaphore(max_slots=3)

    async def user(tenant_id):
        async with semaphore.tenant(tenant_id):
            for _ in range(20):
                async with semaphore.acquire():
                    await asyncio.sleep(0.001)

    tasks = [asyncio.create_task(user(f"t{i % 4}-{i}")) for i in range(12)]
    await asyncio.sleep(0.03)
    for task in tasks[::2]:
        task.cancel()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), PATIENCE)
    stats = await semaphore.stats()
    assert (stats.available_slots, stats.total_active_slots, stats.demanding_tenants) == (3, 0, 0)
    assert stats.active_tenants == 0


async def test_deferred_unregistration():
    semaphore = FairShareSemaphore(max_slots=2)
    await semaphore.register_tenant("a")
    slot = semaphore.try_acquire("a")
    await semaphore.unregister_tenant("a")
    with pytest.raises(TenantNotRegisteredError):
        async with semaphore.acquire("a"):
            pass
    # As in aio-fairshare: the closing tenant is gone from the stats and from
    # the demanding count at once; its slot stays in use until released.
    stats = await semaphore.stats()
    assert "a" not in stats.tenants
    assert (stats.demanding_tenants, stats.available_slots) == (0, 1)
    slot.release()
    stats = await semaphore.stats()
    assert "a" not in stats.tenants
    assert stats.available_slots == 2


async def test_deferred_unregistration_still_serves_queued_waiters():
    semaphore = FairShareSemaphore(max_slots=1)
    await semaphore.register_tenant("a")
    holder = semaphore.try_acquire("a")

    async def wait_for_slot():
        async with semaphore.acquire("a") as slot:
            return slot.index

    waiter = asyncio.create_task(wait_for_slot())
    await queued(semaphore, 1)
    await semaphore.unregister_tenant("a")
    holder.release()
    assert await asyncio.wait_for(waiter, PATIENCE) == 0
    assert (await semaphore.stats()).tenants == {}


async def test_forced_unregistration_fails_waiters_and_keeps_held_slots_valid():
    semaphore = FairShareSemaphore(max_slots=1)
    await semaphore.register_tenant("a")
    holder = semaphore.try_acquire("a")
    waiter = asyncio.create_task(semaphore.acquire("a").__aenter__())
    await queued(semaphore, 1)
    await semaphore.unregister_tenant("a", force=True)
    with pytest.raises(TenantNotRegisteredError):
        await asyncio.wait_for(waiter, PATIENCE)
    stats = await semaphore.stats()
    assert "a" not in stats.tenants
    assert (stats.demanding_tenants, stats.available_slots) == (0, 0)
    holder.release()
    stats = await semaphore.stats()
    assert (stats.available_slots, stats.tenants) == (1, {})


async def test_strict_unregistration_refuses_a_busy_tenant():
    semaphore = FairShareSemaphore(max_slots=2)
    await semaphore.register_tenant("a")
    slot = semaphore.try_acquire("a")
    with pytest.raises(TenantHasActiveSlotsError):
        await semaphore.unregister_tenant("a", strict=True)
    async with semaphore.acquire("a"):  # still registered
        pass
    slot.release()
    await semaphore.unregister_tenant("a", strict=True)
    assert (await semaphore.stats()).active_tenants == 0


async def test_unregistering_an_unknown_tenant_is_ignored():
    semaphore = FairShareSemaphore(max_slots=2)
    await semaphore.unregister_tenant("nobody")


async def test_reregistering_is_idempotent():
    semaphore = FairShareSemaphore(max_slots=2)
    await semaphore.register_tenant("a")
    await semaphore.register_tenant("a")
    assert (await semaphore.stats()).active_tenants == 1
    await semaphore.unregister_tenant("a")
    assert (await semaphore.stats()).active_tenants == 0


async def test_context_variables():
    semaphore = FairShareSemaphore(max_slots=2)
    assert get_tenant_id() is None
    async with tenant_context("ctx"):
        assert get_tenant_id() == "ctx"
    assert get_tenant_id() is None
    await semaphore.register_tenant("direct")
    set_tenant_id("direct")
    async with semaphore.acquire() as slot:
        assert slot.tenant_id == "direct"
    set_tenant_id(None)


async def test_tenant_context_sets_the_current_tenant_per_task():
    semaphore = FairShareSemaphore(max_slots=4)
    seen = {}

    async def request(tenant_id):
        async with semaphore.tenant(tenant_id) as context:
            await asyncio.sleep(0.01)  # interleave with the other task
            assert get_tenant_id() == tenant_id
            async with semaphore.acquire() as slot:
                seen[tenant_id] = slot.tenant_id
            async with context.acquire() as slot:
                assert slot.tenant_id == tenant_id
        assert get_tenant_id() is None

    await asyncio.gather(request("r1"), request("r2"))
    assert seen == {"r1": "r1", "r2": "r2"}
    assert (await semaphore.stats()).active_tenants == 0


async def test_errors():
    with pytest.raises(ValueError):
        FairShareSemaphore(max_slots=0)
    with pytest.raises(ValueError):
        FairShareSemaphore(max_slots=10, min_share=0)
    semaphore = FairShareSemaphore(max_slots=2)
    with pytest.raises(TenantNotRegisteredError):
        async with semaphore.acquire():  # no tenant at all
            pass
    with pytest.raises(TenantNotRegisteredError):
        async with semaphore.acquire("stranger"):
            pass
    with pytest.raises(ValueError):
        await semaphore.register_tenant("")
    with pytest.raises(ValueError):
        await semaphore.register_tenant("x" * 64)
    with pytest.raises(ValueError):
        await semaphore.register_tenant("a", weight=0)


async def test_min_share():
    semaphore = FairShareSemaphore(max_slots=10, min_share=3)
    tenants = [f"t{i}" for i in range(5)]
    for tenant_id in tenants:
        await semaphore.register_tenant(tenant_id)
    first = [semaphore.try_acquire(t) for t in tenants]
    stats = await semaphore.stats()
    assert {t.share for t in stats.tenants.values()} == {3}  # 10 // 5 = 2, raised to 3
    extra = take_all(semaphore, "t0")
    assert len(extra) == 2
    for slot in first + extra:
        slot.release()


def priority_calculator(max_slots: int, num_demanding_tenants: int) -> int:
    """The seed README's example: a bit more than an equal share."""
    return max_slots // num_demanding_tenants + 2


async def test_custom_share_calculator():
    semaphore = FairShareSemaphore(max_slots=20, share_calculator=priority_calculator)
    await semaphore.register_tenant("a")
    await semaphore.register_tenant("b")
    held_by_b = semaphore.try_acquire("b")
    held_by_a = take_all(semaphore, "a")
    assert len(held_by_a) == 12
    assert (await semaphore.stats()).tenants["b"].share == 12
    for slot in held_by_a + [held_by_b]:
        slot.release()


async def test_weights():
    semaphore = FairShareSemaphore(max_slots=10)
    await semaphore.register_tenant("heavy", weight=3)
    await semaphore.register_tenant("light")
    held_by_light = semaphore.try_acquire("light")
    held_by_heavy = take_all(semaphore, "heavy")
    assert len(held_by_heavy) == 7  # 10 * 3 / 4
    assert (await semaphore.stats()).tenants["heavy"].weight == 3
    for slot in held_by_heavy + [held_by_light]:
        slot.release()


async def test_work_conserving_lends_idle_slots():
    semaphore = FairShareSemaphore(max_slots=10, work_conserving=True)
    await semaphore.register_tenant("a")
    await semaphore.register_tenant("b")
    held_by_b = semaphore.try_acquire("b")
    held_by_a = take_all(semaphore, "a")
    assert len(held_by_a) == 9
    for slot in held_by_a + [held_by_b]:
        slot.release()


async def test_concurrency_fills_but_never_exceeds_the_pool():
    semaphore = FairShareSemaphore(max_slots=10)
    in_use = {"a": 0, "b": 0}
    most_in_use = 0

    async def work(tenant_id):
        nonlocal most_in_use
        async with semaphore.acquire(tenant_id) as slot:
            assert 0 <= slot.index < 10
            in_use[tenant_id] += 1
            most_in_use = max(most_in_use, sum(in_use.values()))
            await asyncio.sleep(0.002)
            in_use[tenant_id] -= 1

    async with semaphore.tenant("a"), semaphore.tenant("b"):
        await asyncio.gather(*[work("a") for _ in range(150)], *[work("b") for _ in range(150)])
    assert most_in_use == 10
    stats = await semaphore.stats()
    assert (stats.available_slots, stats.total_active_slots) == (10, 0)


async def test_slot_indexes_are_distinct():
    semaphore = FairShareSemaphore(max_slots=4)
    await semaphore.register_tenant("a")
    slots = take_all(semaphore, "a")
    assert sorted(slot.index for slot in slots) == [0, 1, 2, 3]
    for slot in slots:
        slot.release()
    slots[0].release()  # a second release is a no-op


async def test_stats_shape():
    semaphore = FairShareSemaphore(max_slots=3)
    async with semaphore.tenant("a"):
        async with semaphore.acquire():
            stats = await semaphore.stats()
    assert stats == SemaphoreStats(
        max_slots=3,
        active_tenants=1,
        demanding_tenants=1,
        total_active_slots=1,
        available_slots=2,
        tenants={"a": TenantStats(tenant_id="a", active_slots=1, share=3, waiting=0, weight=1,
                                  counters=Counters(grants_immediate=1))},
        counters=Counters(grants_immediate=1),  # the hold has not ended: no held_ns yet
    )


async def test_waiting_does_not_block_the_event_loop():
    semaphore = FairShareSemaphore(max_slots=1)
    await semaphore.register_tenant("a")
    holder = semaphore.try_acquire("a")
    waiters = [asyncio.create_task(semaphore.acquire("a").__aenter__()) for _ in range(100)]
    # A loop blocked by a waiting acquisition would never see them all queued.
    await queued(semaphore, 100)
    holder.release()
    for waiter in waiters:
        (await asyncio.wait_for(waiter, PATIENCE)).release()


async def test_named_pool_settings_must_match(pool_name):
    semaphore = FairShareSemaphore(max_slots=4, name=pool_name)
    same = FairShareSemaphore(max_slots=4, name=pool_name)
    with pytest.raises(ValueError, match="max_slots"):
        FairShareSemaphore(max_slots=5, name=pool_name)
    with pytest.raises(ValueError, match="min_share"):
        FairShareSemaphore(max_slots=4, min_share=2, name=pool_name)
    with pytest.raises(ValueError, match="work_conserving"):
        FairShareSemaphore(max_slots=4, name=pool_name, work_conserving=True)
    with pytest.raises(ValueError, match="strict_fifo"):
        FairShareSemaphore(max_slots=4, name=pool_name, strict_fifo=True)
    with pytest.raises(ValueError, match="share rule"):
        FairShareSemaphore(max_slots=4, name=pool_name, share_calculator=priority_calculator)
    await same.register_tenant("x")
    assert (await semaphore.stats()).active_tenants == 1
    same.close()
    semaphore.close()


async def test_close_fails_waiters_and_gives_everything_back(pool_name):
    semaphore = FairShareSemaphore(max_slots=1, name=pool_name)
    observer = FairShareSemaphore(max_slots=1, name=pool_name)
    await semaphore.register_tenant("a")
    holder = semaphore.try_acquire("a")
    waiter = asyncio.create_task(semaphore.acquire("a").__aenter__())
    await queued(semaphore, 1)
    semaphore.close()
    with pytest.raises(RuntimeError, match="closed"):
        await waiter
    holder.release()  # no-op: close gave it back
    stats = await observer.stats()
    assert (stats.available_slots, stats.active_tenants) == (1, 0)
    observer.close()


async def test_uncontended_acquire_time_is_printed():
    semaphore = FairShareSemaphore(max_slots=10)
    rounds = 20000
    async with semaphore.tenant("a"):
        started = time.perf_counter()
        for _ in range(rounds):
            async with semaphore.acquire():
                pass
        elapsed = time.perf_counter() - started
    print(f"uncontended `async with acquire()`: {elapsed / rounds * 1e6:.2f} us per acquire+release")


def failing_calculator(max_slots: int, num_demanding_tenants: int) -> int:
    raise RuntimeError("calculator bug")


async def test_a_failing_calculator_counts_as_min_share(caplog):
    semaphore = FairShareSemaphore(max_slots=10, min_share=2, share_calculator=failing_calculator)
    await semaphore.register_tenant("a")
    slots = take_all(semaphore, "a")
    assert len(slots) == 2
    assert (await semaphore.stats()).tenants["a"].share == 2
    assert "calculator bug" in caplog.text
    for slot in slots:
        slot.release()


async def test_registering_again_with_another_weight_changes_it():
    semaphore = FairShareSemaphore(max_slots=10)
    await semaphore.register_tenant("a")
    held = semaphore.try_acquire("a")
    await semaphore.register_tenant("a", weight=4)
    assert (await semaphore.stats()).tenants["a"].weight == 4
    held.release()  # through the old registration, which then ends
    stats = await semaphore.stats()
    assert (stats.active_tenants, stats.available_slots) == (1, 10)
