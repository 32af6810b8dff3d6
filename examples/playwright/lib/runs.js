'use strict';
// What the end-to-end checks share: running `playwright test` against the
// real Chromium with a given pool and tab log, and the checks read from
// that log (lib/tablog.js says what they mean).
const { spawn } = require('node:child_process');
const path = require('node:path');

const here = path.resolve(__dirname, '..');
const cli = require.resolve('@playwright/test/cli');

/** Run `playwright test` in examples/playwright; resolves to its exit code
 * (or signal name).  Output goes to ours, each line prefixed with `tag`. */
function runPlaywright({ env, tag, timeoutMs = 300_000 }) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'test'], {
      cwd: here,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1', CI: '1', ...env },
    });
    const prefix = (stream, out) => {
      let rest = '';
      stream.on('data', (chunk) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop();
        for (const l of lines) out.write(`${tag}${l}\n`);
      });
      stream.on('end', () => rest && out.write(`${tag}${rest}\n`));
    };
    prefix(child.stdout, process.stdout);
    prefix(child.stderr, process.stderr);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
  });
}

/** check(ok, what) prints and remembers; finish() exits 1 if any failed. */
function checker(name) {
  const failures = [];
  const check = (ok, what) => {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failures.push(what);
    return ok;
  };
  const finish = () => {
    if (failures.length) {
      console.log(`${name}: ${failures.length} check(s) failed`);
      process.exit(1);
    }
    console.log(`${name}: all checks passed`);
  };
  return { check, finish };
}

/** The limit and the fair-share checks of an analyse() result; with
 * minHandoffs, also that tabs changed hands while both tenants waited (so
 * the fairness checks were not vacuous). */
function checkPool(check, a, poolSize, { minHandoffs = 0 } = {}) {
  check(a.problems.length === 0, `log consistent${a.problems.length ? ': ' + a.problems.slice(0, 5).join('; ') : ''}`);
  check(a.max <= poolSize, `pool limit held: at most ${a.max} tabs open at once, pool size ${poolSize}`);
  check(a.max === poolSize, `saturated pool fully used: max concurrent tabs ${a.max} == pool size ${poolSize}`);
  check(a.tenants.length === 2, `two tenants: ${a.tenants.join(', ')}`);
  const c = a.contested;
  check(c.handoffs >= minHandoffs, `both tenants waited for tabs at once: ${c.seconds}s contested, ` +
    `${c.handoffs} tabs changed hands meanwhile (want >= ${minHandoffs})`);
  check(c.levelViolations === 0, `while both waited, each was entitled to its share ${c.share} ` +
    `(or the other held a surplus from before): ${c.levelViolations} of ${c.moments} moments violate it`);
  check(c.handoffViolations === 0, `no tab went to a tenant over its share while the other was under it ` +
    `(${c.handoffViolations} of ${c.handoffs} handoffs)`);
  console.log(`while both waited: mean tabs held ${JSON.stringify(c.meanHeld)}, share ${c.share}; ` +
    `time at >= share as logged ${JSON.stringify(c.atShare)}, counting tabs in transit ${JSON.stringify(c.entitledAtShare)}`);
}

module.exports = { runPlaywright, checker, checkPool };
