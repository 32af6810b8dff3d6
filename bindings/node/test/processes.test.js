'use strict';
// Several Node processes (child_process.fork) on one named pool.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');
const { FairShareSemaphore, FairsemError } = require('..');
const { freshPool, until, PATIENCE_MS } = require('./helpers');

const WORKER = path.join(__dirname, 'fixtures', 'worker.js');

/** A forked worker with a promise-returning `request(cmd)` and its messages. */
function spawnWorker(t) {
  const child = fork(WORKER, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages = [];
  const waiters = [];
  child.on('message', (m) => {
    messages.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const next = (pred) => new Promise((resolve, reject) => {
    const look = () => {
      const i = messages.findIndex(pred);
      if (i >= 0) return resolve(messages.splice(i, 1)[0]);
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error('worker died'));
      waiters.push(look);
    };
    look();
  });
  child.on('exit', () => { for (const w of waiters.splice(0)) w(); });
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const request = async (msg) => {
    child.send(msg);
    const reply = await next((m) => m.ok === msg.cmd || m.error);
    if (reply.error) throw new Error(`worker: ${reply.error}`);
    return reply;
  };
  return { child, messages, next, request, ready: next((m) => m.ok === 'ready') };
}

test('three processes waiting on a full pool get fair shares when it frees', async (t) => {
  const sem = await freshPool(t, 'procshare', { maxSlots: 6 });
  const parent = sem.tenant('parent');
  const held = [];
  for (let i = 0; i < 6; i++) held.push(await parent.acquire());
  const workers = [spawnWorker(t), spawnWorker(t), spawnWorker(t)];
  await Promise.all(workers.map((w) => w.ready));
  await Promise.all(workers.map((w, i) => w.request({ cmd: 'open', name: sem.name, tenant: `child-${i}` })));
  await Promise.all(workers.map((w) => w.request({ cmd: 'want', n: 5 })));
  await until(() => sem.stats().waiters === 15, { what: '15 queued requests' });
  assert.equal(sem.stats().attachedProcs, 4);
  for (const s of held) s.release();
  parent.close();
  // 3 demanding tenants on 6 slots: 2 each, whichever process they live in.
  await until(() => sem.stats().slotsInUse === 6, { what: 'the pool in use' });
  const st = sem.stats();
  assert.deepEqual(st.tenants.map((x) => [x.id, x.held, x.share, x.waiting]).sort(),
    [['child-0', 2, 2, 3], ['child-1', 2, 2, 3], ['child-2', 2, 2, 3]]);
  await Promise.all(workers.map((w) => w.request({ cmd: 'exit' })));
  await until(() => sem.stats().attachedProcs === 1, { what: 'children detached' });
  const after = sem.stats();
  assert.equal(after.slotsInUse, 0);
  assert.equal(after.waiters, 0, 'detaching gave back the queued requests');
});

test('concurrent workers in 3 processes never exceed the pool; indexes never shared', async (t) => {
  const sem = await freshPool(t, 'proclimit', { maxSlots: 4 });
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fairsem-node-')), 'events.log');
  t.after(() => fs.rmSync(path.dirname(log), { recursive: true, force: true }));
  const workers = [spawnWorker(t), spawnWorker(t), spawnWorker(t)];
  await Promise.all(workers.map((w) => w.ready));
  await Promise.all(workers.map((w, i) => w.request({ cmd: 'open', name: sem.name, tenant: `t${i % 2}` })));
  let maxSeen = 0;
  const sampler = setInterval(() => { maxSeen = Math.max(maxSeen, sem.stats().slotsInUse); }, 1);
  await Promise.all(workers.map((w) => w.request({ cmd: 'work', jobs: 20, concurrency: 4, ms: 3, log })));
  clearInterval(sampler);
  // Lines are appended while the slot is held, so the file's order is a
  // valid serialisation of the holds.
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' '));
  assert.equal(lines.length, 3 * 20 * 2);
  let inUse = 0;
  let peak = 0;
  const byIndex = new Map();
  for (const [, , pid, event, index] of lines) {
    if (event === 'acquire') {
      inUse++;
      assert.equal(byIndex.get(index), undefined, `slot ${index} given twice`);
      byIndex.set(index, pid);
    } else {
      inUse--;
      byIndex.delete(index);
    }
    peak = Math.max(peak, inUse);
    assert.ok(inUse <= 4, 'pool limit exceeded');
  }
  t.diagnostic(`peak concurrent holds ${peak} (log), ${maxSeen} (sampled); pool 4`);
  assert.equal(peak, 4, 'saturated pool fully used');
  assert.ok(maxSeen <= 4);
  await Promise.all(workers.map((w) => w.request({ cmd: 'exit' })));
  assert.equal(sem.stats().slotsInUse, 0);
});

test('a process killed while holding a slot loses it to a waiter', async (t) => {
  const sem = await freshPool(t, 'crash', { maxSlots: 1 });
  const worker = spawnWorker(t);
  await worker.ready;
  await worker.request({ cmd: 'open', name: sem.name, tenant: 'doomed' });
  await worker.request({ cmd: 'hold' });
  const me = sem.tenant('survivor');
  const waiting = me.acquire({ timeoutMs: PATIENCE_MS });
  await until(() => sem.stats().waiters === 1);
  const started = performance.now();
  worker.child.kill('SIGKILL');
  const slot = await waiting;
  t.diagnostic(`the dead holder's slot came back after ${(performance.now() - started).toFixed(1)} ms`);
  assert.equal(slot.index, 0);
  slot.release();
});

const exited = (child) => new Promise((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) resolve();
  else child.once('exit', () => resolve());
});

test('unlink is refused while another process is attached, allowed once it exits', async (t) => {
  const sem = await freshPool(t, 'unlinkbusy', { maxSlots: 2 });
  const worker = spawnWorker(t);
  await worker.ready;
  await worker.request({ cmd: 'open', name: sem.name, tenant: 'attached' });
  await worker.request({ cmd: 'hold' });
  assert.throws(() => FairShareSemaphore.unlink(sem.name), (err) => {
    assert.ok(err instanceof FairsemError);
    assert.equal(err.code, 'FAIRSEM_IN_USE');
    assert.equal(err.errno, -4012);
    assert.match(err.message, /attached/);
    return true;
  });
  assert.ok(fs.existsSync(`/dev/shm${sem.name}`));
  assert.equal(sem.isLinked(), true);
  await worker.request({ cmd: 'exit' });
  await exited(worker.child);
  // Only this process is left: its own handle does not count.
  assert.equal(FairShareSemaphore.unlink(sem.name), true);
  assert.equal(sem.isLinked(), false);
  assert.equal(FairShareSemaphore.unlink(sem.name), false);
});

test('a killed process does not keep a pool from being unlinked', async (t) => {
  const sem = await freshPool(t, 'unlinkkill', { maxSlots: 2 });
  const worker = spawnWorker(t);
  await worker.ready;
  await worker.request({ cmd: 'open', name: sem.name, tenant: 'doomed' });
  assert.throws(() => FairShareSemaphore.unlink(sem.name), { code: 'FAIRSEM_IN_USE' });
  worker.child.kill('SIGKILL');
  await exited(worker.child);
  assert.equal(FairShareSemaphore.unlink(sem.name), true);
});

test('unlink with force removes the name under an attached process, which keeps working', async (t) => {
  const sem = await freshPool(t, 'unlinkforce', { maxSlots: 2 });
  const worker = spawnWorker(t);
  await worker.ready;
  await worker.request({ cmd: 'open', name: sem.name, tenant: 'attached' });
  await worker.request({ cmd: 'hold' });
  assert.equal(FairShareSemaphore.unlink(sem.name, { force: true }), true);
  assert.equal(sem.isLinked(), false);
  assert.equal(fs.existsSync(`/dev/shm${sem.name}`), false);
  // The worker and this process still share the removed pool.
  const reply = await worker.request({ cmd: 'hold' });
  assert.equal(typeof reply.index, 'number');
  assert.equal(sem.tenant('me').tryAcquire(), null);
  await worker.request({ cmd: 'exit' });
});
