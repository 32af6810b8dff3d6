// A user's program of the installed fairsem npm package: `node npm_user.js ROLE NAME`.
// ROLE holder takes the one slot of pool NAME and keeps it until the waiter
// waits for it; ROLE waiter finds it taken, then waits and gets it.  Each
// prints where fairsem was loaded from and the protocol lines of
// tests/install/two_processes.sh.
'use strict';
const { setTimeout: sleep } = require('node:timers/promises');
const { FairShareSemaphore } = require('fairsem');

async function main() {
  const [role, name] = process.argv.slice(2);
  console.log('module', require.resolve('fairsem'));
  const sem = await FairShareSemaphore.open({ name, maxSlots: 1, create: role === 'holder' });
  const tenant = sem.tenant(role);
  if (role === 'holder') {
    const slot = tenant.tryAcquire();
    if (!slot) throw new Error("the pool's one slot is taken");
    console.log('held', slot.index);
    const waiting = () => sem.stats().tenants.find((t) => t.id === 'waiter')?.waiting ?? 0;
    while (waiting() !== 1) await sleep(10);
    console.log('waiter-seen');
    slot.release();
    console.log('released');
  } else {
    if (tenant.tryAcquire() !== null) throw new Error("the holder's slot was free");
    console.log('would-wait');
    const slot = await tenant.acquire({ timeoutMs: 120_000 });
    console.log('granted', slot.index);
    slot.release();
  }
  tenant.close();
  sem.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
