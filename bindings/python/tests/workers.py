"""Functions run in child processes (importable by multiprocessing's spawn)."""

from __future__ import annotations

import asyncio
import os
import time

from fairsem import FairShareSemaphore


def priority_calculator(max_slots: int, demanding: int) -> int:
    return max_slots // demanding + 2


def hold_slots(semaphore: FairShareSemaphore, tenant_id: str, acquisitions: int, hold_seconds: float,
               results, until=None) -> None:
    """Acquire `acquisitions` times (async, all at once); report what was seen.
    With `until` (an Event), each of them acquires again and again until it
    is set, so the tenant stays demanding however long the test needs."""

    async def main() -> None:
        async with semaphore.tenant(tenant_id):
            async def one() -> int:
                while True:
                    async with semaphore.acquire() as slot:
                        seen = (await semaphore.stats()).total_active_slots
                        await asyncio.sleep(hold_seconds)
                    if until is None or until.is_set():
                        return slot.index, seen

            outcomes = await asyncio.gather(*[one() for _ in range(acquisitions)])
        results.put((os.getpid(), tenant_id, outcomes))

    asyncio.run(main())


def hold_until_killed(semaphore: FairShareSemaphore, tenant_id: str, slots: int, ready) -> None:
    with semaphore.tenant_sync(tenant_id):
        held = [semaphore.try_acquire() for _ in range(slots)]
        assert all(held)
        ready.set()
        time.sleep(60)


def custom_rule_share(name: str, results) -> None:
    semaphore = FairShareSemaphore(20, share_calculator=priority_calculator, name=name)
    with semaphore.tenant_sync("child"):
        slot = semaphore.try_acquire()
        results.put((semaphore.stats_sync().tenants["child"].share, slot is not None))
        slot.release()


def attach_until(name: str, ready, leave) -> None:
    """Attach to the named pool (holding a slot) until `leave` is set."""
    semaphore = FairShareSemaphore(2, name=name)
    with semaphore.tenant_sync("attached"):
        slot = semaphore.try_acquire()
        assert slot is not None
        ready.set()
        leave.wait(60)
        slot.release()
    semaphore.close()
