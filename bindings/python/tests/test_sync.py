"""The blocking API, for threads and pre-fork servers."""

import threading
import time

import pytest

from fairsem import FairShareSemaphore, TenantHasActiveSlotsError, TenantNotRegisteredError, get_tenant_id

# How long a test waits for something that must happen: a busy machine is
# slow, not wrong, so this only bounds how long a broken test takes to fail.
PATIENCE = 60


def wait_until_queued(semaphore, waiting):
    """Wait until `waiting` acquisitions are queued in the pool."""
    deadline = time.monotonic() + PATIENCE
    while sum(t.waiting for t in semaphore.stats_sync().tenants.values()) != waiting:
        assert time.monotonic() < deadline, f"{waiting} acquisitions never queued"
        time.sleep(0.001)


def test_acquire_sync_and_try_acquire():
    semaphore = FairShareSemaphore(max_slots=2)
    with semaphore.tenant_sync("a") as tenant:
        assert get_tenant_id() == "a"
        with semaphore.acquire_sync() as first, tenant.acquire_sync() as second:
            assert {first.index, second.index} == {0, 1}
            assert semaphore.try_acquire() is None
        slot = semaphore.try_acquire()
        assert slot is not None
        slot.release()
    assert get_tenant_id() is None
    assert semaphore.stats_sync().active_tenants == 0


def test_acquire_sync_times_out_and_leaks_nothing():
    semaphore = FairShareSemaphore(max_slots=1)
    with semaphore.tenant_sync("a"):
        holder = semaphore.try_acquire()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            with semaphore.acquire_sync(timeout=0.05):
                pass
        assert time.monotonic() - started > 0.04  # not before its deadline (a busy machine may be late)
        assert semaphore.stats_sync().tenants["a"].waiting == 0
        holder.release()
        with semaphore.acquire_sync(timeout=0):
            pass


def test_threads_share_fairly_and_never_exceed_the_pool():
    semaphore = FairShareSemaphore(max_slots=4)
    lock = threading.Lock()
    in_use = 0
    most_in_use = 0
    errors = []

    def worker(tenant_id):
        nonlocal in_use, most_in_use
        try:
            for _ in range(30):
                with semaphore.acquire_sync(tenant_id):
                    with lock:
                        in_use += 1
                        most_in_use = max(most_in_use, in_use)
                    time.sleep(0.0005)
                    with lock:
                        in_use -= 1
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    semaphore.register_tenant_sync("a")
    semaphore.register_tenant_sync("b")
    threads = [threading.Thread(target=worker, args=("ab"[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE)
    assert errors == []
    assert most_in_use == 4
    assert semaphore.stats_sync().available_slots == 4


def test_a_barging_pool_serves_blocked_threads_within_their_shares():
    semaphore = FairShareSemaphore(max_slots=2)
    assert not semaphore.strict_fifo
    with semaphore.tenant_sync("a"), semaphore.tenant_sync("b"):
        a1 = semaphore.try_acquire("a")
        a2 = semaphore.try_acquire("a")
        got = []
        waiter = threading.Thread(target=lambda: got.append(semaphore.acquire_sync("b").__enter__()))
        waiter.start()
        wait_until_queued(semaphore, 1)
        a2.release()
        # b waits, so a's share is 1 and a holds 1: a may not barge.
        assert semaphore.try_acquire("a") is None
        waiter.join(PATIENCE)
        assert len(got) == 1
        got[0].release()
        a1.release()


def test_a_blocked_thread_is_woken_by_a_release_from_another():
    semaphore = FairShareSemaphore(max_slots=1)
    semaphore.register_tenant_sync("a")
    holder = semaphore.try_acquire("a")
    got = []
    waiter = threading.Thread(target=lambda: got.append(semaphore.acquire_sync("a").__enter__()))
    waiter.start()
    wait_until_queued(semaphore, 1)
    assert got == []
    holder.release()
    waiter.join(PATIENCE)
    assert [slot.index for slot in got] == [0]
    got[0].release()


def test_unregistering_while_a_thread_blocks_is_deferred_until_it_is_served():
    semaphore = FairShareSemaphore(max_slots=1)
    semaphore.register_tenant_sync("a")
    holder = semaphore.try_acquire("a")
    got = []
    waiter = threading.Thread(target=lambda: got.append(semaphore.acquire_sync("a").__enter__()))
    waiter.start()
    wait_until_queued(semaphore, 1)
    with pytest.raises(TenantHasActiveSlotsError):
        semaphore.unregister_tenant_sync("a", strict=True)
    semaphore.unregister_tenant_sync("a")
    with pytest.raises(TenantNotRegisteredError):
        semaphore.try_acquire("a")
    holder.release()
    waiter.join(PATIENCE)
    got[0].release()
    assert semaphore.stats_sync().tenants == {}


def _two_each(max_slots: int, demanding: int) -> int:
    return 2


def _three_each(max_slots: int, demanding: int) -> int:
    return 3


def test_a_pool_carries_its_share_rule(pool_name):
    """The creator's rule is stored as data: openers need no function, get
    the same shares, and only a different rule is refused."""
    creator = FairShareSemaphore(max_slots=6, share_calculator=_two_each, name=pool_name)
    plain = FairShareSemaphore(max_slots=6, name=pool_name)
    try:
        with plain.tenant_sync("a"):
            held = [plain.try_acquire() for _ in range(3)]
            assert [s is not None for s in held] == [True, True, False], "the stored rule gives 2"
            assert plain.stats_sync().tenants["a"].share == 2
            assert creator.stats_sync().tenants["a"].share == 2
            for slot in held[:2]:
                slot.release()
        same = FairShareSemaphore(max_slots=6, share_calculator=_two_each, name=pool_name)
        same.close()
        with pytest.raises(ValueError, match="share rule"):
            FairShareSemaphore(max_slots=6, share_calculator=_three_each, name=pool_name)
    finally:
        plain.close()
        creator.close()


def test_forced_unregistration_fails_a_blocked_sync_waiter():
    semaphore = FairShareSemaphore(max_slots=1)
    semaphore.register_tenant_sync("a")
    holder = semaphore.try_acquire("a")
    outcome = []

    def wait() -> None:
        try:
            with semaphore.acquire_sync("a", timeout=30):
                outcome.append("granted")
        except Exception as exc:  # reported to the test through `outcome`
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=wait)
    thread.start()
    give_up_at = time.monotonic() + 10
    while semaphore.stats_sync().tenants["a"].waiting != 1:
        assert time.monotonic() < give_up_at, "the waiter never queued"
        time.sleep(0.001)
    semaphore.unregister_tenant_sync("a", force=True)
    thread.join(10)
    assert outcome == ["TenantNotRegisteredError"]
    holder.release()
    assert semaphore.stats_sync().available_slots == 1
    semaphore.close()
