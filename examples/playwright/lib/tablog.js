'use strict';
// The log of every tab asked for, taken and given back: one JSON line per
// event, appended (O_APPEND, one write per line, so several processes and
// even several Playwright runs may share one file):
//   request  written right before the acquire is queued,
//   grant    written right after the slot is granted,
//   release  written right before the slot is given back.
// So the file's line order is a valid order of the events for every
// process: counting along it never understates how long a request waited
// and never overstates how many tabs were open at once.
const fs = require('node:fs');

function openTabLog(file, common = {}) {
  if (!file) return { write() {}, close() {} };
  const fd = fs.openSync(file, 'a');
  return {
    write(event, fields) {
      const line = JSON.stringify({
        t: Number((performance.timeOrigin + performance.now()).toFixed(3)),
        event,
        pid: process.pid,
        ...common,
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

const SLOT_EVENTS = new Set(['request', 'grant', 'release']);

/** The built-in rule with equal weights: each of D demanding tenants may
 * hold max(1, floor(poolSize / D)) tabs. */
const fairShare = (poolSize, demanding) => Math.max(1, Math.floor(poolSize / Math.max(1, demanding)));

/**
 * Walk the log (request/grant/release events in a valid order) and check
 * the pool: its limit, and each tenant's fair share while tenants compete.
 *
 * A moment is CONTESTED when every tenant has a request waiting (logged,
 * not yet granted).  There the built-in rule promises each of the D
 * tenants its share, poolSize / D: a slot that comes back goes to a waiting
 * tenant under its share, never to one at it.  Two things keep the log from
 * showing that literally, and both are accounted for exactly:
 *  - A handoff takes time: the giver logs `release` before giving the slot
 *    back, the taker logs `grant` after it woke.  In between the slot
 *    belongs to neither in the log.  That is the one handoff of slack; it is
 *    removed by looking ahead: a slot that is free in the log counts for
 *    the tenant its next `grant` goes to, if that tenant is waiting (the
 *    slot is in transit to it).  ENTITLED = held + in transit.
 *  - Slots are never taken away: a tenant that got more than its share
 *    while it was alone keeps the extra tabs until it releases them.  So a
 *    tenant may be under its share only while another is over it.
 * Checked at every contested moment:
 *  (level)   every tenant is entitled to at least its share, unless some
 *            other tenant is entitled to more than its share;
 *  (handoff) after a slot changes hands, its new holder is not over its
 *            share while another tenant is under it (a surplus is never
 *            topped up, a deficit is always served first).
 */
function analyse(allEvents, poolSize) {
  const events = allEvents.filter((e) => SLOT_EVENTS.has(e.event));
  const tenants = [...new Set(events.map((e) => e.tenant))];
  const problems = [];

  // Look ahead: the tenant of the next grant of each slot index after each
  // event (and from the start).
  const nextGrant = new Array(events.length);
  const upcoming = new Map();
  for (let k = events.length - 1; k >= 0; k--) {
    nextGrant[k] = new Map(upcoming);
    if (events[k].event === 'grant') upcoming.set(events[k].index, events[k].tenant);
  }
  const freeFor = new Map(upcoming); // free slot index -> tenant its next grant goes to

  const held = new Map(tenants.map((t) => [t, 0]));
  const waiting = new Map(tenants.map((t) => [t, 0]));
  const holder = new Map(); // slot index -> tenant holding it
  const maxPerTenant = new Map(tenants.map((t) => [t, 0]));
  const contested = {
    seconds: 0, moments: 0, handoffs: 0, levelViolations: 0, handoffViolations: 0,
    heldSeconds: new Map(tenants.map((t) => [t, 0])), atShareSeconds: new Map(tenants.map((t) => [t, 0])),
    entitledAtShareSeconds: new Map(tenants.map((t) => [t, 0])),
  };
  let inUse = 0;
  let max = 0;
  let bothAtOnce = 0; // events at which every tenant held a tab

  const entitled = () => {
    const e = new Map(held);
    for (const tenant of freeFor.values()) {
      if (tenant !== undefined && waiting.get(tenant) > 0) e.set(tenant, e.get(tenant) + 1);
    }
    return e;
  };
  const demanding = () => tenants.filter((t) => held.get(t) > 0 || waiting.get(t) > 0).length;
  const isContested = () => tenants.length > 1 && tenants.every((t) => waiting.get(t) > 0);

  for (let k = 0; k < events.length; k++) {
    const e = events[k];
    const wasContested = isContested();
    if (e.event === 'request') {
      waiting.set(e.tenant, waiting.get(e.tenant) + 1);
    } else if (e.event === 'grant') {
      if (waiting.get(e.tenant) <= 0) problems.push(`grant of tab ${e.index} to ${e.tenant} without a request`);
      waiting.set(e.tenant, waiting.get(e.tenant) - 1);
      if (holder.has(e.index)) problems.push(`tab ${e.index} handed out twice`);
      holder.set(e.index, e.tenant);
      freeFor.delete(e.index);
      held.set(e.tenant, held.get(e.tenant) + 1);
      inUse++;
    } else {
      if (holder.get(e.index) !== e.tenant) problems.push(`tab ${e.index} released by ${e.tenant}, not its holder`);
      holder.delete(e.index);
      freeFor.set(e.index, nextGrant[k].get(e.index));
      held.set(e.tenant, held.get(e.tenant) - 1);
      inUse--;
    }
    max = Math.max(max, inUse);
    maxPerTenant.set(e.tenant, Math.max(maxPerTenant.get(e.tenant), held.get(e.tenant)));
    if (inUse > poolSize) problems.push(`${inUse} tabs open at once, pool is ${poolSize}`);
    if (tenants.length > 1 && tenants.every((t) => held.get(t) > 0)) bothAtOnce++;

    if (!isContested()) continue;
    contested.moments++;
    const share = fairShare(poolSize, demanding());
    const ent = entitled();
    const over = tenants.filter((t) => ent.get(t) > share);
    const under = tenants.filter((t) => ent.get(t) < share);
    if (under.length && !over.length) {
      contested.levelViolations++;
      if (contested.levelViolations <= 3) {
        problems.push(`line ${k + 1}: ${under.join(', ')} under its share ${share} while nobody is over it ` +
          `(entitled ${JSON.stringify(Object.fromEntries(ent))})`);
      }
    }
    // A handoff: a slot released at a contested moment, and whom it goes to.
    if (e.event === 'release' && wasContested) {
      contested.handoffs++;
      const to = freeFor.get(e.index);
      if (to !== undefined && ent.get(to) > share && under.some((t) => t !== to)) {
        contested.handoffViolations++;
        if (contested.handoffViolations <= 3) {
          problems.push(`line ${k + 1}: tab ${e.index} goes to ${to} (entitled ${ent.get(to)} > share ${share}) ` +
            `while ${under.join(', ')} is under its share`);
        }
      }
    }
    const next = events[k + 1];
    const dt = next ? Math.max(0, (next.t - e.t) / 1000) : 0;
    contested.seconds += dt;
    for (const t of tenants) {
      contested.heldSeconds.set(t, contested.heldSeconds.get(t) + held.get(t) * dt);
      if (held.get(t) >= share) contested.atShareSeconds.set(t, contested.atShareSeconds.get(t) + dt);
      if (ent.get(t) >= share) contested.entitledAtShareSeconds.set(t, contested.entitledAtShareSeconds.get(t) + dt);
    }
  }
  if (inUse !== 0) problems.push(`${inUse} tabs never given back`);
  for (const t of tenants) if (waiting.get(t) !== 0) problems.push(`${waiting.get(t)} requests of ${t} never granted`);

  const perTenant = (m, scale = 1) => Object.fromEntries([...m].map(([t, v]) => [t, Number((v * scale).toFixed(2))]));
  return {
    pages: events.filter((e) => e.event === 'grant').length,
    max,
    maxPerTenant: Object.fromEntries(maxPerTenant),
    tenants,
    concurrentEvents: bothAtOnce,
    contested: {
      seconds: Number(contested.seconds.toFixed(2)),
      moments: contested.moments,
      handoffs: contested.handoffs,
      levelViolations: contested.levelViolations,
      handoffViolations: contested.handoffViolations,
      share: fairShare(poolSize, tenants.length),
      // Time-weighted over contested time: tabs held on average, and the
      // fraction of the time each held (as logged) / was entitled to its share.
      meanHeld: perTenant(contested.heldSeconds, contested.seconds ? 1 / contested.seconds : 0),
      atShare: perTenant(contested.atShareSeconds, contested.seconds ? 1 / contested.seconds : 0),
      entitledAtShare: perTenant(contested.entitledAtShareSeconds, contested.seconds ? 1 / contested.seconds : 0),
    },
    problems,
  };
}

/** How much the tenants' requests overlapped in time: the part of the
 * whole span (first to last request) during which every tenant still had
 * requests to come and had already made one.  Near 1 when their tests are
 * interleaved, near 0 when one tenant's tests ran after the other's. */
function interleaving(allEvents) {
  const requests = allEvents.filter((e) => e.event === 'request');
  if (!requests.length) return 0;
  const byTenant = new Map();
  for (const e of requests) {
    const r = byTenant.get(e.tenant) ?? { first: e.t, last: e.t };
    r.first = Math.min(r.first, e.t);
    r.last = Math.max(r.last, e.t);
    byTenant.set(e.tenant, r);
  }
  const spans = [...byTenant.values()];
  const span = Math.max(...spans.map((s) => s.last)) - Math.min(...spans.map((s) => s.first));
  const common = Math.min(...spans.map((s) => s.last)) - Math.max(...spans.map((s) => s.first));
  return span > 0 ? Math.max(0, common) / span : 0;
}

module.exports = { openTabLog, readTabLog, analyse, interleaving, fairShare };
