'use strict';
// The tab-log checks on hand-written logs: they pass a fair history and
// catch the unfair ones (node --test lib/).
const test = require('node:test');
const assert = require('node:assert/strict');
const { analyse, interleaving } = require('./tablog');

/** Events from compact specs: 'a+' request of a, 'a>2' grant of tab 2 to a,
 * 'a<2' release of tab 2 by a; one second apart. */
const log = (...specs) => specs.map((s, i) => {
  const [tenant, op, index] = [s[0] === 'a' ? 'tenant-a' : 'tenant-b', s[1], Number(s.slice(2))];
  const event = { '+': 'request', '>': 'grant', '<': 'release' }[op];
  return { t: i * 1000, event, tenant, ...(event === 'request' ? {} : { index }) };
});

// Both tenants hold 2 of 4 and each has two requests waiting; then tabs
// change hands, each going back to the tenant that gave it up.
const fair = [
  'a+', 'a>0', 'b+', 'b>1', 'a+', 'a>2', 'b+', 'b>3', 'a+', 'a+', 'b+', 'b+',
  'a<0', 'a>0', 'b<1', 'b>1', 'a<2', 'a>2', 'b<3', 'b>3', 'a<0', 'a<2', 'b<1', 'b<3',
];

test('a fair history passes', () => {
  const r = analyse(log(...fair), 4);
  assert.deepEqual(r.problems, []);
  assert.equal(r.max, 4);
  assert.equal(r.contested.handoffs, 3);
  assert.equal(r.contested.levelViolations, 0);
  assert.equal(r.contested.handoffViolations, 0);
  assert.deepEqual(r.contested.entitledAtShare, { 'tenant-a': 1, 'tenant-b': 1 });
});

test('a tab handed to the tenant at its share while the other is under it is caught', () => {
  // b gives tab 1 back, and it goes to a (already at 2) instead of b.
  const r = analyse(log('a+', 'a>0', 'b+', 'b>1', 'a+', 'a>2', 'b+', 'b>3', 'a+', 'a+', 'b+', 'b+',
    'b<1', 'a>1', 'a<0', 'b>0', 'a<1', 'a>1', 'b<3', 'b>3', 'a<2', 'a<1', 'b<0', 'b<3'), 4);
  assert.deepEqual(r.problems.filter((p) => !p.includes('tab 1 goes to tenant-a')), []);
  assert.equal(r.contested.handoffViolations, 1, JSON.stringify(r.contested));
});

test('a tenant left under its share while nobody is over it is caught', () => {
  // a holds 2, b 1, and tab 3 stays idle although b waits.
  const r = analyse(log('a+', 'a>0', 'a+', 'a>1', 'b+', 'b>2', 'b+', 'a+',
    'a<0', 'b>0', 'a<1', 'a>1', 'a<1', 'b<2', 'b<0'), 4);
  assert.ok(r.contested.levelViolations >= 1, JSON.stringify(r.contested));
  assert.ok(r.problems.some((p) => p.includes('under its share')));
});

test('a surplus held from before the contest is allowed while it drains', () => {
  // a took all 4 tabs alone; b arrives; every tab a gives back goes to b
  // until b has its share.
  const r = analyse(log('a+', 'a+', 'a+', 'a+', 'a>0', 'a>1', 'a>2', 'a>3', 'a+', 'b+', 'b+', 'b+',
    'a<0', 'b>0', 'a<1', 'b>1', 'a<2', 'a>2', 'b<0', 'b>0', 'a<3', 'b<0', 'b<1', 'a<2'), 4);
  assert.deepEqual(r.problems, []);
  assert.equal(r.contested.levelViolations, 0);
  assert.equal(r.contested.handoffViolations, 0);
});

test('the surplus tenant taking back its own tab while the other is under its share is caught', () => {
  const r = analyse(log('a+', 'a+', 'a+', 'a+', 'a>0', 'a>1', 'a>2', 'a>3', 'a+', 'b+', 'b+',
    'a<0', 'a>0', 'a<1', 'b>1', 'a<2', 'b>2', 'a<0', 'a<3', 'b<1', 'b<2'), 4);
  assert.equal(r.contested.handoffViolations, 1, JSON.stringify(r.contested));
});

test('a tab over the pool size or handed out twice is caught', () => {
  const r = analyse(log('a+', 'a>0', 'b+', 'b>0', 'b<0', 'a<0'), 1);
  assert.ok(r.problems.some((p) => p.includes('handed out twice')));
  assert.ok(r.problems.some((p) => p.includes('2 tabs open at once')));
});

test('interleaving tells tenants run together from one after the other', () => {
  assert.ok(interleaving(log(...fair)) > 0.5);
  assert.equal(interleaving(log('a+', 'a>0', 'a<0', 'a+', 'a>0', 'a<0', 'b+', 'b>0', 'b<0')), 0);
});
