// Type-checked (tsc --noEmit) against the installed package's types, as ESM.
import { FairShareSemaphore, FairsemError, type SemaphoreStats, type Slot } from 'fairsem';

const sem: FairShareSemaphore = await FairShareSemaphore.open({ name: '/typed', maxSlots: 2 });
const slot: Slot | null = sem.tenant('t', { weight: 2 }).tryAcquire();
const stats: SemaphoreStats = sem.stats();
const inUse: number = stats.slotsInUse + (slot?.index ?? 0);
const err: FairsemError | undefined = undefined;
export { inUse, err };
