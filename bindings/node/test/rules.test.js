'use strict';
// Custom share rules are stored in the pool as data: the creator's function
// is evaluated once for every number of demanding tenants, so any process
// (this one, another language, the fairsem command) opens the pool without
// it and computes the same shares.
const test = require('node:test');
const assert = require('node:assert/strict');
const { FairShareSemaphore } = require('..');
const { freshPool, uniqueName } = require('./helpers');

function twoEach() {
  return 2;
}

test('a pool created with a rule serves its shares to openers without it', async (t) => {
  const creator = await freshPool(t, 'rule', { maxSlots: 6, shareCalculator: twoEach });
  assert.equal(creator.info().ruleName, 'twoEach');
  const plain = await FairShareSemaphore.open({ name: creator.name });
  t.after(() => plain.close());
  const a = plain.tenant('a');
  const held = [a.tryAcquire(), a.tryAcquire(), a.tryAcquire()];
  assert.deepEqual(held.map((s) => s !== null), [true, true, false], 'the stored rule gives 2 of 6');
  const share = (sem) => sem.stats().tenants.find((x) => x.id === 'a').share;
  assert.equal(share(plain), 2);
  assert.equal(share(creator), 2);
  for (const slot of held.slice(0, 2)) slot.release();
  a.close();
});

test('only a different rule is refused', async (t) => {
  const creator = await freshPool(t, 'rule-mismatch', { maxSlots: 6, shareCalculator: twoEach });
  const same = await FairShareSemaphore.open({ name: creator.name, maxSlots: 6, shareCalculator: twoEach });
  same.close();
  await assert.rejects(
    FairShareSemaphore.open({ name: creator.name, maxSlots: 6, shareCalculator: () => 3, shareRuleName: 'twoEach' }),
    { code: 'FAIRSEM_RULE_MISMATCH' },
    'same name, other shares',
  );
  await assert.rejects(
    FairShareSemaphore.open({ name: creator.name, maxSlots: 6, shareCalculator: function threeEach() { return 3; } }),
    { code: 'FAIRSEM_RULE_MISMATCH' },
    'other name',
  );
});

test('bad rules are refused before anything is created', async (t) => {
  const name = uniqueName('rule-bad');
  t.after(() => FairShareSemaphore.unlink(name));
  const anonymous = [() => 1][0]; // (a property's arrow function would be named after the property)
  await assert.rejects(FairShareSemaphore.open({ name, maxSlots: 4, shareCalculator: anonymous }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /shareRuleName is required/,
  });
  await assert.rejects(FairShareSemaphore.open({ name, maxSlots: 4, shareCalculator: 'x' }), {
    code: 'ERR_INVALID_ARG_VALUE',
  });
  await assert.rejects(
    FairShareSemaphore.open({ name, maxSlots: 4, shareCalculator: () => NaN, shareRuleName: 'nan' }),
    { code: 'ERR_INVALID_ARG_VALUE', message: /not a finite number/ },
  );
  await assert.rejects(
    FairShareSemaphore.open({ name, maxSlots: 4, shareCalculator: twoEach, shareRuleName: 'x'.repeat(32) }),
    { code: 'ERR_INVALID_ARG_VALUE', message: /32 bytes; the limit is 31/ },
  );
  assert.equal(FairShareSemaphore.unlink(name), false, 'nothing was created');
});
