"""FairShareSemaphore: aio-fairshare's API over libfairsem's shared-memory pool."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _native as N
from ._context import _tenant_id_var

lib = N.lib
logger = logging.getLogger("fairsem")

ShareCalculator = Callable[[int, int], int]

# A creator that died between creating and initialising a pool leaves it
# unusable (FAIRSEM_EINIT); a live one finishes within microseconds.
INIT_WAIT_SECONDS = 1.0
EVENTS_BATCH = 64
# Capacities of a pool this binding creates.  aio-fairshare has no limits and
# asyncio programs readily start thousands of waiting tasks, so the wait
# queue gets the C library's maximum rather than its default of 256.
DEFAULT_MAX_TENANTS = 1024
DEFAULT_MAX_WAITERS = N.MAX_WAITERS_LIMIT
DEFAULT_MAX_PROCS = 128
STATS_FIRST_CAPACITY = 64


class TenantNotRegisteredError(RuntimeError):
    """Acquiring for a tenant that is not (or no longer) registered."""


class PoolInUseError(N.FairsemError):
    """unlink() refused: other live processes are attached to the pool.

    Removing the name under them would split them from every process that
    opens the name afterwards.  `unlink(name, force=True)` removes it anyway.
    """


class TenantHasActiveSlotsError(RuntimeError):
    """unregister_tenant(strict=True) of a tenant that holds or waits for slots."""


@dataclass(slots=True)
class Counters:
    """What the pool, or one tenant, did since it was created (libfairsem's
    fairsem_counters_t, same names).  The pool's never go down; a tenant's
    start at 0 each time its entry is created (it left and came back)."""

    grants_immediate: int = 0    # acquisitions granted without queueing
    grants_waited: int = 0       # queued acquisitions that were granted
    timeouts: int = 0            # queued acquisitions whose timeout passed
    cancels: int = 0             # queued acquisitions cancelled (forced unregistration, task cancelled)
    reclaimed_slots: int = 0     # slots taken back from dead processes
    reclaimed_requests: int = 0  # queued acquisitions of dead processes dropped
    held_ns: int = 0             # slot-time of holds that ended, ns
    wait_ns: int = 0             # sum of the waits counted in wait_buckets, ns
    # Waits of grants_waited per bucket (not cumulative); bucket k counts
    # waits up to WAIT_BUCKET_BOUNDS_NS[k] (the last one: longer waits).
    wait_buckets: tuple[int, ...] = (0,) * N.WAIT_BUCKETS


# Upper bounds of the wait buckets in ns: 1, 2, 5, 10 ... µs up to 100 s,
# then None for the last bucket (longer waits).
WAIT_BUCKET_BOUNDS_NS: tuple[int | None, ...] = tuple(
    lib.fairsem_wait_bucket_bound_ns(k) for k in range(N.WAIT_BUCKETS - 1)
) + (None,)


def _counters(raw: N.Counters) -> Counters:
    return Counters(raw.grants_immediate, raw.grants_waited, raw.timeouts, raw.cancels, raw.reclaimed_slots,
                    raw.reclaimed_requests, raw.held_ns, raw.wait_ns, tuple(raw.wait_buckets))


@dataclass(slots=True)
class TenantStats:
    """One tenant of the pool, whichever process registered it."""

    tenant_id: str
    active_slots: int
    share: int
    waiting: int
    weight: int = 1
    counters: Counters = field(default_factory=Counters)
    oldest_wait_ns: int = 0      # age of its oldest waiting acquisition, 0: none


@dataclass(slots=True)
class SemaphoreStats:
    """The whole pool, across every attached process."""

    max_slots: int
    active_tenants: int
    demanding_tenants: int
    total_active_slots: int
    available_slots: int
    tenants: dict[str, TenantStats] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    oldest_wait_ns: int = 0      # age of the pool's oldest waiting acquisition, 0: none


@dataclass(slots=True)
class ReapReport:
    """What reap() took back from dead processes."""

    procs: int
    slots: int
    requests: int
    registrations: int
    repaired: int = 0  # corrupt words reset (slots among them count in `slots`)


def _raise_for(code: int, what: str) -> None:
    """Raise the Python exception that fits a negative libfairsem result."""
    if code in (N.EINVAL, N.ENAMETOOLONG):
        raise ValueError(f"{what}: {N.error_text(code)}")
    if code == N.ENOTREG:
        raise TenantNotRegisteredError(f"{what}: the tenant is being unregistered")
    if code == N.ECANCELED:
        raise TenantNotRegisteredError(f"{what}: cancelled by a forced unregistration")
    if code == N.ETIMEDOUT:
        raise TimeoutError(f"{what}: timed out")
    if code == N.ENOENT:
        raise FileNotFoundError(-code, f"{what}: {N.error_text(code)}")
    raise N.FairsemError(code, what)


def share_rule_name(calculator: ShareCalculator) -> str:
    """The name under which the pool records a custom share rule.

    The pool stores this name with the rule's share for every number of
    demanding tenants, evaluated once by its creator; a process that brings
    a rule must bring this one.  "module.qualname" when it fits the C limit,
    else a digest of it.
    """
    module = getattr(calculator, "__module__", None) or type(calculator).__module__
    qualname = getattr(calculator, "__qualname__", None) or type(calculator).__qualname__
    # multiprocessing's spawn children import the parent's main script as
    # __mp_main__: the same function must get the same name there.
    if module == "__mp_main__":
        module = "__main__"
    full = f"{module}.{qualname}"
    if len(full.encode()) <= N.RULE_NAME_MAX:
        return full
    prefix = "py:"
    return prefix + hashlib.sha256(full.encode()).hexdigest()[: N.RULE_NAME_MAX - len(prefix)]


def _share_fn(calculator: ShareCalculator) -> Any:
    def share(max_slots: int, demanding: int, _arg: int | None) -> int:
        # An exception cannot cross into C, and ctypes would then return an
        # undefined value: report it and answer 0, which C raises to min_share.
        try:
            return min(max(int(calculator(max_slots, demanding)), 0), 0xFFFFFFFF)
        except Exception:
            logger.exception("share_calculator %r failed; using min_share", calculator)
            return 0

    return N.SHARE_FN(share)


class _Registration:
    """This process's C registration of one tenant.

    The C handle outlives its registration, so unregistering happens at
    once (a forced one cancels even an acquire that is entering the library
    at that moment).  Once unregistered (`ended`), the handle is freed with
    fairsem_tenant_free as soon as it holds and awaits nothing and no thread
    is inside a blocking acquire through it (`blocking_callers`;
    `_reclaim`); until then slots still held release through it.
    """

    __slots__ = ("handle", "tenant_id", "weight", "blocking_callers", "ended")

    def __init__(self, handle: int, tenant_id: str, weight: int) -> None:
        self.handle: int | None = handle
        self.tenant_id = tenant_id
        self.weight = weight
        self.blocking_callers = 0
        self.ended = False


class Slot:
    """A slot this process holds.  `index` (0..max_slots-1) says which one,
    e.g. which browser tab to use.  Give it back with release() or `with`."""

    __slots__ = ("_semaphore", "_registration", "_raw", "_pid", "index", "tenant_id")

    def __init__(self, semaphore: FairShareSemaphore, registration: _Registration, raw: N.Slot) -> None:
        self._semaphore: FairShareSemaphore | None = semaphore
        self._registration = registration
        self._raw = raw
        self._pid = os.getpid()
        self.index: int = lib.fairsem_slot_index(raw)
        self.tenant_id = registration.tenant_id

    @property
    def released(self) -> bool:
        return self._semaphore is None

    def release(self) -> None:
        """Give the slot back (to the oldest eligible waiter).  Idempotent."""
        semaphore, self._semaphore = self._semaphore, None
        # A fork child holds none of its parent's slots; a closed handle has
        # given them all back already.
        if semaphore is None or self._pid != os.getpid() or semaphore._handle is None:
            return
        rc = lib.fairsem_release(self._registration.handle, self._raw)
        with semaphore._lock:
            semaphore._reclaim(self._registration)
        if rc < 0:
            _raise_for(rc, "release")

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self.released else "held"
        return f"<fairsem.Slot index={self.index} tenant={self.tenant_id!r} {state}>"


class _AsyncAcquisition:
    __slots__ = ("_semaphore", "_tenant_id", "_slot")

    def __init__(self, semaphore: FairShareSemaphore, tenant_id: str | None) -> None:
        self._semaphore = semaphore
        self._tenant_id = tenant_id
        self._slot: Slot | None = None

    async def __aenter__(self) -> Slot:
        self._slot = await self._semaphore._acquire_async(self._tenant_id)
        return self._slot

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._slot is not None
        self._slot.release()


class _SyncAcquisition:
    __slots__ = ("_semaphore", "_tenant_id", "_timeout", "_slot")

    def __init__(self, semaphore: FairShareSemaphore, tenant_id: str | None, timeout: float | None) -> None:
        self._semaphore = semaphore
        self._tenant_id = tenant_id
        self._timeout = timeout
        self._slot: Slot | None = None

    def __enter__(self) -> Slot:
        self._slot = self._semaphore._acquire_blocking(self._tenant_id, self._timeout)
        return self._slot

    def __exit__(self, *exc_info: object) -> None:
        assert self._slot is not None
        self._slot.release()


class _BlockUsers:
    """How many tenant()/tenant_sync() blocks of this process are inside one
    tenant id's registration.  A block that leaves unregisters only when it
    is the last one, and only if the registration it joined is still the
    current one (an explicit unregister_tenant() detaches the count, so the
    blocks it ended never end a later registration)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class TenantContext:
    """Registers a tenant for a block and makes it the current tenant.

    `async with sem.tenant(id):` or, from threads and pre-fork workers,
    `with sem.tenant_sync(id):`.  Blocks for one id are counted: concurrent
    blocks (threads, tasks) share one registration, which ends (deferred
    while it still holds slots) when the last of them leaves.  On exit the
    previous current tenant is restored.
    """

    __slots__ = ("_semaphore", "_tenant_id", "_weight", "_token", "_users")

    def __init__(self, semaphore: FairShareSemaphore, tenant_id: str, weight: int = 1) -> None:
        self._semaphore = semaphore
        self._tenant_id = tenant_id
        self._weight = weight
        self._token: Any = None
        self._users: _BlockUsers | None = None

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    def __enter__(self) -> TenantContext:
        if self._users is not None:
            raise RuntimeError(f"this tenant({self._tenant_id!r}) block is already entered")
        self._users = self._semaphore._enter_tenant_block(self._tenant_id, self._weight)
        self._token = _tenant_id_var.set(self._tenant_id)
        return self

    def __exit__(self, *exc_info: object) -> None:
        users, self._users = self._users, None
        assert users is not None
        try:
            self._semaphore._leave_tenant_block(self._tenant_id, users)
        finally:
            _tenant_id_var.reset(self._token)

    async def __aenter__(self) -> TenantContext:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)

    def acquire(self) -> _AsyncAcquisition:
        """`async with ctx.acquire() as slot:` a slot for this tenant."""
        return _AsyncAcquisition(self._semaphore, self._tenant_id)

    def acquire_sync(self, timeout: float | None = None) -> _SyncAcquisition:
        """`with ctx.acquire_sync() as slot:` a slot for this tenant, blocking."""
        return _SyncAcquisition(self._semaphore, self._tenant_id, timeout)


_open_semaphores: weakref.WeakSet[FairShareSemaphore] = weakref.WeakSet()


def _forget_parent_state_in_child() -> None:
    for semaphore in list(_open_semaphores):
        semaphore._after_fork_in_child()


os.register_at_fork(after_in_child=_forget_parent_state_in_child)


def _close_handle(handle: int, pending: dict[int, tuple[int, Any]]) -> None:
    # Requests still queued (an object collected, or the interpreter exiting,
    # while acquisitions wait) are freed first: after fairsem_close their
    # tenant handles are gone, and a task cleaning up later must find
    # nothing left to free.
    for request, _ in pending.values():
        lib.fairsem_request_free(request)
    pending.clear()
    lib.fairsem_close(handle)


class FairShareSemaphore:
    """A fixed pool of slots shared fairly by the tenants that want them.

    name=None: a private pool, shared with the child processes this process
    forks afterwards.  name="/tabs": the machine-wide pool of that name,
    created if missing, opened (settings checked) if present.

    The C library does the fair-share scheduling in shared memory, so every
    process (and thread, and event loop) attached to one pool sees one FIFO
    queue and one set of shares.
    """

    def __init__(
        self,
        max_slots: int,
        *,
        min_share: int = 1,
        share_calculator: ShareCalculator | None = None,
        name: str | None = None,
        work_conserving: bool = False,
        strict_fifo: bool = False,
        max_tenants: int = DEFAULT_MAX_TENANTS,
        max_waiters: int = DEFAULT_MAX_WAITERS,
        max_procs: int = DEFAULT_MAX_PROCS,
    ) -> None:
        if max_slots < 1:
            raise ValueError("max_slots must be at least 1")
        if min_share < 1:
            raise ValueError("min_share must be at least 1")
        if max_slots > N.MAX_SLOTS_LIMIT:
            raise ValueError(f"max_slots must be at most {N.MAX_SLOTS_LIMIT}")
        if min_share > max_slots:
            raise ValueError("min_share must not exceed max_slots")
        self._max_slots = max_slots
        self._min_share = min_share
        self._share_calculator = share_calculator
        self._name = name
        self._work_conserving = work_conserving
        self._strict_fifo = strict_fifo
        self._capacities = (max_tenants, max_waiters, max_procs)

        self._lock = threading.Lock()
        self._tenants: dict[str, _Registration] = {}
        self._block_users: dict[str, _BlockUsers] = {}
        self._share_fn = _share_fn(share_calculator) if share_calculator is not None else None
        self._rule_name = share_rule_name(share_calculator) if share_calculator is not None else None

        self._watched_loop: asyncio.AbstractEventLoop | None = None
        self._event_fd = -1
        # request key -> (C request, future resolved when the request completes)
        self._pending: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self._request_keys = itertools.count(1)

        options = self._options()
        if name is None:
            handle = ctypes.c_void_p()
            rc = lib.fairsem_open_anonymous(ctypes.byref(options), ctypes.byref(handle))
            if rc < 0:
                _raise_for(rc, "fairsem_open_anonymous")
            self._handle: int | None = handle.value
        else:
            self._handle = self._create_or_open(name, options)
        self._finalizer = weakref.finalize(self, _close_handle, self._handle, self._pending)
        _open_semaphores.add(self)

    # ------------------------------------------------------------ opening

    def _options(self) -> N.Options:
        max_tenants, max_waiters, max_procs = self._capacities
        options = N.Options(
            max_slots=self._max_slots,
            min_share=self._min_share,
            max_tenants=max_tenants,
            max_waiters=max_waiters,
            max_procs=max_procs,
            flags=(N.WORK_CONSERVING if self._work_conserving else 0) | (N.STRICT_FIFO if self._strict_fifo else 0),
        )
        if self._share_fn is not None:
            assert self._rule_name is not None
            options.share_fn_name = self._rule_name.encode()
            options.share_fn = ctypes.cast(self._share_fn, ctypes.c_void_p)
        return options

    def _create_or_open(self, name: str, options: N.Options) -> int:
        encoded = name.encode()
        handle = ctypes.c_void_p()
        give_up_at = time.monotonic() + INIT_WAIT_SECONDS
        while True:
            rc = lib.fairsem_create(encoded, ctypes.byref(options), ctypes.byref(handle))
            if rc == 0:
                return handle.value
            if rc != N.EEXIST:
                _raise_for(rc, f"creating pool {name!r}")
            rc = lib.fairsem_open(encoded, ctypes.byref(options), ctypes.byref(handle))
            if rc == 0:
                self._check_settings(name, handle.value)
                return handle.value
            if rc == N.ENOENT:  # unlinked between our create and open: create again
                continue
            if rc == N.EINIT and time.monotonic() < give_up_at:
                time.sleep(0.001)
                continue
            if rc == N.ERULE:
                mine = self._rule_name or "the built-in rule"
                raise ValueError(f"pool {name!r} exists with another share rule than {mine}")
            _raise_for(rc, f"opening pool {name!r}")

    def _check_settings(self, name: str, handle: int) -> None:
        stats = N.Stats()
        rc = lib.fairsem_stats(handle, ctypes.byref(stats), None, 0, None)
        want = {
            "max_slots": self._max_slots,
            "min_share": self._min_share,
            "work_conserving": self._work_conserving,
            "strict_fifo": self._strict_fifo,
        }
        have = {
            "max_slots": stats.max_slots,
            "min_share": stats.min_share,
            "work_conserving": bool(stats.flags & N.WORK_CONSERVING),
            "strict_fifo": bool(stats.flags & N.STRICT_FIFO),
        }
        if rc < 0 or want != have:
            lib.fairsem_close(handle)
            if rc < 0:
                _raise_for(rc, f"reading pool {name!r}")
            differ = ", ".join(f"{k}={have[k]} (asked {want[k]})" for k in want if want[k] != have[k])
            raise ValueError(f"pool {name!r} exists with other settings: {differ}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Lets a named pool travel to multiprocessing "spawn" children, which
        # open it by name.  A private pool reaches only forked children.
        if self._name is None:
            raise TypeError("a private FairShareSemaphore (name=None) is shared by fork only; give it a name")
        return (_reopen, (self._name, self._max_slots, self._min_share, self._share_calculator,
                          self._work_conserving, self._strict_fifo, self._capacities))

    @staticmethod
    def unlink(name: str, *, missing_ok: bool = False, force: bool = False) -> None:
        """Remove the pool's name, unless other live processes are attached
        (PoolInUseError); this process's own handles do not count.  With
        force=True it is removed anyway, and attached processes keep using
        the removed pool while new opens make a new one."""
        rc = lib.fairsem_unlink(name.encode(), N.UNLINK_FORCE if force else 0)
        if rc == N.ENOENT and missing_ok:
            return
        if rc == N.EATTACHED:
            raise PoolInUseError(rc, f"unlinking pool {name!r} (force=True removes it anyway)")
        if rc < 0:
            _raise_for(rc, f"unlinking pool {name!r}")

    def close(self) -> None:
        """Detach: slots held and acquisitions waiting through this object are
        given back (waiters get RuntimeError).  Call it when no other thread
        is inside a blocking acquire_sync."""
        with self._lock:
            if self._handle is None:
                return
            for request, waiter in self._pending.values():
                lib.fairsem_request_free(request)
                if not waiter.done():
                    waiter.set_exception(RuntimeError("FairShareSemaphore was closed"))
            self._pending.clear()
            loop = self._watched_loop
            if loop is not None and not loop.is_closed():
                loop.remove_reader(self._event_fd)
            self._watched_loop = None
            self._tenants.clear()
            self._block_users.clear()
            self._handle = None
            self._finalizer()
        _open_semaphores.discard(self)

    def _after_fork_in_child(self) -> None:
        # The child holds nothing of its parent's: no slot, no queued request,
        # and the library gives it a new event descriptor.  A thread that held
        # the lock at fork time does not exist here.
        self._lock = threading.Lock()
        self._pending.clear()
        self._watched_loop = None
        self._event_fd = -1
        for registration in self._tenants.values():
            registration.blocking_callers = 0

    def _live_handle(self) -> int:
        if self._handle is None:
            raise RuntimeError("FairShareSemaphore is closed")
        return self._handle

    # ------------------------------------------------------------ properties

    @property
    def max_slots(self) -> int:
        return self._max_slots

    @property
    def min_share(self) -> int:
        return self._min_share

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def work_conserving(self) -> bool:
        return self._work_conserving

    @property
    def strict_fifo(self) -> bool:
        return self._strict_fifo

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __repr__(self) -> str:
        where = "private" if self._name is None else repr(self._name)
        return f"<FairShareSemaphore {where} max_slots={self._max_slots} min_share={self._min_share}>"

    # ------------------------------------------------------------ tenants

    def tenant(self, tenant_id: str, weight: int = 1) -> TenantContext:
        """`async with sem.tenant(id):` registers `id` and makes it current."""
        return TenantContext(self, tenant_id, weight)

    def tenant_sync(self, tenant_id: str, weight: int = 1) -> TenantContext:
        """`with sem.tenant_sync(id):` the same, for threads and pre-fork workers."""
        return TenantContext(self, tenant_id, weight)

    async def register_tenant(self, tenant_id: str, weight: int = 1) -> None:
        """Register `tenant_id` (again: no-op, or a new weight for every process)."""
        self.register_tenant_sync(tenant_id, weight)

    async def unregister_tenant(self, tenant_id: str, force: bool = False, *, strict: bool = False) -> None:
        """End this process's registration of `tenant_id`.

        New acquisitions for it fail at once with TenantNotRegisteredError.
        Default: deferred; its held slots stay valid and its waiting
        acquisitions are still served, and the registration ends when the
        last slot is released.  force=True: its waiting acquisitions fail
        with TenantNotRegisteredError now (held slots are still given back
        on release; nothing leaks).  strict=True: raise
        TenantHasActiveSlotsError instead, and change nothing, while it holds
        or waits.  Unknown ids are ignored, as in aio-fairshare.
        """
        self.unregister_tenant_sync(tenant_id, force, strict=strict)

    def register_tenant_sync(self, tenant_id: str, weight: int = 1) -> None:
        with self._lock:
            self._register_locked(tenant_id, weight)

    def _register_locked(self, tenant_id: str, weight: int) -> None:
        if not isinstance(tenant_id, str) or not tenant_id:
            raise ValueError("tenant_id must be a non-empty str")
        if weight < 1:
            raise ValueError("weight must be at least 1")
        encoded = tenant_id.encode()
        if len(encoded) > N.TENANT_ID_MAX:
            raise ValueError(
                f"tenant_id {tenant_id!r} is {len(encoded)} bytes (UTF-8); the limit is {N.TENANT_ID_MAX}"
            )
        handle = self._live_handle()
        current = self._tenants.get(tenant_id)
        if current is not None and current.weight == weight:
            return
        registered = ctypes.c_void_p()
        rc = lib.fairsem_tenant_register(handle, encoded, weight, ctypes.byref(registered))
        if rc < 0:
            _raise_for(rc, f"registering tenant {tenant_id!r}")
        self._tenants[tenant_id] = _Registration(registered.value, tenant_id, weight)
        if current is not None:
            # The new registration carries the new weight; the old one
            # ends once its slots are back.
            self._end_registration(current, 0)

    def _enter_tenant_block(self, tenant_id: str, weight: int) -> _BlockUsers:
        """A tenant() block starts: register (or join the registration)."""
        with self._lock:
            self._register_locked(tenant_id, weight)
            users = self._block_users.setdefault(tenant_id, _BlockUsers())
            users.count += 1
            return users

    def _leave_tenant_block(self, tenant_id: str, users: _BlockUsers) -> None:
        """A tenant() block ends: the last one out unregisters (deferred)."""
        with self._lock:
            users.count -= 1
            if users.count > 0 or self._block_users.get(tenant_id) is not users:
                return
            del self._block_users[tenant_id]
            if self._handle is None:
                return
            registration = self._tenants.pop(tenant_id, None)
            if registration is not None:
                rc = self._end_registration(registration, 0)
                if rc < 0 and rc != N.ENOTREG:
                    _raise_for(rc, f"unregistering tenant {tenant_id!r}")

    def unregister_tenant_sync(self, tenant_id: str, force: bool = False, *, strict: bool = False) -> None:
        if force and strict:
            raise ValueError("force and strict exclude each other")
        flags = N.FORCE if force else N.IF_IDLE if strict else 0
        with self._lock:
            if self._handle is None:
                return
            registration = self._tenants.get(tenant_id)
            if registration is None:
                return
            if strict and registration.blocking_callers:
                raise TenantHasActiveSlotsError(f"tenant {tenant_id!r} is waiting for a slot")
            rc = self._end_registration(registration, flags)
            if rc == N.EBUSY:
                raise TenantHasActiveSlotsError(f"tenant {tenant_id!r} holds or waits for slots")
            del self._tenants[tenant_id]
            # The tenant() blocks still inside it lost their registration too.
            self._block_users.pop(tenant_id, None)
            if rc < 0 and rc != N.ENOTREG:
                _raise_for(rc, f"unregistering tenant {tenant_id!r}")

    def _end_registration(self, registration: _Registration, flags: int) -> int:
        """Unregister in C (call with the lock held)."""
        rc = lib.fairsem_tenant_unregister(registration.handle, flags)
        if rc != N.EBUSY:
            registration.ended = True
            self._reclaim(registration)
        return rc

    def _reclaim(self, registration: _Registration) -> None:
        """Free an ended registration's C handle once it holds and awaits
        nothing (call with the lock held; fairsem_close frees the rest)."""
        if (
            registration.ended
            and registration.handle is not None
            and registration.blocking_callers == 0
            and self._handle is not None
            and lib.fairsem_tenant_free(registration.handle) == 0
        ):
            registration.handle = None

    def _registration(self, tenant_id: str | None) -> _Registration:
        """The registration to acquire for (call with the lock held)."""
        self._live_handle()
        tid = tenant_id or _tenant_id_var.get()
        if not tid:
            raise TenantNotRegisteredError(
                "No tenant ID provided. Either pass tenant_id or use tenant() / tenant_context()."
            )
        registration = self._tenants.get(tid)
        if registration is None:
            raise TenantNotRegisteredError(
                f"Tenant {tid!r} is not registered. Use 'async with semaphore.tenant(id):' first."
            )
        return registration

    # ------------------------------------------------------------ async acquire

    def acquire(self, tenant_id: str | None = None) -> _AsyncAcquisition:
        """`async with sem.acquire() as slot:` waits, without blocking the
        event loop, until the tenant (default: the current one) is under its
        share and no older eligible request waits."""
        return _AsyncAcquisition(self, tenant_id)

    async def _acquire_async(self, tenant_id: str | None) -> Slot:
        loop = asyncio.get_running_loop()
        request = ctypes.c_void_p()
        key = next(self._request_keys)
        with self._lock:
            registration = self._registration(tenant_id)
            rc = lib.fairsem_request_start(registration.handle, key, ctypes.byref(request))
        if rc < 0:
            _raise_for(rc, f"acquiring for tenant {registration.tenant_id!r}")
        raw = N.Slot()
        rc = lib.fairsem_request_result(request, ctypes.byref(raw))
        if rc == N.EAGAIN:  # queued: the library reports its completion on the event fd
            waiter = loop.create_future()
            self._pending[key] = (request.value, waiter)
            try:
                self._watch_events(loop)
                await waiter
            except BaseException:
                # Cancelled (or closed) while queued.  Freeing the request
                # cancels it, and gives back a slot whose grant raced us.
                if self._pending.pop(key, None) is not None:
                    lib.fairsem_request_free(request)
                    with self._lock:
                        self._reclaim(registration)
                raise
            if self._pending.pop(key, None) is None:
                raise RuntimeError("FairShareSemaphore was closed")
            rc = lib.fairsem_request_result(request, ctypes.byref(raw))
        lib.fairsem_request_free(request)
        if rc < 0:
            with self._lock:
                self._reclaim(registration)
            _raise_for(rc, f"acquiring for tenant {registration.tenant_id!r}")
        return Slot(self, registration, raw)

    def _watch_events(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have `loop` collect this handle's completed requests."""
        if self._watched_loop is loop:
            return
        previous = self._watched_loop
        if previous is not None:
            if not previous.is_closed():
                stale = [k for k, (_, waiter) in self._pending.items() if waiter.get_loop() is previous]
                if stale:
                    raise RuntimeError(
                        "FairShareSemaphore: acquisitions are waiting in another event loop; "
                        "use one event loop per process at a time"
                    )
                previous.remove_reader(self._event_fd)
            else:
                # Waits left behind by a closed loop will never resume.
                for key in [k for k, (_, waiter) in self._pending.items() if waiter.get_loop() is previous]:
                    request, _ = self._pending.pop(key)
                    lib.fairsem_request_free(request)
        fd = lib.fairsem_event_fd(self._live_handle())
        if fd < 0:
            _raise_for(fd, "fairsem_event_fd")
        loop.add_reader(fd, self._dispatch_events)
        self._watched_loop = loop
        self._event_fd = fd

    def _dispatch_events(self) -> None:
        if self._handle is None:
            return
        done = (ctypes.c_void_p * EVENTS_BATCH)()
        while True:
            count = lib.fairsem_events(self._handle, done, EVENTS_BATCH)
            for request in done[:count]:
                entry = self._pending.get(lib.fairsem_request_user(request))
                if entry is not None and not entry[1].done():
                    entry[1].set_result(None)
            if count < EVENTS_BATCH:
                return

    # ------------------------------------------------------------ sync acquire

    def acquire_sync(self, tenant_id: str | None = None, timeout: float | None = None) -> _SyncAcquisition:
        """`with sem.acquire_sync() as slot:` blocks this thread (not the
        others: the GIL is released) until granted, or raises TimeoutError
        after `timeout` seconds."""
        return _SyncAcquisition(self, tenant_id, timeout)

    def try_acquire(self, tenant_id: str | None = None) -> Slot | None:
        """A slot now, or None when the tenant would have to wait."""
        raw = N.Slot()
        with self._lock:
            registration = self._registration(tenant_id)
            rc = lib.fairsem_try_acquire(registration.handle, ctypes.byref(raw))
        if rc == N.EAGAIN:
            return None
        if rc < 0:
            _raise_for(rc, f"acquiring for tenant {registration.tenant_id!r}")
        return Slot(self, registration, raw)

    def _acquire_blocking(self, tenant_id: str | None, timeout: float | None) -> Slot:
        raw = N.Slot()
        with self._lock:
            registration = self._registration(tenant_id)
            registration.blocking_callers += 1
        try:
            if timeout is None:
                rc = lib.fairsem_acquire(registration.handle, ctypes.byref(raw))
            else:
                nanoseconds = max(0, int(timeout * 1e9))
                rc = lib.fairsem_acquire_timeout(registration.handle, nanoseconds, ctypes.byref(raw))
        finally:
            with self._lock:
                registration.blocking_callers -= 1
                self._reclaim(registration)
        if rc < 0:
            _raise_for(rc, f"acquiring for tenant {registration.tenant_id!r}")
        return Slot(self, registration, raw)

    # ------------------------------------------------------------ observation

    async def stats(self) -> SemaphoreStats:
        """The pool as every process sees it (one consistent snapshot)."""
        return self.stats_sync()

    def _read_entries(self, entry_type: type, what: str, call: Callable[..., int]) -> list:
        """Every entry a libfairsem reader reports, however many there are:
        call(handle, entries, capacity, count) with a larger array until
        the count fits."""
        capacity = STATS_FIRST_CAPACITY
        while True:
            entries = (entry_type * capacity)()
            count = ctypes.c_size_t()
            with self._lock:
                rc = call(self._live_handle(), entries, capacity, ctypes.byref(count))
            if rc < 0:
                _raise_for(rc, what)
            if count.value <= capacity:
                return entries[: count.value]
            capacity = count.value

    def stats_sync(self) -> SemaphoreStats:
        stats = N.Stats()
        tenants = self._read_entries(N.TenantStats, "fairsem_stats",
                                     lambda h, e, cap, n: lib.fairsem_stats(h, ctypes.byref(stats), e, cap, n))
        pool, oldest, counted = self._counters()
        by_id = {}
        for entry in tenants:
            tenant_id = entry.id.decode()
            mine, mine_oldest = counted.get(tenant_id, (Counters(), 0))
            by_id[tenant_id] = TenantStats(tenant_id, entry.held, entry.share, entry.waiting, entry.weight, mine,
                                           mine_oldest)
        return SemaphoreStats(
            max_slots=stats.max_slots,
            active_tenants=stats.registered_tenants,
            demanding_tenants=stats.demanding_tenants,
            total_active_slots=stats.slots_in_use,
            available_slots=stats.slots_available,
            tenants=by_id,
            counters=pool,
            oldest_wait_ns=oldest,
        )

    def _counters(self) -> tuple[Counters, int, dict[str, tuple[Counters, int]]]:
        """The pool's counters and oldest wait, and each tenant entry's (read
        right after the stats, not in the same snapshot)."""
        pool = N.Counters()
        oldest = ctypes.c_uint64()
        tenants = self._read_entries(
            N.TenantCounters, "fairsem_counters",
            lambda h, e, cap, n: lib.fairsem_counters(h, ctypes.byref(pool), ctypes.byref(oldest), e, cap, n))
        counted = {t.id.decode(): (_counters(t.counters), t.oldest_wait_ns) for t in tenants}
        return _counters(pool), oldest.value, counted

    def reap(self) -> ReapReport:
        """Take back now what dead processes held (waiters also do it within ~20 ms)."""
        report = N.ReapReport()
        with self._lock:
            rc = lib.fairsem_reap(self._live_handle(), ctypes.byref(report))
        if rc < 0:
            _raise_for(rc, "fairsem_reap")
        return ReapReport(report.procs, report.slots, report.tickets, report.registrations, report.repaired)


def _reopen(
    name: str,
    max_slots: int,
    min_share: int,
    share_calculator: ShareCalculator | None,
    work_conserving: bool,
    strict_fifo: bool,
    capacities: tuple[int, int, int],
) -> FairShareSemaphore:
    max_tenants, max_waiters, max_procs = capacities
    return FairShareSemaphore(
        max_slots,
        min_share=min_share,
        share_calculator=share_calculator,
        name=name,
        work_conserving=work_conserving,
        strict_fifo=strict_fifo,
        max_tenants=max_tenants,
        max_waiters=max_waiters,
        max_procs=max_procs,
    )
