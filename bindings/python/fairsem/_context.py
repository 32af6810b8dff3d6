"""The current tenant id, carried by a context variable (as in aio-fairshare)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

_tenant_id_var: ContextVar[str | None] = ContextVar("fairsem_tenant_id", default=None)


def set_tenant_id(tenant_id: str | None) -> None:
    """Set the tenant that acquire() uses when it is given none."""
    _tenant_id_var.set(tenant_id)


def get_tenant_id() -> str | None:
    """The tenant that acquire() uses when it is given none."""
    return _tenant_id_var.get()


@asynccontextmanager
async def tenant_context(tenant_id: str) -> AsyncIterator[None]:
    """Make `tenant_id` the current tenant for the enclosed block."""
    token = _tenant_id_var.set(tenant_id)
    try:
        yield
    finally:
        _tenant_id_var.reset(token)
