"""FairShareASGIMiddleware, driven through the ASGI protocol itself."""

import asyncio

import pytest

from fairsem import FairShareSemaphore
from fairsem.wsgi import FairShareASGIMiddleware


async def call(app, tenant=None):
    sent = []
    scope = {"type": "http", "path": "/", "headers": [(b"x-tenant", tenant.encode())] if tenant else []}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.asyncio
async def test_asgi_holds_a_slot_per_request_and_answers_503_after_the_timeout():
    sem = FairShareSemaphore(max_slots=1)
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def backend(scope, receive, send):
        assert scope["state"]["fairsem.slot"].tenant_id == "a"
        inside.set()
        await leave.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = FairShareASGIMiddleware(backend, sem, timeout=0.2, retry_after=7)
    first = asyncio.create_task(call(app, "a"))
    await inside.wait()
    assert (await sem.stats()).total_active_slots == 1
    refused = await call(app, "b")
    assert refused[0]["status"] == 503 and (b"retry-after", b"7") in refused[0]["headers"]
    leave.set()
    assert (await first)[0]["status"] == 200
    assert (await sem.stats()).total_active_slots == 0
    assert (await call(app))[0]["status"] == 400
    sem.close()


@pytest.mark.asyncio
async def test_asgi_gives_the_slot_back_on_exception_and_cancellation():
    sem = FairShareSemaphore(max_slots=1)
    inside = asyncio.Event()

    async def failing(scope, receive, send):
        raise RuntimeError("boom")

    async def hanging(scope, receive, send):
        inside.set()
        await asyncio.sleep(3600)

    with pytest.raises(RuntimeError):
        await call(FairShareASGIMiddleware(failing, sem), "a")
    assert (await sem.stats()).total_active_slots == 0
    task = asyncio.create_task(call(FairShareASGIMiddleware(hanging, sem), "a"))
    await inside.wait()
    task.cancel()  # what a server does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = await sem.stats()
    assert stats.total_active_slots == 0 and stats.tenants == {}
    sem.close()
