// A fleet release driven by an Ansible INI inventory (--inventory), with a real HAProxy in
// front of the three servers and keep-alive clients on HAProxy: no request fails.
import t from 'tap';
import { startFleet } from '../helpers/fleet.js';
import { startHaproxy } from '../helpers/haproxy.js';
import { get } from '../helpers/http.js';
import { firstRelease, writeInventory } from '../helpers/inventory.js';
import { startLoad } from '../helpers/load.js';

t.test('push + deploy --cutover from an inventory, through HAProxy under load', async (t) => {
  const f = await startFleet(t);
  const inv = writeInventory(f);
  await firstRelease(f, f.commit('v1'));

  const lb = await startHaproxy(t, { host: 'shop.test', servers: f.servers.map((s) => ({ name: s.name, port: s.serve.port })) });
  t.equal(await get(lb.port, 'shop.test'), 'green v1', 'HAProxy serves the live release');

  const v2 = f.commit('v2');
  const push = await inv.fleet(['push']);
  t.equal(push.code, 0, `${push.stdout}${push.stderr}\nsshd: ${f.servers.map((s) => s.sshd.log()).join('\n')}`);
  t.match(push.stdout, /pushing [0-9a-f]{7} as refs\/heads\/\S+ to 3 servers/);
  // The load runs through the release (phase 1 and phase 2); its bound is generous, stop() ends it.
  const load = startLoad({ port: lb.port, host: 'shop.test', clients: 4, maxMs: 200_000, pauseMs: 5 });
  const before = Date.now() + 10_000;
  while (load.stats.requests < 20 && Date.now() < before) await new Promise((r) => setTimeout(r, 20));
  const d = await inv.fleet(['deploy', '--cutover']);
  t.equal(d.code, 0, d.stdout + d.stderr);
  t.match(d.stdout, `${v2.slice(0, 7)} is live`);
  for (const s of f.servers) t.match(d.stdout, new RegExp(`${s.name} \\| switched to blue`), `${s.name} switched`);
  // Let the clients see the new release through every backend before stopping them.
  const seen = load.stats.bodies.length;
  const until = Date.now() + 10_000;
  while (load.stats.bodies.slice(seen).filter((b) => b === 'blue v2').length < 30 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const stats = await load.stop();
  t.comment(`${stats.requests} requests through HAProxy: ${stats.errors.length} errors, ${stats.non2xx.length} non-2xx; ${JSON.stringify([...stats.counts])}`);
  t.same(stats.errors, [], 'no request failed');
  t.same(stats.non2xx, [], 'no 5xx or other non-2xx');
  t.ok((stats.counts.get('green v1') ?? 0) > 0 && (stats.counts.get('blue v2') ?? 0) > 0, 'the load saw both releases');
  t.same([...stats.counts.keys()].filter((b) => b !== 'green v1' && b !== 'blue v2'), [], 'every answer came from a release');
  const state = await lb.command('show servers state web');
  t.equal(state.split('\n').filter((l) => / web \d+ web\d 127\.0\.0\.1 2 /.test(l)).length, 3, `HAProxy never took a server out:\n${state}`);
});
