import { readlinkSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { colorHandler, openWebSocket, startBackend } from '../helpers/backend.js';
import { get, request } from '../helpers/http.js';
import { startProxy } from '../helpers/proxy.js';

t.test('cutover swaps the roles in memory and on disk', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const r = await p.bg.cutover();
  t.same([r.live, r.was], ['green', 'blue']);
  t.equal(await get(p.port, 'live.test'), 'green');
  t.equal(await get(p.port, 'next.live.test'), 'blue');
  t.equal(readlinkSync(path.join(p.root, 'live')), 'green');
  t.equal(readlinkSync(path.join(p.root, 'next')), 'blue');
  const back = await p.bg.rollback();
  t.equal(back.live, 'blue');
  t.equal(await get(p.port, 'live.test'), 'blue');
  t.equal(readlinkSync(path.join(p.root, 'live')), 'blue');
});

t.test('a slow request in flight at cutover finishes on the old color, and cutover waits for it', async (t) => {
  let answered = false;
  const slowBlue = colorHandler('blue');
  const blue = await startBackend(t, (req, res) => {
    res.once('finish', () => (answered = true));
    slowBlue(req, res);
  });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const inFlight = request(p.port, 'live.test', { path: '/slow?ms=600' });
  while (p.bg.target('blue').inflightAs('live') === 0) await new Promise((r) => setTimeout(r, 5));
  const r = await p.bg.cutover();
  t.ok(answered, 'cutover returned only after the old color answered the request');
  t.equal(p.bg.target('blue').inflight, 0);
  t.equal(r.inflightAtSwitch, 1);
  t.equal(r.cutOff, 0);
  t.equal((await inFlight).body.trim(), 'blue', 'it finished where it started');
  t.equal(await get(p.port, 'live.test'), 'green');
});

t.test('a request that outlives drainTimeoutMs is reported as cut off, and still completes', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { drainTimeoutMs: 100 } });
  const inFlight = request(p.port, 'live.test', { path: '/slow?ms=800' });
  while (p.bg.target('blue').inflightAs('live') === 0) await new Promise((r) => setTimeout(r, 5));
  const r = await p.bg.cutover();
  t.equal(r.cutOff, 1);
  t.equal((await inFlight).body.trim(), 'blue', 'bgproxy itself never kills a request at cutover');
});

t.test('a websocket opened before a cutover keeps working', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'), { websocket: true });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const { echo } = await openWebSocket(t, p.port, 'live.test');
  await p.bg.cutover();
  t.equal(await echo('after'), 'echo:after');
  t.equal(await get(p.port, 'live.test'), 'green');
});

t.test('cutover is refused when next is down; --force works; rollback has the same check', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  await green.close();
  await t.rejects(p.bg.cutover(), { code: 'BG_UNHEALTHY', message: /green is not healthy/ });
  t.equal(p.bg.roles.live, 'blue', 'nothing changed');
  t.equal(readlinkSync(path.join(p.root, 'live')), 'blue');
  t.equal(await get(p.port, 'live.test'), 'blue');
  const forced = await p.bg.cutover({ force: true });
  t.equal(forced.live, 'green');
  t.equal((await p.bg.rollback()).live, 'blue', 'rollback to the healthy previous color works');
  await t.rejects(p.bg.rollback(), { code: 'BG_UNHEALTHY' }, 'rolling back again would make the dead green live');
  t.equal(p.bg.roles.live, 'blue');
});

t.test('unhealthy health path (HTTP 500) refuses cutover', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, (_req, res) => {
    res.statusCode = 500;
    res.end('broken');
  });
  const p = await startProxy(t, { blue, green });
  await t.rejects(p.bg.cutover(), { code: 'BG_UNHEALTHY', message: /HTTP 500/ });
});

t.test('a cutover that cannot persist changes nothing in memory', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const { chmodSync } = await import('node:fs');
  // Root is not writable -> the fresh symlink cannot be created. (Root bypasses mode bits,
  // so make the temp-link name a directory instead.)
  const { mkdirSync, rmSync } = await import('node:fs');
  const blocker = path.join(p.root, `.live.tmp-${process.pid}`);
  mkdirSync(path.join(blocker, 'x'), { recursive: true });
  chmodSync(p.root, 0o755);
  await t.rejects(p.bg.cutover(), { code: 'BG_LAYOUT' });
  t.equal(p.bg.roles.live, 'blue');
  t.equal(await get(p.port, 'live.test'), 'blue');
  rmSync(blocker, { recursive: true });
  t.equal((await p.bg.cutover()).live, 'green');
});
