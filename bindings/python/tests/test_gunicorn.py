"""examples/gunicorn under Debian's gunicorn, sync and gthread workers.

A real pre-fork server on 127.0.0.1 (a port the kernel picked, handed to
gunicorn as a listening descriptor), FairShareMiddleware holding one slot of
a 4-slot pool per request: the pool limit holds across every worker, each
of two busy tenants gets its half, a streamed response holds its slot until
it is closed (a client that disconnects gives it back), an exception gives
it back, a wait past the timeout is a 503 with Retry-After, and a worker
SIGKILLed mid-request loses its slot to the others.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fairsem import FairShareSemaphore

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent
EXAMPLE = PACKAGE_ROOT.parent.parent / "examples" / "gunicorn"
SLOTS = 4
WAIT_S = 30  # the server's wait before a 503; far above any wait of a healthy run
# Tenant a sends from 5 clients, b from 3: while both wait, a fair pool
# gives each half of the slots, a first-come one gives a more.
CLIENTS = {"a": 5, "b": 3}
REQUESTS_PER_CLIENT = 12
WORK_MS = 40

WORKERS = {
    "sync": ["--worker-class", "sync", "--workers", "8"],
    "gthread": ["--worker-class", "gthread", "--workers", "2", "--threads", "8"],
}


def deadline(seconds):
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end


class Server:
    def __init__(self, pool_name, log_path, worker_args, wait_s=WAIT_S):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.set_inheritable(True)
        self.port = listener.getsockname()[1]
        env = dict(
            os.environ,
            FAIRSEM_POOL=pool_name,
            FAIRSEM_SLOTS=str(SLOTS),
            FAIRSEM_WAIT=str(wait_s),
            FAIRSEM_EXAMPLE_LOG=str(log_path),
            PYTHONPATH=f"{PACKAGE_ROOT}{os.pathsep}{EXAMPLE}",
        )
        self.output = open(log_path.with_suffix(".gunicorn"), "w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"fd://{listener.fileno()}", "--graceful-timeout", "2",
             "--timeout", "120", *worker_args, "app:application"],
            cwd=EXAMPLE, env=env, pass_fds=[listener.fileno()], stdout=self.output, stderr=subprocess.STDOUT,
        )
        listener.close()
        self.wait_ready()

    def wait_ready(self):
        """Poll /health until a worker answers (the listener queues
        connections from the start; an answer means a worker is up)."""
        more = deadline(60)
        while more():
            assert self.process.poll() is None, self.log()
            try:
                status, _, _ = self.get("/health", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"gunicorn never answered /health:\n{self.log()}")

    def get(self, path, tenant=None, timeout=60):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"X-Tenant": tenant} if tenant else {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def log(self):
        self.output.flush()
        self.output.seek(0)
        return self.output.read()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()


@pytest.fixture(params=sorted(WORKERS))
def server(request, pool_name, tmp_path):
    # The test's own handle: it creates the pool and watches it.
    pool = FairShareSemaphore(SLOTS, name=pool_name)
    log_path = tmp_path / "requests.log"
    srv = Server(pool_name, log_path, WORKERS[request.param])
    srv.pool = pool
    srv.log_path = log_path
    yield srv
    srv.stop()
    pool.close()


def events(log_path):
    rows = []
    for line in log_path.read_text().splitlines():
        event, tenant, pid, slot, ns = line.split()
        rows.append((int(ns), event, tenant, int(pid), int(slot)))
    return sorted(rows)


def until(predicate, what, seconds=30):
    more = deadline(seconds)
    while more():
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def idle(pool, what="every slot to come back"):
    """Wait until no slot is held.  A worker closes the response (and so
    gives its slot back) just after the client has read the last byte."""
    until(lambda: pool.stats_sync().total_active_slots == 0, what)


def test_two_tenants_share_the_pool_fairly_and_it_never_overflows(server):
    def client(tenant):
        statuses = []
        for _ in range(REQUESTS_PER_CLIENT):
            status, _, _ = server.get(f"/work?ms={WORK_MS}", tenant)
            statuses.append(status)
        return statuses

    with ThreadPoolExecutor(sum(CLIENTS.values())) as pool:
        futures = [pool.submit(client, t) for t, n in CLIENTS.items() for _ in range(n)]
        statuses = [s for f in futures for s in f.result()]
    assert statuses == [200] * len(statuses), server.log()

    rows = events(server.log_path)
    starts = {t: [ns for ns, e, tn, _, _ in rows if e == "start" and tn == t] for t in "ab"}
    assert all(len(starts[t]) == CLIENTS[t] * REQUESTS_PER_CLIENT for t in "ab")
    # Replay the log: the pool limit held across every worker, no slot index
    # was used twice at once, and while both tenants had a request waiting
    # at the middleware, each held its share (the slot-time of those moments
    # splits evenly: a first-come pool would give a, with more requests, more).
    in_use, holding, most = 0, set(), 0
    held = {"a": 0, "b": 0}
    waiting = {"a": 0, "b": 0}
    slot_time = {"a": 0, "b": 0}
    previous = rows[0][0]
    for ns, event, tenant, _, slot in rows:
        if waiting["a"] and waiting["b"]:
            for t in "ab":
                slot_time[t] += held[t] * (ns - previous)
        previous = ns
        if event == "ask":
            waiting[tenant] += 1
        elif event == "start":
            assert slot not in holding, f"slot {slot} used twice at once"
            holding.add(slot)
            waiting[tenant] -= 1
            held[tenant] += 1
            in_use += 1
            most = max(most, in_use)
        else:
            holding.discard(slot)
            held[tenant] -= 1
            in_use -= 1
    assert most <= SLOTS
    assert most == SLOTS, "the pool was never full: the test proves nothing"
    total = slot_time["a"] + slot_time["b"]
    assert total > 0, "the tenants never waited at once: the test proves nothing"
    share_b = slot_time["b"] / total
    print(f"\nslot-time share while both waited: a {1 - share_b:.3f}, b {share_b:.3f} "
          f"(b sent {CLIENTS['b']} of {sum(CLIENTS.values())} requests at a time; "
          f"both waited {total / 1e9 / SLOTS:.2f} s)")
    assert 0.4 <= share_b <= 0.6, f"b got {share_b:.2f} of the slot-time while both waited"
    idle(server.pool)


def test_a_streamed_response_holds_its_slot_until_closed(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("GET", "/stream?chunks=400", headers={"X-Tenant": "streamer"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.readline() == b"chunk 0\n"
    # Streaming: the slot is held by the worker (its handler returned long ago).
    assert server.pool.stats_sync().tenants["streamer"].active_slots == 1
    # The client goes away mid-stream: the server closes the response, the slot comes back.
    response.close()
    connection.close()
    idle(server.pool, "the streamed slot to come back")
    # A response streamed to its end gives it back too.
    status, _, body = server.get("/stream?chunks=3", "streamer")
    assert status == 200 and body == b"chunk 0\nchunk 1\nchunk 2\n"
    idle(server.pool, "the slot of a finished stream")


def test_an_exception_and_a_bad_tenant_leak_nothing(server):
    status, _, _ = server.get("/boom", "a")
    assert status == 500
    idle(server.pool, "the slot of a failed request")
    status, _, body = server.get("/work", None)
    assert status == 400 and b"X-Tenant" in body
    status, _, body = server.get("/work", "x" * 70)
    assert status == 400 and b"70 bytes" in body and b"63" in body
    assert server.pool.stats_sync().total_active_slots == 0


def test_a_killed_worker_loses_its_slot_to_the_others(server):
    results = []
    holder = threading.Thread(target=lambda: results.append(_get_or_error(server, "/hold", "doomed")))
    holder.start()
    until(lambda: server.log_path.exists() and "hold doomed" in server.log_path.read_text(), "the request to hold")
    pid = int(next(line for line in server.log_path.read_text().splitlines() if line.startswith("hold ")).split()[2])
    assert server.pool.stats_sync().tenants["doomed"].active_slots == 1
    os.kill(pid, signal.SIGKILL)
    holder.join(60)
    assert not holder.is_alive()
    # The dead worker's lease is gone: a waiter here takes all four slots.
    with server.pool.tenant_sync("checker"):
        slots = [server.pool.acquire_sync(timeout=30).__enter__() for _ in range(SLOTS)]
        for slot in slots:
            slot.release()
    # And the server goes on serving (gunicorn started a new worker).
    status, _, _ = server.get("/work?ms=1", "after")
    assert status == 200


def _get_or_error(server, path, tenant):
    try:
        return server.get(path, tenant)
    except (OSError, http.client.HTTPException) as error:
        return error


def test_a_wait_past_the_timeout_is_a_503_with_retry_after(pool_name, tmp_path):
    pool = FairShareSemaphore(SLOTS, name=pool_name)
    srv = Server(pool_name, tmp_path / "requests.log", WORKERS["sync"], wait_s=0.3)
    try:
        with pool.tenant_sync("hog"):
            held = [pool.try_acquire() for _ in range(SLOTS)]
            assert all(held)
            status, headers, body = srv.get("/work", "late")
            assert status == 503, body
            assert headers.get("Retry-After") == "1"
            for slot in held:
                slot.release()
        status, _, _ = srv.get("/work?ms=1", "late")
        assert status == 200
        idle(pool)
    finally:
        srv.stop()
        pool.close()
