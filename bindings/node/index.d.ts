// Type definitions for fairsem (the Node.js binding of libfairsem).

/** Options of FairShareSemaphore.open(). */
export interface OpenOptions {
  /** "/tabs": one leading '/', no other; omitted: a private pool of this process. */
  name?: string | null;
  /** Create the pool when missing (default: true when maxSlots is given). */
  create?: boolean;
  /** Number of slots (1..65535); required to create.  When the pool exists
   * and this is given, it must match (else FAIRSEM_SETTINGS_MISMATCH). */
  maxSlots?: number;
  /** Smallest share of a demanding tenant (default 1). */
  minShare?: number;
  /** Lend free slots to tenants at their share when nobody under share waits. */
  workConserving?: boolean;
  /** FAIRSEM_STRICT_FIFO: every released slot is handed to the oldest
   * eligible waiter.  Without it (the default) a running caller under its
   * share may take a free slot before a waiter younger than 1 ms.  This
   * binding's own requests are event-loop ones, always handed their slot. */
  strictFifo?: boolean;
  /** Capacities of a pool this call creates (0 / omitted: library defaults). */
  maxTenants?: number;
  maxWaiters?: number;
  maxProcs?: number;
  /** Permission bits of a pool this call creates (default 0o600). */
  mode?: number;
  /** How long to wait for a pool whose creator is still initialising it (ms, default 1000). */
  initWaitMs?: number;
  /** A custom share rule: each demanding tenant's share when `demanding`
   * tenants want slots (raised to minShare, capped at maxSlots).  Evaluated
   * at open for every possible `demanding` and stored in a pool this call
   * creates; requires maxSlots.  Given for an existing pool, it must be the
   * pool's own rule (else FAIRSEM_RULE_MISMATCH); omitted, the pool's rule
   * applies. */
  shareCalculator?: (maxSlots: number, demanding: number) => number;
  /** The name the pool records the rule under (default: the function's name;
   * at most 31 bytes). */
  shareRuleName?: string;
}

export interface TenantOptions {
  /** Weight under the built-in rule (default 1): share =
   * max(minShare, maxSlots * weight / sum of demanding weights). */
  weight?: number;
}

export interface AcquireOptions {
  /** Gives the wait up: rejects with AbortError (code 'ABORT_ERR'). */
  signal?: AbortSignal;
  /** Gives the wait up after this many ms: rejects with FairsemError
   * 'ETIMEDOUT'.  0: a slot now or fail at once. */
  timeoutMs?: number;
}

export interface CloseTenantOptions {
  /** Waiting acquires of this tenant reject with 'ECANCELED'. */
  force?: boolean;
  /** Throw 'EBUSY' (changing nothing) while it holds or waits. */
  ifIdle?: boolean;
}

/** What the pool, or one tenant, did since it was created (libfairsem's
 * fairsem_counters_t).  The pool's never go down; a tenant's start at 0
 * each time its entry is created.  Numbers: exact up to 2^53. */
export interface Counters {
  /** Acquisitions granted without queueing. */
  grantsImmediate: number;
  /** Queued acquisitions that were granted. */
  grantsWaited: number;
  /** Queued acquisitions whose timeout passed. */
  timeouts: number;
  /** Queued acquisitions cancelled (an abort signal, a forced close). */
  cancels: number;
  /** Slots taken back from dead processes. */
  reclaimedSlots: number;
  /** Queued acquisitions of dead processes dropped. */
  reclaimedRequests: number;
  /** Slot-time of the holds that ended, ns. */
  heldNs: number;
  /** Sum of the waits counted in waitBuckets, ns. */
  waitNs: number;
  /** Waits of grantsWaited per bucket (not cumulative): bucket k counts
   * waits up to waitBucketBoundsNs[k]. */
  waitBuckets: number[];
}

export interface TenantStats {
  id: string;
  held: number;
  waiting: number;
  /** The share it has (or would have) now. */
  share: number;
  weight: number;
  /** Processes (handles) that have it registered. */
  registrations: number;
  /** Since this tenant's entry was created. */
  counters: Counters;
  /** Age of its oldest waiting acquisition, ns; 0: none. */
  oldestWaitNs: number;
}

export interface SemaphoreStats {
  maxSlots: number;
  minShare: number;
  workConserving: boolean;
  strictFifo: boolean;
  registeredTenants: number;
  demandingTenants: number;
  slotsInUse: number;
  slotsAvailable: number;
  waiters: number;
  attachedProcs: number;
  tenants: TenantStats[];
  counters: Counters;
  /** Age of the pool's oldest waiting acquisition, ns; 0: none. */
  oldestWaitNs: number;
}

export interface SemaphoreInfo {
  layoutVersion: number;
  maxSlots: number;
  minShare: number;
  maxTenants: number;
  maxWaiters: number;
  maxProcs: number;
  flags: number;
  /** "" = the built-in rule. */
  ruleName: string;
  size: number;
  createdMs: number;
}

export interface ReapReport {
  procs: number;
  slots: number;
  requests: number;
  registrations: number;
  /** corrupt words reset (slots among them also count in `slots`) */
  repaired: number;
}

export interface UnlinkOptions {
  /** Return false instead of throwing ENOENT when there is no such pool (default true). */
  missingOk?: boolean;
  /** Remove the name even while other live processes are attached (default false). */
  force?: boolean;
}

/** Stable error codes of FairsemError (errno names for errno values). */
export type FairsemErrorCode =
  | 'FAIRSEM_NOT_REGISTERED'
  | 'FAIRSEM_TOO_MANY_TENANTS'
  | 'FAIRSEM_QUEUE_FULL'
  | 'FAIRSEM_TOO_MANY_PROCESSES'
  | 'FAIRSEM_BAD_MAGIC'
  | 'FAIRSEM_VERSION_MISMATCH'
  | 'FAIRSEM_CORRUPT'
  | 'FAIRSEM_UNLINKED'
  | 'FAIRSEM_RULE_MISMATCH'
  | 'FAIRSEM_BAD_SLOT'
  | 'FAIRSEM_INITIALIZING'
  | 'FAIRSEM_IN_USE'
  | 'FAIRSEM_SETTINGS_MISMATCH'
  | 'FAIRSEM_CLOSED'
  | 'ETIMEDOUT'
  | 'ECANCELED'
  | 'EEXIST'
  | 'ENOENT'
  | 'EINVAL'
  | 'ENAMETOOLONG'
  | 'EACCES'
  | 'EBUSY'
  | 'ENOSPC'
  | 'ENOMEM'
  | (string & {});

export class FairsemError extends Error {
  readonly name: 'FairsemError';
  readonly code: FairsemErrorCode;
  /** The C library's negative result, when there is one. */
  readonly errno?: number;
}

/** A wait given up through its AbortSignal; `cause` is the signal's reason. */
export class AbortError extends Error {
  readonly name: 'AbortError';
  readonly code: 'ABORT_ERR';
}

/** A slot this process holds. */
export class Slot implements Disposable {
  private constructor();
  /** 0..maxSlots-1, e.g. which browser tab to use. */
  readonly index: number;
  readonly tenantId: string;
  readonly released: boolean;
  /** Give it back (to the oldest eligible waiter).  False if already released. */
  release(): boolean;
  [Symbol.dispose](): void;
}

/** This process's registration of one tenant. */
export class Tenant implements Disposable, AsyncDisposable {
  private constructor();
  readonly id: string;
  readonly weight: number;
  readonly semaphore: FairShareSemaphore;
  readonly closed: boolean;
  /** Wait for a slot without blocking the event loop. */
  acquire(options?: AcquireOptions): Promise<Slot>;
  /** A slot now, or null when this tenant would have to wait. */
  tryAcquire(): Slot | null;
  /** Run fn under a slot, released when fn settles. */
  withSlot<T>(fn: (slot: Slot) => T | Promise<T>, options?: AcquireOptions): Promise<T>;
  /** End the registration (deferred while it holds slots).  Idempotent. */
  close(options?: CloseTenantOptions): void;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A pool of slots shared fairly, machine-wide, by the tenants that want them. */
export class FairShareSemaphore implements Disposable, AsyncDisposable {
  private constructor();
  /** Open (and by default create) a pool. */
  static open(options: OpenOptions): Promise<FairShareSemaphore>;
  /** Remove a pool's name; false when there was none (missingOk, default
   * true).  Throws FAIRSEM_IN_USE while other live processes are attached,
   * unless force (then they keep using the removed pool). */
  static unlink(name: string, options?: UnlinkOptions): boolean;
  readonly name: string | null;
  readonly closed: boolean;
  /** Acquires of this object waiting now. */
  readonly waiting: number;
  /** A registration of `id` (at most 63 bytes of UTF-8) of its own: several
   * for one id are counted, and the tenant stays registered until the last
   * one is closed. */
  tenant(id: string, options?: TenantOptions): Tenant;
  stats(): SemaphoreStats;
  info(): SemaphoreInfo;
  reap(): ReapReport;
  isLinked(): boolean;
  /** Detach: held slots and waiting acquires of this object are given back. */
  close(): void;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** libfairsem's version, "major.minor.patch". */
export const version: string;
/** Upper bounds of the wait buckets in ns: 1, 2, 5, 10 ... µs up to 100 s,
 * then Infinity. */
export const waitBucketBoundsNs: readonly number[];
