'use strict';
// fairsem for Node.js: a fair-share semaphore shared by processes.
//
// The pool lives in POSIX shared memory (libfairsem, linked into the addon),
// so every process that opens the same name shares one set of slots, divided
// fairly among the tenants that currently want slots.  Waiting never blocks
// the event loop and takes no thread-pool thread: a queued request is
// completed by libfairsem's one waker thread per handle, which makes an
// eventfd readable; the addon watches it with uv_poll on this event loop.

const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { errno: osErrno } = require('node:os').constants;

const native = loadAddon();

function loadAddon() {
  const explicit = process.env.FAIRSEM_NODE_ADDON;
  if (explicit) return require(path.resolve(explicit));
  const root = path.join(__dirname, '..');
  const tried = [];
  for (const rel of ['build/Release/fairsem.node', 'build/Debug/fairsem.node']) {
    const file = path.join(root, rel);
    try {
      return require(file);
    } catch (err) {
      if (err.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes(file)) throw err;
      tried.push(file);
    }
  }
  const err = new Error(
    `fairsem: the native addon is not built (looked for ${tried.join(', ')}). ` +
      'Installing the package builds it (its install script compiles the C library it ' +
      'carries with node-gyp): rebuild it with `npm rebuild fairsem`, which needs a C ' +
      'compiler, make, python3, liburcu\'s headers (Debian: liburcu-dev) and the Node ' +
      'headers (Debian: libnode-dev, else downloaded); in a checkout, `npm run build` in ' +
      'bindings/node. FAIRSEM_NODE_ADDON=/path/to/fairsem.node loads another build.');
  err.code = 'MODULE_NOT_FOUND';
  throw err;
}

/** How long open() waits for a pool whose creator is still initialising it. */
const INIT_WAIT_MS = 1000;

// ------------------------------------------------------------------ errors

/** Every error of the library: `code` is stable (e.g. 'FAIRSEM_NOT_REGISTERED',
 * 'ETIMEDOUT', 'EEXIST'), `errno` the C library's negative result. */
class FairsemError extends Error {
  constructor(message, code, errno, options) {
    super(message, options);
    this.code = code;
    if (errno !== undefined) this.errno = errno;
  }
}
FairsemError.prototype.name = 'FairsemError';

/** A wait given up through its AbortSignal (as Node's own AbortError). */
class AbortError extends Error {
  constructor(message = 'The operation was aborted', options) {
    super(message, options);
    this.code = 'ABORT_ERR';
  }
}
AbortError.prototype.name = 'AbortError';

function adopt(err) {
  // Errors thrown by the addon carry `errno` and `cName`: make them FairsemErrors.
  if (err instanceof Error && typeof err.errno === 'number' && typeof err.cName === 'string' &&
      !(err instanceof FairsemError)) {
    Object.setPrototypeOf(err, FairsemError.prototype);
  }
  return err;
}

function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (err) {
    throw adopt(err);
  }
}

function codeError(errno, what) {
  return adopt(native.error(errno, what));
}

function closedError() {
  return new FairsemError('the semaphore is closed', 'FAIRSEM_CLOSED');
}

function notRegistered(id) {
  return new FairsemError(
    `tenant ${JSON.stringify(id)} is not registered (closed, or its semaphore is)`,
    'FAIRSEM_NOT_REGISTERED', native.ENOTREG);
}

function invalid(message) {
  const err = new TypeError(message);
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

function checkInt(value, what, min, max, optional = true) {
  if (value === undefined && optional) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${what} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
}

// ------------------------------------------------------------------ slots

/** A slot this process holds.  `index` (0..maxSlots-1) says which one,
 * e.g. which browser tab to use.  Give it back with release(). */
class Slot {
  #tenant;
  #tag;
  #released = false;

  constructor(tenant, tag) {
    this.#tenant = tenant;
    this.#tag = tag;
    /** 0..maxSlots-1 */
    this.index = native.slotIndex(tag);
    /** The tenant it was acquired for. */
    this.tenantId = tenant.id;
    Object.freeze(this);
  }

  /** True once released (or once its semaphore was closed). */
  get released() {
    return this.#released || this.#tenant.semaphore.closed;
  }

  /** Give the slot back; it goes straight to the oldest eligible waiter.
   * Idempotent: returns false when it was already released. */
  release() {
    if (this.#released) return false;
    this.#released = true;
    const sem = this.#tenant.semaphore;
    if (sem.closed) return false; // close() gave every slot back already
    call(native.release, this.#tenant._handle, this.#tag);
    return true;
  }

  [Symbol.dispose]() {
    this.release();
  }

  get [Symbol.toStringTag]() {
    return 'fairsem.Slot';
  }
}

// ------------------------------------------------------------------ tenants

/** This process's registration of one tenant.  Each sem.tenant() call makes
 * a registration of its own; close() ends it (deferred while it still holds
 * slots, which stay valid until released). */
class Tenant {
  #sem;
  #handle;
  #closed = false;

  constructor(sem, handle, id, weight) {
    this.#sem = sem;
    this.#handle = handle;
    this.id = id;
    this.weight = weight;
  }

  /** @internal */
  get _handle() {
    return this.#handle;
  }

  get semaphore() {
    return this.#sem;
  }

  /** True after close() (or after its semaphore was closed). */
  get closed() {
    return this.#closed || this.#sem.closed;
  }

  /** Wait (without blocking the event loop) for a slot: granted once this
   * tenant is under its fair share and no older eligible request waits.
   * Rejects with AbortError ('ABORT_ERR') when `signal` aborts and with
   * FairsemError 'ETIMEDOUT' after `timeoutMs`; a grant racing either is
   * never lost (an abort gives it back, a timeout keeps it). */
  acquire(options) {
    return this.#sem._acquire(this, options);
  }

  /** A slot now, or null when this tenant would have to wait. */
  tryAcquire() {
    if (this.closed) throw notRegistered(this.id);
    const tag = call(native.tryAcquire, this.#handle);
    return tag === null ? null : new Slot(this, tag);
  }

  /** Run `fn(slot)` under a slot, released when `fn` settles. */
  async withSlot(fn, options) {
    const slot = await this.acquire(options);
    try {
      return await fn(slot);
    } finally {
      slot.release();
    }
  }

  /** End the registration.  New acquires fail with FAIRSEM_NOT_REGISTERED.
   * Default: requests already waiting are still served and held slots stay
   * valid; the registration ends with the last slot.  force: waiting
   * requests fail with ECANCELED.  ifIdle: throw EBUSY (changing nothing)
   * while it holds or waits.  Idempotent. */
  close({ force = false, ifIdle = false } = {}) {
    if (this.#closed || this.#sem.closed) {
      this.#closed = true;
      return;
    }
    if (force && ifIdle) throw invalid('force and ifIdle exclude each other');
    call(native.unregister, this.#handle, force ? native.FORCE : ifIdle ? native.IF_IDLE : 0);
    this.#closed = true;
  }

  [Symbol.dispose]() {
    this.close();
  }

  async [Symbol.asyncDispose]() {
    this.close();
  }

  get [Symbol.toStringTag]() {
    return 'fairsem.Tenant';
  }
}

// ------------------------------------------------------------------ signals

// One 'abort' listener per signal, whatever the number of waits it governs
// (a signal shared by a thousand acquires must not trip Node's
// MaxListenersExceededWarning).
const abortWatchers = new WeakMap(); // signal -> { callbacks: Set, listener }

function watchAbort(signal, callback) {
  let w = abortWatchers.get(signal);
  if (w === undefined) {
    const callbacks = new Set();
    const listener = () => {
      abortWatchers.delete(signal);
      for (const cb of callbacks) cb();
      callbacks.clear();
    };
    w = { callbacks, listener };
    abortWatchers.set(signal, w);
    signal.addEventListener('abort', listener, { once: true });
  }
  w.callbacks.add(callback);
}

function unwatchAbort(signal, callback) {
  const w = abortWatchers.get(signal);
  if (w === undefined) return;
  w.callbacks.delete(callback);
  if (w.callbacks.size === 0) {
    abortWatchers.delete(signal);
    signal.removeEventListener('abort', w.listener);
  }
}

// ------------------------------------------------------------------ semaphore

function nativeOptions(o) {
  return {
    maxSlots: o.maxSlots,
    minShare: o.minShare,
    maxTenants: o.maxTenants,
    maxWaiters: o.maxWaiters,
    maxProcs: o.maxProcs,
    flags: (o.workConserving ? native.WORK_CONSERVING : 0) | (o.strictFifo ? native.STRICT_FIFO : 0),
    mode: o.mode,
  };
}

// A custom share rule travels as data: the pool stores the rule's share for
// every number of demanding tenants, so it is evaluated here, once, for each
// of them, and the library never calls back into JS.
function shareRule(o) {
  if (o.shareCalculator === undefined || o.shareCalculator === null) return null;
  if (typeof o.shareCalculator !== 'function') {
    throw invalid('shareCalculator must be a function (maxSlots, demanding) => share');
  }
  const name = o.shareRuleName ?? o.shareCalculator.name;
  if (typeof name !== 'string' || name === '') {
    throw invalid('shareRuleName is required with an anonymous shareCalculator');
  }
  const bytes = Buffer.byteLength(name);
  if (bytes > native.RULE_NAME_MAX) {
    throw invalid(`shareRuleName is ${bytes} bytes; the limit is ${native.RULE_NAME_MAX}`);
  }
  if (o.maxSlots === undefined) throw invalid('maxSlots is required with shareCalculator');
  const shares = new Array(native.MAX_TENANTS_LIMIT + 1);
  shares[0] = o.maxSlots;
  for (let d = 1; d <= native.MAX_TENANTS_LIMIT; d++) {
    let share;
    try {
      share = o.shareCalculator(o.maxSlots, d);
    } catch (err) {
      throw invalid(`shareCalculator(${o.maxSlots}, ${d}) threw: ${err?.message ?? String(err)}`);
    }
    if (!Number.isFinite(share)) {
      throw invalid(`shareCalculator(${o.maxSlots}, ${d}) returned ${String(share)}, not a finite number`);
    }
    shares[d] = Math.min(Math.max(Math.floor(share), 0), o.maxSlots);
  }
  return { name, shares };
}

/** A pool of slots shared fairly, machine-wide, by the tenants that want them. */
class FairShareSemaphore {
  #handle;
  #name;
  #closed = false;
  #pending = new Map(); // request id -> { req, tenant, resolve, reject, cleanup }
  #nextId = 1;
  #dispatcher;

  /** @internal use FairShareSemaphore.open() */
  constructor(handle, name) {
    if (!native.setDispatch || typeof handle !== 'object') {
      throw new TypeError('use FairShareSemaphore.open()');
    }
    this.#handle = handle;
    this.#name = name;
    // The addon holds the dispatcher weakly while nothing waits; this
    // object holds it for as long as it lives.
    this.#dispatcher = (ids, codes, tags) => this.#dispatch(ids, codes, tags);
    native.setDispatch(handle, this.#dispatcher);
  }

  /**
   * Open the pool `name` ("/tabs"), creating it when missing (create: true,
   * the default; maxSlots is then required).  Without a name: a private pool
   * of this process.  When the pool exists, the settings given (maxSlots,
   * minShare, workConserving, strictFifo) must match its own, else
   * FAIRSEM_SETTINGS_MISMATCH.  shareCalculator (maxSlots, demanding) =>
   * share is evaluated here for every number of demanding tenants and stored
   * in a pool this call creates, under shareRuleName (default: the
   * function's name); any process may then open the pool without it.  Given
   * for an existing pool, it must be that pool's rule, else
   * FAIRSEM_RULE_MISMATCH.
   */
  static async open(options = {}) {
    const o = { create: options.maxSlots !== undefined, ...options };
    checkInt(o.maxSlots, 'maxSlots', 1, native.MAX_SLOTS_LIMIT);
    checkInt(o.minShare, 'minShare', 1, native.MAX_SLOTS_LIMIT);
    checkInt(o.maxTenants, 'maxTenants', 1, native.MAX_TENANTS_LIMIT);
    checkInt(o.maxWaiters, 'maxWaiters', 1, native.MAX_WAITERS_LIMIT);
    checkInt(o.maxProcs, 'maxProcs', 1, native.MAX_PROCS_LIMIT);
    checkInt(o.mode, 'mode', 0, 0o777);
    const rule = shareRule(o);
    if (o.name === undefined || o.name === null) {
      if (o.maxSlots === undefined) throw invalid('maxSlots is required');
      return new FairShareSemaphore(call(native.openAnonymous, nativeOptions(o), rule), null);
    }
    if (typeof o.name !== 'string') throw invalid('name must be a string like "/tabs"');
    if (o.create && o.maxSlots === undefined) throw invalid('maxSlots is required with create: true');
    const giveUpAt = Date.now() + (o.initWaitMs ?? INIT_WAIT_MS);
    for (;;) {
      if (o.create) {
        try {
          return new FairShareSemaphore(call(native.create, o.name, nativeOptions(o), rule), o.name);
        } catch (err) {
          if (err.code !== 'EEXIST') throw err;
        }
      }
      let handle;
      try {
        handle = call(native.open, o.name, rule);
      } catch (err) {
        if (err.code === 'ENOENT' && o.create) continue; // unlinked in between: create again
        if (err.code === 'FAIRSEM_INITIALIZING' && Date.now() < giveUpAt) {
          await sleep(1);
          continue;
        }
        throw err;
      }
      const sem = new FairShareSemaphore(handle, o.name);
      sem.#checkSettings(o);
      return sem;
    }
  }

  #checkSettings(o) {
    const st = this.stats();
    const differ = [];
    if (o.maxSlots !== undefined && st.maxSlots !== o.maxSlots) differ.push(`maxSlots=${st.maxSlots} (asked ${o.maxSlots})`);
    if (o.minShare !== undefined && st.minShare !== o.minShare) differ.push(`minShare=${st.minShare} (asked ${o.minShare})`);
    if (o.workConserving !== undefined && st.workConserving !== Boolean(o.workConserving)) {
      differ.push(`workConserving=${st.workConserving} (asked ${Boolean(o.workConserving)})`);
    }
    if (o.strictFifo !== undefined && st.strictFifo !== Boolean(o.strictFifo)) {
      differ.push(`strictFifo=${st.strictFifo} (asked ${Boolean(o.strictFifo)})`);
    }
    if (differ.length) {
      this.close();
      throw new FairsemError(`pool ${JSON.stringify(this.#name)} exists with other settings: ${differ.join(', ')}`,
        'FAIRSEM_SETTINGS_MISMATCH');
    }
  }

  /** Remove the pool's name, unless other live processes are attached to it
   * (throws FAIRSEM_IN_USE; this process's own handles and crashed processes
   * do not count).  With force, removes it anyway: processes attached keep
   * using the removed pool, new opens make a new one.  Returns false when
   * there was none (with missingOk, the default), else throws ENOENT. */
  static unlink(name, { missingOk = true, force = false } = {}) {
    try {
      call(native.unlink, name, force ? native.UNLINK_FORCE : 0);
      return true;
    } catch (err) {
      if (err.code === 'ENOENT' && missingOk) return false;
      throw err;
    }
  }

  /** The pool's name, or null for a private pool. */
  get name() {
    return this.#name;
  }

  get closed() {
    return this.#closed;
  }

  /** Requests of this object waiting for a slot now. */
  get waiting() {
    return this.#pending.size;
  }

  /** Register `id` (a non-empty string of at most 63 bytes) through this
   * handle.  weight (default 1) sets its share under the built-in rule for
   * every process: share = max(minShare, maxSlots * weight / sum of the
   * demanding tenants' weights).  Registrations are counted: every call is
   * a registration of its own (the library counts them per process), so
   * concurrent users of one id never end each other's; the tenant stays
   * registered until the last of them is closed. */
  tenant(id, { weight = 1 } = {}) {
    if (this.#closed) throw closedError();
    if (typeof id !== 'string' || id === '') throw invalid('tenant id must be a non-empty string');
    const bytes = Buffer.byteLength(id, 'utf8');
    if (bytes > native.TENANT_ID_MAX) {
      throw new FairsemError(
        `tenant id ${JSON.stringify(id)} is ${bytes} bytes (UTF-8); the limit is ${native.TENANT_ID_MAX}`,
        'ENAMETOOLONG', -osErrno.ENAMETOOLONG);
    }
    checkInt(weight, 'weight', 1, 0xffffffff, false);
    const handle = call(native.register, this.#handle, id, weight);
    return new Tenant(this, handle, id, weight);
  }

  /** @internal */
  _acquire(tenant, { signal, timeoutMs } = {}) {
    if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !(timeoutMs >= 0))) {
      return Promise.reject(invalid('timeoutMs must be a non-negative number'));
    }
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }));
    if (this.#closed || tenant.closed) return Promise.reject(notRegistered(tenant.id));
    const id = this.#nextId++;
    let req;
    try {
      req = call(native.requestStart, this.#handle, tenant._handle, id);
    } catch (err) {
      return Promise.reject(err);
    }
    if (typeof req === 'bigint') return Promise.resolve(new Slot(tenant, req));
    if (timeoutMs === 0) return this.#takeOrTimeout(req, tenant);

    return new Promise((resolve, reject) => {
      let timer;
      const onAbort = () => {
        if (!this.#pending.delete(id)) return;
        cleanup();
        native.requestCancel(req); // a grant that raced the abort is given back
        reject(new AbortError(undefined, { cause: signal.reason }));
      };
      const cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        if (signal) unwatchAbort(signal, onAbort);
      };
      this.#pending.set(id, { req, tenant, resolve, reject, cleanup });
      if (signal) watchAbort(signal, onAbort);
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          if (!this.#pending.delete(id)) return;
          cleanup();
          this.#takeOrTimeout(req, tenant).then(resolve, reject);
        }, timeoutMs);
      }
    });
  }

  #takeOrTimeout(req, tenant) {
    // A grant that raced the timeout is kept (as fairsem_acquire_timeout does).
    const tag = native.requestTake(req);
    if (tag !== null) return Promise.resolve(new Slot(tenant, tag));
    return Promise.reject(new FairsemError(
      `acquiring for tenant ${JSON.stringify(tenant.id)}: timed out`, 'ETIMEDOUT', native.ETIMEDOUT));
  }

  #dispatch(ids, codes, tags) {
    for (let i = 0; i < ids.length; i++) {
      const entry = this.#pending.get(ids[i]);
      if (entry === undefined) continue; // cannot happen: a request given up is never reported
      this.#pending.delete(ids[i]);
      entry.cleanup();
      if (codes[i] === 0) entry.resolve(new Slot(entry.tenant, tags[i]));
      else entry.reject(codeError(codes[i], `acquiring for tenant ${JSON.stringify(entry.tenant.id)}`));
    }
  }

  /** The whole pool as every process sees it. */
  stats() {
    if (this.#closed) throw closedError();
    return call(native.stats, this.#handle);
  }

  /** The pool's settings. */
  info() {
    if (this.#closed) throw closedError();
    return call(native.info, this.#handle);
  }

  /** Take back now what dead processes held (waiters also do it within ~20 ms). */
  reap() {
    if (this.#closed) throw closedError();
    return call(native.reap, this.#handle);
  }

  /** False once the pool's name was unlinked or now names another pool. */
  isLinked() {
    if (this.#closed) throw closedError();
    return call(native.checkLinked, this.#handle);
  }

  /** Detach: slots held and requests waiting through this object are given
   * back (waiting acquires reject with FAIRSEM_CLOSED).  Idempotent. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    native.close(this.#handle);
    for (const entry of pending) {
      entry.cleanup();
      entry.reject(closedError());
    }
  }

  [Symbol.dispose]() {
    this.close();
  }

  async [Symbol.asyncDispose]() {
    this.close();
  }

  get [Symbol.toStringTag]() {
    return 'fairsem.FairShareSemaphore';
  }
}

module.exports = {
  FairShareSemaphore,
  Tenant,
  Slot,
  FairsemError,
  AbortError,
  version: native.version(),
  waitBucketBoundsNs: Object.freeze(native.waitBucketBounds()),
};
