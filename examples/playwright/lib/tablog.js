'use strict';
// The log of every tab taken and given back: one JSON line per event,
// appended (O_APPEND) while the slot is held: an 'acquire' line right after
// the slot is granted, a 'release' line right before it is given back.  So
// the file's line order is a valid order of the events for every process,
// and counting along it never understates how many tabs were open at once.
const fs = require('node:fs');

function openTabLog(file) {
  if (!file) return { write() {}, close() {} };
  const fd = fs.openSync(file, 'a');
  return {
    write(event, fields) {
      const line = JSON.stringify({
        t: Number((performance.timeOrigin + performance.now()).toFixed(3)),
        event,
        pid: process.pid,
        ...fields,
      });
      fs.writeSync(fd, line + '\n');
    },
    close() {
      fs.closeSync(fd);
    },
  };
}

function readTabLog(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Walk the log: concurrency overall and per tenant, overlap of tenants. */
function analyse(events, poolSize) {
  let inUse = 0;
  let max = 0;
  const perTenant = new Map();
  const maxPerTenant = new Map();
  const indexes = new Map(); // index -> tenant holding it
  let bothAtOnce = 0; // events at which every tenant held a tab
  const problems = [];
  const tenants = [...new Set(events.map((e) => e.tenant))];
  for (const e of events) {
    const n = perTenant.get(e.tenant) ?? 0;
    if (e.event === 'acquire') {
      inUse++;
      perTenant.set(e.tenant, n + 1);
      if (indexes.has(e.index)) problems.push(`tab ${e.index} handed out twice`);
      indexes.set(e.index, e.tenant);
    } else if (e.event === 'release') {
      inUse--;
      perTenant.set(e.tenant, n - 1);
      indexes.delete(e.index);
    }
    max = Math.max(max, inUse);
    maxPerTenant.set(e.tenant, Math.max(maxPerTenant.get(e.tenant) ?? 0, perTenant.get(e.tenant)));
    if (inUse > poolSize) problems.push(`${inUse} tabs open at once, pool is ${poolSize}`);
    if (tenants.length > 1 && tenants.every((t) => (perTenant.get(t) ?? 0) > 0)) bothAtOnce++;
  }
  if (inUse !== 0) problems.push(`${inUse} tabs never given back`);
  return {
    pages: events.filter((e) => e.event === 'acquire').length,
    max,
    maxPerTenant: Object.fromEntries(maxPerTenant),
    tenants,
    concurrentEvents: bothAtOnce,
    problems,
  };
}

module.exports = { openTabLog, readTabLog, analyse };
