// The ES-module face of fairsem: the CommonJS module (lib/index.js) itself,
// so `import` and `require` in one process share one addon and one state.
// Every name lib/index.js exports is listed here (the install test checks).
import fairsem from './index.js';

export const { FairShareSemaphore, Tenant, Slot, FairsemError, AbortError, version, waitBucketBoundsNs } = fairsem;
export default fairsem;
