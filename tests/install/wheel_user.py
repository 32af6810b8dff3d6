"""A user's program of the installed fairsem wheel: `wheel_user.py ROLE NAME`.

ROLE holder takes the one slot of pool NAME and keeps it until the waiter
waits for it; ROLE waiter finds it taken, then waits and gets it.  Each
prints where fairsem was imported from and the protocol lines of
tests/install/two_processes.sh.
"""

import sys
import time

import fairsem
from fairsem import FairShareSemaphore



def waiting(sem: FairShareSemaphore) -> int:
    tenant = sem.stats_sync().tenants.get("waiter")
    return tenant.waiting if tenant else 0


role, name = sys.argv[1], sys.argv[2]
print("module", fairsem.__file__, flush=True)
print("library", fairsem.LIBRARY_PATH, flush=True)
sem = FairShareSemaphore(max_slots=1, name=name)
if role == "holder":
    with sem.tenant_sync("holder"):
        slot = sem.try_acquire()
        assert slot is not None, "the pool's one slot is taken"
        print("held", slot.index, flush=True)
        while waiting(sem) != 1:
            time.sleep(0.01)
        print("waiter-seen", flush=True)
        slot.release()
        print("released", flush=True)
else:
    with sem.tenant_sync("waiter"):
        assert sem.try_acquire() is None, "the holder's slot was free"
        print("would-wait", flush=True)
        with sem.acquire_sync(timeout=120) as slot:
            print("granted", slot.index, flush=True)
sem.close()
