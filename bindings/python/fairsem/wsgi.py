"""WSGI and ASGI middleware: one slot of a fairsem pool per request.

    app = FairShareMiddleware(app, FairShareSemaphore(8, name="/backend"),
                              tenant_header="X-Tenant", timeout=10)

Each request is counted against the tenant named by a header (or returned
by a callable of the environ / scope) and holds one slot from before the
application is called until the response is finished: for WSGI until the
server calls the response iterable's close(), so a streamed response keeps
its slot while it streams, and a client that disconnects, or an application
that raises, gives it back.  A request that waits longer than `timeout` is
answered 503 with Retry-After.  Tenant registrations are counted
(sem.tenant_sync blocks), so concurrent requests of one tenant in one
process share one registration.  A worker process that dies mid-request
loses its slot with its lease: any other process takes it back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import _native as N
from .semaphore import FairShareSemaphore, Slot, _BlockUsers

TenantOf = Callable[[Any], "str | None"]


def _header_key(header: str) -> str:
    """The WSGI environ key of an HTTP header: X-Tenant -> HTTP_X_TENANT."""
    return "HTTP_" + header.upper().replace("-", "_")


def _plain_response(status: str, text: str, extra: list[tuple[str, str]] | None = None):
    body = (text + "\n").encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    return status, headers + (extra or []), body


class _Admission:
    """What both middlewares share: naming the tenant and taking its slot."""

    def __init__(
        self,
        semaphore: FairShareSemaphore,
        tenant_header: str,
        tenant: TenantOf | None,
        timeout: float,
        retry_after: int,
    ) -> None:
        if timeout < 0:
            raise ValueError("timeout must be at least 0 seconds")
        self.semaphore = semaphore
        self.tenant_header = tenant_header
        self.tenant_of = tenant
        self.timeout = timeout
        self.retry_after = retry_after

    def refusal(self, tenant_id: Any):
        """A response for a request whose tenant cannot be used, or None."""
        if not isinstance(tenant_id, str) or not tenant_id:
            return _plain_response("400 Bad Request", f"no tenant: send a {self.tenant_header} header")
        size = len(tenant_id.encode())
        if size > N.TENANT_ID_MAX:
            return _plain_response(
                "400 Bad Request", f"tenant id is {size} bytes (UTF-8); the limit is {N.TENANT_ID_MAX}"
            )
        return None

    def busy(self):
        return _plain_response(
            "503 Service Unavailable",
            f"no slot within {self.timeout:g} s; retry later",
            [("Retry-After", str(self.retry_after))],
        )

    def enter(self, tenant_id: str) -> _BlockUsers:
        return self.semaphore._enter_tenant_block(tenant_id, 1)

    def leave(self, tenant_id: str, users: _BlockUsers) -> None:
        self.semaphore._leave_tenant_block(tenant_id, users)


class _HeldResponse:
    """The application's response iterable, holding the request's slot until
    the server closes it (PEP 3333: close() is called however the response
    ends: sent, client gone, or an error while sending)."""

    def __init__(self, result: Iterable[bytes], release: Callable[[], None]) -> None:
        self._result = result
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._give_back()

    def _give_back(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class _Middleware:
    def __init__(
        self,
        app: Callable[..., Any],
        semaphore: FairShareSemaphore,
        *,
        tenant_header: str = "X-Tenant",
        tenant: TenantOf | None = None,
        timeout: float = 30.0,
        retry_after: int = 1,
    ) -> None:
        self.app = app
        self._admission = _Admission(semaphore, tenant_header, tenant, timeout, retry_after)


class FairShareMiddleware(_Middleware):
    """WSGI middleware: one slot per request, fair among tenants.

    tenant_header: the request header naming the tenant (default X-Tenant);
    tenant: a callable(environ) -> tenant id (or None) instead of the header;
    timeout: seconds a request may wait for a slot before the 503;
    retry_after: the Retry-After value (seconds) of that 503.
    Requests without a usable tenant id get 400.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], semaphore: FairShareSemaphore, **options: Any) -> None:
        super().__init__(app, semaphore, **options)
        self._environ_key = _header_key(self._admission.tenant_header)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        admission = self._admission
        tenant_id = admission.tenant_of(environ) if admission.tenant_of else environ.get(self._environ_key)
        refusal = admission.refusal(tenant_id)
        if refusal is not None:
            return self._answer(start_response, refusal)
        users = admission.enter(tenant_id)
        try:
            slot = admission.semaphore.acquire_sync(tenant_id, admission.timeout).__enter__()
        except TimeoutError:
            admission.leave(tenant_id, users)
            return self._answer(start_response, admission.busy())
        except BaseException:
            admission.leave(tenant_id, users)
            raise

        def release() -> None:
            try:
                slot.release()
            finally:
                admission.leave(tenant_id, users)

        environ["fairsem.slot"] = slot
        try:
            result = self.app(environ, start_response)
        except BaseException:
            release()
            raise
        return _HeldResponse(result, release)

    @staticmethod
    def _answer(start_response: Callable[..., Any], response) -> list[bytes]:
        status, headers, body = response
        start_response(status, headers)
        return [body]


class FairShareASGIMiddleware(_Middleware):
    """ASGI middleware: one slot per HTTP request, held until the
    application returns (streamed responses included), given back on
    disconnect, cancellation or exception.  Arguments as for
    FairShareMiddleware; `tenant` is a callable(scope).  Other scope types
    (websocket, lifespan) pass through."""

    def __init__(self, app: Callable[..., Any], semaphore: FairShareSemaphore, **options: Any) -> None:
        super().__init__(app, semaphore, **options)
        self._header = self._admission.tenant_header.lower().encode()

    def _tenant_id(self, scope: dict[str, Any]) -> Any:
        if self._admission.tenant_of:
            return self._admission.tenant_of(scope)
        for name, value in scope.get("headers", ()):
            if name.lower() == self._header:
                return value.decode("latin-1")
        return None

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        admission = self._admission
        tenant_id = self._tenant_id(scope)
        refusal = admission.refusal(tenant_id)
        if refusal is not None:
            await self._answer(send, refusal)
            return
        users = admission.enter(tenant_id)
        try:
            try:
                slot: Slot = await asyncio.wait_for(admission.semaphore._acquire_async(tenant_id), admission.timeout)
            except asyncio.TimeoutError:
                await self._answer(send, admission.busy())
                return
            try:
                scope.setdefault("state", {})["fairsem.slot"] = slot
                await self.app(scope, receive, send)
            finally:
                slot.release()
        finally:
            admission.leave(tenant_id, users)

    @staticmethod
    async def _answer(send: Callable[..., Any], response) -> None:
        status, headers, body = response
        await send(
            {
                "type": "http.response.start",
                "status": int(status.split()[0]),
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body})
