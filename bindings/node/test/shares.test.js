'use strict';
// Fair shares: with every weight 1 a demanding tenant's share is
// maxSlots / D (the seed's table), raised to minShare; weights scale it.
const test = require('node:test');
const assert = require('node:assert/strict');
const { freshPool, until, delay } = require('./helpers');

// demanding tenants -> share of each, for 10 slots
const SEED_TABLE = [[1, 10], [2, 5], [3, 3], [5, 2], [10, 1]];

/** D tenants ask for more than they can get while `blocker` holds the whole
 * pool; then the blocker leaves and what each gets is its share. */
async function settle(t, sem, tenants, perTenant, maxSlots) {
  const blocker = sem.tenant('blocker');
  const held = [];
  for (let i = 0; i < maxSlots; i++) held.push(await blocker.acquire());
  const ac = new AbortController();
  const got = new Map(tenants.map((ten) => [ten.id, []]));
  const waits = [];
  for (let round = 0; round < perTenant; round++) {
    for (const ten of tenants) {
      waits.push(ten.acquire({ signal: ac.signal }).then((slot) => got.get(ten.id).push(slot), (err) => {
        if (err.code !== 'ABORT_ERR' && err.code !== 'FAIRSEM_CLOSED') throw err;
      }));
    }
  }
  await until(() => sem.stats().waiters === perTenant * tenants.length, { what: 'all requests queued' });
  for (const slot of held) slot.release();
  blocker.close();
  t.after(async () => {
    ac.abort();
    await Promise.all(waits);
    for (const slots of got.values()) for (const slot of slots) slot.release();
  });
  return got;
}

for (const [demanding, share] of SEED_TABLE) {
  test(`${demanding} demanding tenant(s) on 10 slots get ${share} each`, async (t) => {
    const sem = await freshPool(t, 'share', { maxSlots: 10 });
    const tenants = Array.from({ length: demanding }, (_, i) => sem.tenant(`tenant-${i}`));
    const got = await settle(t, sem, tenants, 12, 10);
    const want = Math.min(share * demanding, 10);
    await until(() => [...got.values()].reduce((n, s) => n + s.length, 0) === want, { what: `${want} grants` });
    await delay(30); // nothing more may come
    for (const [id, slots] of got) assert.equal(slots.length, share, `tenant ${id} holds its share`);
    const stats = sem.stats();
    assert.equal(stats.demandingTenants, demanding);
    assert.equal(stats.slotsInUse, want);
    for (const ts of stats.tenants) {
      assert.equal(ts.share, share, `${ts.id}: share`);
      assert.equal(ts.held, share, `${ts.id}: held`);
      assert.equal(ts.waiting, 12 - share, `${ts.id}: waiting`);
    }
    // Distinct slot indexes, all in 0..9.
    const indexes = [...got.values()].flat().map((s) => s.index);
    assert.equal(new Set(indexes).size, indexes.length);
    for (const i of indexes) assert.ok(i >= 0 && i < 10);
  });
}

test('a newcomer gets its share from the slots others release', async (t) => {
  const sem = await freshPool(t, 'newcomer', { maxSlots: 10 });
  const a = sem.tenant('a');
  const b = sem.tenant('b');
  const aSlots = [];
  for (let i = 0; i < 10; i++) aSlots.push(await a.acquire()); // alone: share 10
  const ac = new AbortController();
  t.after(() => ac.abort());
  const bSlots = [];
  const bWaits = Array.from({ length: 8 }, () =>
    b.acquire({ signal: ac.signal }).then((s) => bSlots.push(s), () => {}));
  const aAgain = a.acquire({ signal: ac.signal }).then((s) => aSlots.push(s), () => {});
  await until(() => sem.stats().waiters === 9);
  // A gives back 5: every one goes to B (A is over its share of 5).
  for (let i = 0; i < 5; i++) aSlots.shift().release();
  await until(() => bSlots.length === 5, { what: 'B reaching 5' });
  await delay(20);
  assert.equal(bSlots.length, 5);
  assert.equal(aSlots.length, 5);
  assert.deepEqual(sem.stats().tenants.map((x) => [x.id, x.held, x.share]).sort(),
    [['a', 5, 5], ['b', 5, 5]]);
  ac.abort();
  await Promise.all([...bWaits, aAgain]);
  for (const s of [...aSlots, ...bSlots]) s.release();
  assert.equal(sem.stats().slotsInUse, 0);
});

test('weights scale shares; minShare raises them', async (t) => {
  const sem = await freshPool(t, 'weights', { maxSlots: 8 });
  const heavy = sem.tenant('heavy', { weight: 3 });
  const light = sem.tenant('light', { weight: 1 });
  const got = await settle(t, sem, [heavy, light], 10, 8);
  await until(() => got.get('heavy').length === 6 && got.get('light').length === 2, { what: '6/2 split' });
  await delay(20);
  assert.equal(got.get('heavy').length, 6);
  assert.equal(got.get('light').length, 2);

  const sem2 = await freshPool(t, 'minshare', { maxSlots: 4, minShare: 2 });
  const tenants = ['x', 'y', 'z'].map((id) => sem2.tenant(id));
  await settle(t, sem2, tenants, 3, 4);
  await until(() => sem2.stats().slotsInUse === 4, { what: '4 in use' });
  for (const ts of sem2.stats().tenants) assert.equal(ts.share, 2, 'max(minShare 2, 4/3)');
});
