// ES-module import of the installed fairsem package: named and default
// imports work, and name exactly what require('fairsem') exports.
import { createRequire } from 'node:module';
import fairsem, * as named from 'fairsem';

const cjs = createRequire(import.meta.url)('fairsem');
const names = Object.keys(named).filter((n) => n !== 'default').sort();
const expected = Object.keys(cjs).sort();
if (names.join() !== expected.join()) {
  throw new Error(`ESM exports ${names} differ from CommonJS exports ${expected}`);
}
if (fairsem !== cjs || named.FairShareSemaphore !== cjs.FairShareSemaphore) {
  throw new Error('the ES module is not the CommonJS module');
}
const sem = await named.FairShareSemaphore.open({ maxSlots: 2 });
const slot = sem.tenant('esm').tryAcquire();
if (!slot || sem.stats().slotsInUse !== 1) throw new Error('a private pool did not hand out a slot');
slot.release();
sem.close();
console.log('esm ok', named.version);
