// serve supervising both colors: start, status, drained restart, backoff, refusal.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startWithApps, waitFor } from '../helpers/apps.js';
import { get, request } from '../helpers/http.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('serve starts both colors; status shows them running with pids', async (t) => {
  const p = await startWithApps(t);
  await waitFor(async () => {
    const s = await p.bg.status();
    return s.colors.blue.state === 'running' && s.colors.green.state === 'running';
  }, 15_000, 'both colors running');
  const s = await p.bg.status();
  for (const c of ['blue', 'green'] as const) {
    t.type(s.colors[c].pid, 'number');
    t.equal(readFileSync(path.join(p.root, c, 'etc', 'app.pid'), 'utf8').trim(), String(s.colors[c].pid), 'pidfile');
    t.equal(s.colors[c].healthy, true);
    t.equal(s.colors[c].restarts, 0);
  }
  t.match(await get(p.port, 'live.test'), /^blue\b/);
  t.match(await get(p.port, 'next.live.test'), /^green\b/);
  const pids = [s.colors.blue.pid as number, s.colors.green.pid as number];
  await p.stop();
  t.notOk(pids.some(alive), 'shutdown stopped both apps');
});

t.test('restart of next waits for its slow request before stopping the process', async (t) => {
  const p = await startWithApps(t);
  await waitFor(async () => (await p.bg.status()).colors.green.state === 'running');
  const oldPid = (await p.bg.status()).colors.green.pid;
  const slow = request(p.port, 'next.live.test', { path: '/slow?ms=800' });
  await waitFor(() => p.bg.target('green').inflight > 0);
  const r = await p.bg.restartColor('green');
  t.equal(r.cutOff, 0, 'nothing cut off');
  const reply = await slow;
  t.equal(reply.status, 200, 'the slow request completed');
  t.match(reply.body, /^green\b/);
  const s = await p.bg.status();
  t.not(s.colors.green.pid, oldPid, 'a new process');
  t.equal(s.colors.green.state, 'running');
  t.notOk(alive(oldPid as number), 'the old process is gone');
});

t.test('an app that exits at once goes into backoff and cutover to it is refused', async (t) => {
  const p = await startWithApps(t, { env: { green: { FIXTURE_EXIT_AT_START: '1' } } });
  await waitFor(async () => ((await p.bg.status()).colors.green.restarts as number) >= 2, 15_000, 'two restarts');
  const s = await p.bg.status();
  t.match(s.colors.green.state, /crashed|backoff|starting/);
  t.match(s.colors.green.lastExit, { code: 1 });
  await t.rejects(p.bg.cutover(), { code: 'BG_UNHEALTHY', message: /green is not healthy/ });
  t.equal(p.bg.roles.live, 'blue');
  t.match(await get(p.port, 'live.test'), /^blue\b/);
});

t.test('stopping the live color needs force; a stopped color answers 502 at once', async (t) => {
  // A holdMs far beyond what a loaded machine may take to answer at once.
  const p = await startWithApps(t, { settings: { holdMs: 60_000 } });
  await waitFor(async () => (await p.bg.status()).colors.green.state === 'running');
  await t.rejects(p.bg.stopColor('blue'), { code: 'BG_STATE', message: /blue is live/ });
  await p.bg.stopColor('green');
  t.equal((await p.bg.status()).colors.green.state, 'stopped');
  const t0 = Date.now();
  const r = await request(p.port, 'next.live.test');
  t.equal(r.status, 502);
  t.ok(Date.now() - t0 < 30_000, 'not held for the full holdMs (60 s)');
  await p.bg.startColor('green');
  t.match(await get(p.port, 'next.live.test'), /^green\b/);
});

t.test('a supervised color without a release answers 502 at once, not after holdMs', async (t) => {
  // A holdMs far beyond what a loaded machine may take to answer at once.
  const p = await startWithApps(t, { colors: ['blue'], settings: { holdMs: 60_000 } });
  const t0 = Date.now();
  const r = await request(p.port, 'next.live.test');
  t.equal(r.status, 502);
  t.ok(Date.now() - t0 < 30_000, `answered in ${Date.now() - t0} ms (holdMs is 60000)`);
});

t.test('two starts of one color at once leave exactly one app running', async (t) => {
  const p = await startWithApps(t);
  await waitFor(async () => (await p.bg.status()).colors.green.state === 'running');
  await Promise.all([p.bg.startColor('green'), p.bg.startColor('green')]);
  const port = `PORT=${p.bg.config.colors.green.port}\0`;
  const apps = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'node\0app.js\0' && readFileSync(`/proc/${pid}/environ`, 'utf8').includes(port);
    } catch {
      return false;
    }
  });
  t.equal(apps.length, 1, `one green app process (${apps.join(' ')})`);
  t.equal(String((await p.bg.status()).colors.green.pid), apps[0], 'and it is the one bgproxy tracks');
});
