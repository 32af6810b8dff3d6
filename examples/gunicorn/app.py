"""A pre-fork WSGI server whose requests share one fairsem pool fairly.

    FAIRSEM_POOL=/backend FAIRSEM_SLOTS=4 gunicorn -w 8 app:application
    FAIRSEM_POOL=/backend gunicorn -k gthread -w 2 --threads 8 app:application

Every gunicorn worker (a forked process; with gthread, several threads)
opens the pool by name; FairShareMiddleware holds one of its slots per
request, for the tenant named by the X-Tenant header, so with both tenants
busy each gets half of the slots whatever the number of workers, and a
request that waits FAIRSEM_WAIT seconds (default 10) gets 503 with
Retry-After.  The slot stands for what the workers share downstream (a
database's connection limit, a licence, an API quota).

Endpoints (GET): /health (no slot); /work?ms=N (holds the slot N ms);
/stream?chunks=N (streams N chunks 50 ms apart, holding the slot until the
response is closed); /hold (holds it until the worker dies); /boom (raises).
With FAIRSEM_EXAMPLE_LOG set, /work and /hold append
"<ask|start|end|hold> <tenant> <pid> <slot> <CLOCK_MONOTONIC ns>" lines to it
(ask: the request reached the middleware and waits for its slot; slot -1).
"""

import os
import time
from urllib.parse import parse_qs

from fairsem import FairShareSemaphore
from fairsem.wsgi import FairShareMiddleware

POOL = os.environ.get("FAIRSEM_POOL", "/fairsem-gunicorn-example")
SLOTS = int(os.environ.get("FAIRSEM_SLOTS", "4"))
WAIT = float(os.environ.get("FAIRSEM_WAIT", "10"))
LOG = os.environ.get("FAIRSEM_EXAMPLE_LOG")

pool = FairShareSemaphore(SLOTS, name=POOL)


def log(event: str, environ: dict) -> None:
    if not LOG:
        return
    slot = environ.get("fairsem.slot")
    tenant, index = (slot.tenant_id, slot.index) if slot else (environ.get("HTTP_X_TENANT"), -1)
    line = f"{event} {tenant} {os.getpid()} {index} {time.monotonic_ns()}\n"
    # One write(2) on an O_APPEND file: lines of concurrent workers never mix.
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def text(start_response, body: str, status: str = "200 OK") -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


def backend(environ, start_response):
    """The application proper: runs with the request's slot held."""
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/work":
        log("start", environ)
        time.sleep(int(query.get("ms", ["20"])[0]) / 1000)
        log("end", environ)
        return text(start_response, f"slot {environ['fairsem.slot'].index}\n")
    if path == "/stream":
        chunks = int(query.get("chunks", ["10"])[0])
        start_response("200 OK", [("Content-Type", "text/plain")])

        def stream():
            for i in range(chunks):
                yield f"chunk {i}\n".encode()
                time.sleep(0.05)

        return stream()
    if path == "/hold":
        log("hold", environ)
        time.sleep(3600)
    if path == "/boom":
        raise RuntimeError("the application failed")
    return text(start_response, "not found\n", "404 Not Found")


fair = FairShareMiddleware(backend, pool, tenant_header="X-Tenant", timeout=WAIT)


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/health":
        return text(start_response, "ok\n")
    if environ.get("PATH_INFO") == "/work":
        log("ask", environ)
    return fair(environ, start_response)
