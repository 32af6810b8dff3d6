"""The seed README's shared API client, in a pre-fork server (os.fork).

The API (a local http.server on 127.0.0.1, started here) allows 10
concurrent requests.  The master creates a private pool of 10 slots before
forking, as a pre-fork server (gunicorn, uwsgi) does; 4 forked workers serve
two internal services, each worker calling the API from a few threads with
the blocking API.  service-a has 24 calls to make, service-b 8: while both
demand, neither holds more than 5 connections.
"""

import os
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import _local  # also puts the fairsem package on sys.path
from fairsem import FairShareSemaphore

CALLS = {"service-a": 24, "service-b": 8}
WORKERS = [("service-a", 0), ("service-a", 1), ("service-b", 0), ("service-b", 1)]
THREADS_PER_WORKER = 6


def serve(api: FairShareSemaphore, service: str, part: int, base_url: str, started: float) -> None:
    """One worker process: its share of `service`'s calls, from a thread pool."""
    endpoints = [f"/{service}/{i}" for i in range(CALLS[service]) if i % 2 == part]
    printing = threading.Lock()

    def call(endpoint: str) -> None:
        with api.acquire_sync(service) as connection:
            held = {t: s.active_slots for t, s in sorted(api.stats_sync().tenants.items())}
            with printing:
                print(f"{time.monotonic() - started:5.2f}s worker {os.getpid()} {service} "
                      f"conn {connection.index} {endpoint}  held: {held}", flush=True)
            urllib.request.urlopen(base_url + endpoint).read()

    with api.tenant_sync(service), ThreadPoolExecutor(THREADS_PER_WORKER) as threads:
        list(threads.map(call, endpoints))


if __name__ == "__main__":
    server, url = _local.start_server()
    api = FairShareSemaphore(max_slots=10)  # private: shared with the workers forked below
    started = time.monotonic()
    children = []
    for service, part in WORKERS:
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                serve(api, service, part, url, started)
                status = 0
            finally:
                os._exit(status)
        children.append(pid)
    failed = [pid for pid in children if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0]
    server.shutdown()
    print(f"{len(children) - len(failed)} workers done in {time.monotonic() - started:.2f}s; "
          f"free connections: {api.stats_sync().available_slots}")
    raise SystemExit(1 if failed else 0)
