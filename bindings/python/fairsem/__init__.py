"""fairsem: aio-fairshare's fair-share semaphore, shared by processes.

`from fairsem import FairShareSemaphore` is the one change from
`from aio_fairshare import FairShareSemaphore`.  The pool lives in POSIX
shared memory (libfairsem, loaded with ctypes), so tenants in different
processes share it fairly; a sync API serves threads and pre-fork servers.
"""

from ._context import get_tenant_id, set_tenant_id, tenant_context
from ._native import LIBRARY_PATH, VERSION, FairsemError
from .semaphore import (
    WAIT_BUCKET_BOUNDS_NS,
    Counters,
    FairShareSemaphore,
    PoolInUseError,
    ReapReport,
    SemaphoreStats,
    Slot,
    TenantContext,
    TenantHasActiveSlotsError,
    TenantNotRegisteredError,
    TenantStats,
    share_rule_name,
)

__version__ = VERSION
__all__ = [
    "WAIT_BUCKET_BOUNDS_NS",
    "Counters",
    "FairShareSemaphore",
    "FairsemError",
    "LIBRARY_PATH",
    "PoolInUseError",
    "ReapReport",
    "SemaphoreStats",
    "Slot",
    "TenantContext",
    "TenantHasActiveSlotsError",
    "TenantNotRegisteredError",
    "TenantStats",
    "get_tenant_id",
    "set_tenant_id",
    "share_rule_name",
    "tenant_context",
]
