"""Two scraping requests share 10 "tabs" fairly, across a pool of processes.

A multiprocessing pool of 6 scraper processes fetches pages from a local
http.server (127.0.0.1, started here).  Request A queues 30 pages; 0.3 s later
request B queues 6.  A first takes all 10 tabs; once B demands, the next tabs
A gives back go to B until each holds 5.  When B is done A has all 10 again.
"""

import asyncio
import multiprocessing
import os
import time
import urllib.request

import _local  # also puts the fairsem package on sys.path
from fairsem import FairShareSemaphore

POOL = f"/fairsem-scraper-{os.getpid()}"
SCRAPER_PROCESSES = 6

# Set in each scraper process by init_scraper.
tabs: FairShareSemaphore | None = None
base_url = ""
started = 0.0


def init_scraper(pool: str, url: str, start: float) -> None:
    global tabs, base_url, started
    tabs = FairShareSemaphore(max_slots=10, name=pool)
    base_url, started = url, start


def scrape(request_id: str, pages: list[str]) -> list[tuple[str, int, float]]:
    """Fetch `pages` for one request in this process, one task per page."""

    async def main() -> list[tuple[str, int, float]]:
        async with tabs.tenant(request_id):
            async def fetch(page: str) -> tuple[str, int, float]:
                async with tabs.acquire() as tab:
                    got_it = time.monotonic() - started
                    in_use = (await tabs.stats()).tenants
                    shares = {t: s.active_slots for t, s in sorted(in_use.items())}
                    print(f"{got_it:5.2f}s {request_id} tab {tab.index} {page}  held: {shares}", flush=True)
                    await asyncio.to_thread(lambda: urllib.request.urlopen(base_url + page).read())
                    return page, tab.index, got_it

            return await asyncio.gather(*[fetch(p) for p in pages])

    return asyncio.run(main())


def chunks(pages: list[str], n: int) -> list[list[str]]:
    return [pages[i::n] for i in range(n)]


if __name__ == "__main__":
    server, url = _local.start_server()
    FairShareSemaphore(max_slots=10, name=POOL)  # create the pool the scrapers open
    try:
        start = time.monotonic()
        with multiprocessing.Pool(SCRAPER_PROCESSES, init_scraper, (POOL, url, start)) as pool:
            a = pool.starmap_async(scrape, [("A", c) for c in chunks([f"/a/{i}" for i in range(30)], 3)])
            time.sleep(0.3)
            b = pool.starmap_async(scrape, [("B", c) for c in chunks([f"/b/{i}" for i in range(6)], 2)])
            b_results = [r for chunk in b.get(20) for r in chunk]
            a_results = [r for chunk in a.get(20) for r in chunk]
        b_wait = max(t for _, _, t in b_results) - 0.3
        print(f"A fetched {len(a_results)} pages, B fetched {len(b_results)}; "
              f"B's last page got a tab {b_wait:.2f}s after B arrived")
    finally:
        FairShareSemaphore.unlink(POOL)
        server.shutdown()
