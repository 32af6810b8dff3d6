// Compiled (not run) by types.test.js: the README's usage must type-check.
import { FairShareSemaphore, FairsemError, Slot, Tenant, SemaphoreStats, Counters, waitBucketBoundsNs } from '..';

async function main(): Promise<void> {
  const sem = await FairShareSemaphore.open({ name: '/tabs', maxSlots: 10, minShare: 1, create: true });
  const tenant: Tenant = sem.tenant('customer-42', { weight: 2 });
  try {
    const slot: Slot = await tenant.acquire({ signal: AbortSignal.timeout(5000), timeoutMs: 1000 });
    try {
      const tab: number = slot.index;
      void tab;
    } finally {
      slot.release();
    }
    const title: string = await tenant.withSlot(async (s) => `tab ${s.index}`);
    void title;
    const maybe: Slot | null = tenant.tryAcquire();
    maybe?.release();
  } catch (err) {
    if (err instanceof FairsemError && err.code === 'ETIMEDOUT') return;
    throw err;
  } finally {
    await tenant[Symbol.asyncDispose]();
  }
  const stats: SemaphoreStats = sem.stats();
  const held: number[] = stats.tenants.map((t) => t.held);
  void held;
  const counters: Counters = stats.counters;
  const slowWaits: number = counters.waitBuckets.filter((_, k) => waitBucketBoundsNs[k] > 1e9).length;
  const oldest: number = stats.oldestWaitNs + stats.tenants[0].counters.heldNs + stats.tenants[0].oldestWaitNs;
  void slowWaits;
  void oldest;
  sem.close();
  const removed: boolean = FairShareSemaphore.unlink('/tabs');
  const forced: boolean = FairShareSemaphore.unlink('/tabs', { missingOk: false, force: true });
  void forced;
  void removed;
}
void main;
