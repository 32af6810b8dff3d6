"""The seed README's quick start, in three processes instead of three tasks.

Three requests, each in its own process, share 10 slots through one named
pool; each runs 6 one-second-ish jobs.  With three demanding tenants each gets
a share of 3, so at most 9 slots are busy and nobody is starved.
"""

import asyncio
import multiprocessing
import os
import time

import _local  # noqa: F401  (puts the fairsem package on sys.path)
from fairsem import FairShareSemaphore

POOL = f"/fairsem-quick-start-{os.getpid()}"


def process_request(semaphore: FairShareSemaphore, request_id: str, started: float) -> None:
    async def main() -> None:
        async with semaphore.tenant(request_id):
            async def job(n: int) -> None:
                async with semaphore.acquire() as slot:
                    print(f"{time.monotonic() - started:5.2f}s {request_id} (pid {os.getpid()}): "
                          f"job {n} on slot {slot.index}", flush=True)
                    await asyncio.sleep(0.3)

            await asyncio.gather(*[job(n) for n in range(6)])

    asyncio.run(main())


if __name__ == "__main__":
    semaphore = FairShareSemaphore(max_slots=10, name=POOL)
    try:
        started = time.monotonic()
        workers = [
            multiprocessing.Process(target=process_request, args=(semaphore, f"request-{i}", started))
            for i in (1, 2, 3)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        print("all requests done; slots free:", semaphore.stats_sync().available_slots)
    finally:
        FairShareSemaphore.unlink(POOL)
