"""One pool, many processes: fork, spawn, fairness, and a SIGKILLed holder."""

import multiprocessing
import os
import signal
import time

import pytest

import workers
from fairsem import FairsemError, FairShareSemaphore, PoolInUseError

# How long a test waits for something that must happen: a busy machine is
# slow, not wrong, so this only bounds how long a broken test takes to fail.
PATIENCE = 60


def collect(results, processes, timeout=PATIENCE):
    outcomes = [results.get(timeout=timeout) for _ in processes]
    for process in processes:
        process.join(timeout)
        assert process.exitcode == 0
    return outcomes


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_workers_of_one_named_pool_never_exceed_it(start_method, pool_name):
    context = multiprocessing.get_context(start_method)
    semaphore = FairShareSemaphore(max_slots=3, name=pool_name)
    results = context.Queue()
    processes = [
        context.Process(target=workers.hold_slots, args=(semaphore, f"tenant-{i}", 4, 0.01, results))
        for i in range(3)
    ]
    for process in processes:
        process.start()
    outcomes = collect(results, processes)
    seen_in_use = [seen for _, _, acquired in outcomes for _, seen in acquired]
    assert len(seen_in_use) == 12
    assert max(seen_in_use) <= 3
    assert {pid for pid, _, _ in outcomes} == {p.pid for p in processes}
    stats = semaphore.stats_sync()
    assert (stats.available_slots, stats.active_tenants) == (3, 0)


def test_forked_children_share_a_private_pool():
    context = multiprocessing.get_context("fork")
    semaphore = FairShareSemaphore(max_slots=2)
    results = context.Queue()
    processes = [
        context.Process(target=workers.hold_slots, args=(semaphore, "shared-tenant", 3, 0.01, results))
        for _ in range(3)
    ]
    for process in processes:
        process.start()
    outcomes = collect(results, processes)
    assert max(seen for _, _, acquired in outcomes for _, seen in acquired) <= 2
    assert semaphore.stats_sync().available_slots == 2


def test_two_tenants_in_two_processes_get_fair_shares(pool_name):
    context = multiprocessing.get_context("fork")
    semaphore = FairShareSemaphore(max_slots=10, name=pool_name)
    results = context.Queue()
    # Early stays demanding (40 acquisitions, each repeated) until late is
    # done, however long late takes to start.
    late_done = context.Event()
    early = context.Process(target=workers.hold_slots, args=(semaphore, "early", 40, 0.03, results, late_done))
    early.start()
    deadline = time.monotonic() + PATIENCE
    while semaphore.stats_sync().total_active_slots < 10:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    late = context.Process(target=workers.hold_slots, args=(semaphore, "late", 10, 0.2, results))
    late.start()
    most_held_by_late = 0
    early_while_late_at_share = []
    while late.is_alive() and time.monotonic() < deadline:
        tenants = semaphore.stats_sync().tenants
        # Both demanding: early still has acquisitions queued.
        if "early" in tenants and "late" in tenants and tenants["early"].waiting:
            held_by_late = tenants["late"].active_slots
            most_held_by_late = max(most_held_by_late, held_by_late)
            if held_by_late == 5:
                assert tenants["early"].share == tenants["late"].share == 5
                early_while_late_at_share.append(tenants["early"].active_slots)
        time.sleep(0.002)
    late_done.set()
    collect(results, [early, late])
    assert most_held_by_late == 5  # its share, taken from the tenant that came first
    assert early_while_late_at_share and max(early_while_late_at_share) <= 5


def test_a_sigkilled_holders_slots_come_back(pool_name):
    context = multiprocessing.get_context("fork")
    semaphore = FairShareSemaphore(max_slots=2, name=pool_name)
    ready = context.Event()
    victim = context.Process(target=workers.hold_until_killed, args=(semaphore, "victim", 2, ready))
    victim.start()
    assert ready.wait(PATIENCE)
    assert semaphore.stats_sync().available_slots == 0
    with semaphore.tenant_sync("survivor"):
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(PATIENCE)
        started = time.monotonic()
        with semaphore.acquire_sync(timeout=PATIENCE) as first, semaphore.acquire_sync(timeout=PATIENCE) as second:
            recovered_after = time.monotonic() - started
            assert {first.index, second.index} == {0, 1}
    print(f"slots of a SIGKILLed holder came back after {recovered_after * 1000:.1f} ms")
    assert semaphore.stats_sync().tenants == {}


def test_a_custom_rule_is_shared_across_processes(pool_name):
    context = multiprocessing.get_context("spawn")
    semaphore = FairShareSemaphore(max_slots=20, share_calculator=workers.priority_calculator, name=pool_name)
    results = context.Queue()
    child = context.Process(target=workers.custom_rule_share, args=(pool_name, results))
    with semaphore.tenant_sync("parent"):
        held = semaphore.try_acquire()
        child.start()
        share_in_child, child_got_a_slot = results.get(timeout=PATIENCE)
        held.release()
    child.join(PATIENCE)
    assert child.exitcode == 0
    assert (share_in_child, child_got_a_slot) == (12, True)  # 20 // 2 + 2


def test_pre_fork_workers_use_the_masters_registration():
    semaphore = FairShareSemaphore(max_slots=1)
    with semaphore.tenant_sync("site"):
        pid = os.fork()
        if pid == 0:
            # The child inherits the registration; the library registers it
            # again for the child on first use.
            try:
                with semaphore.acquire_sync(timeout=PATIENCE) as slot:
                    os._exit(0 if slot.index == 0 else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        with semaphore.acquire_sync(timeout=PATIENCE):
            pass


def test_a_private_pool_does_not_pickle():
    import pickle

    with pytest.raises(TypeError, match="fork"):
        pickle.dumps(FairShareSemaphore(max_slots=1))


def start_attached(pool_name):
    """A spawned process attached to the pool; returns it and its `leave` event."""
    context = multiprocessing.get_context("spawn")
    ready, leave = context.Event(), context.Event()
    process = context.Process(target=workers.attach_until, args=(pool_name, ready, leave))
    process.start()
    assert ready.wait(30)
    return process, leave


def test_unlink_is_refused_while_another_process_is_attached(pool_name):
    semaphore = FairShareSemaphore(max_slots=2, name=pool_name)
    with semaphore.tenant_sync("mine"):
        process, leave = start_attached(pool_name)
        with pytest.raises(PoolInUseError) as refused:
            FairShareSemaphore.unlink(pool_name)
        assert refused.value.code == -4012 and "FAIRSEM_EATTACHED" in str(refused.value)
        assert isinstance(refused.value, FairsemError)
        assert os.path.exists(f"/dev/shm{pool_name}")
        assert semaphore.stats_sync().available_slots == 1  # the child still holds its slot
        leave.set()
        process.join(30)
        assert process.exitcode == 0
        # This process's own handle does not count.
        FairShareSemaphore.unlink(pool_name)
    assert not os.path.exists(f"/dev/shm{pool_name}")
    semaphore.close()


def test_a_killed_process_does_not_keep_the_pool_from_being_unlinked(pool_name):
    FairShareSemaphore(max_slots=2, name=pool_name).close()
    process, _ = start_attached(pool_name)
    with pytest.raises(PoolInUseError):
        FairShareSemaphore.unlink(pool_name)
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    FairShareSemaphore.unlink(pool_name)
    assert not os.path.exists(f"/dev/shm{pool_name}")


def test_unlink_with_force_removes_it_under_an_attached_process(pool_name):
    FairShareSemaphore(max_slots=2, name=pool_name).close()
    process, leave = start_attached(pool_name)
    FairShareSemaphore.unlink(pool_name, force=True)
    assert not os.path.exists(f"/dev/shm{pool_name}")
    with pytest.raises(FileNotFoundError):
        FairShareSemaphore.unlink(pool_name)
    FairShareSemaphore.unlink(pool_name, missing_ok=True)
    leave.set()
    process.join(30)
    assert process.exitcode == 0  # it kept working on the removed pool
