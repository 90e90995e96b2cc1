// The repo's playbook (ansible/release.yml) run by Debian's ansible-playbook against the
// three-sshd fleet's INI inventory, with a real HAProxy in front and keep-alive clients on
// it: the release goes live on every host and no request fails.
import t from 'tap';
import { startFleet } from '../helpers/fleet.js';
import { startHaproxy } from '../helpers/haproxy.js';
import { get } from '../helpers/http.js';
import { firstRelease, runPlaybook, writeInventory } from '../helpers/inventory.js';
import { startLoad } from '../helpers/load.js';

t.test('ansible-playbook release.yml through HAProxy under load', async (t) => {
  const f = await startFleet(t);
  const inv = writeInventory(f);
  await firstRelease(f, f.commit('v1'));
  const lb = await startHaproxy(t, { host: 'shop.test', servers: f.servers.map((s) => ({ name: s.name, port: s.serve.port })) });
  t.equal(await get(lb.port, 'shop.test'), 'green v1');

  const v2 = f.commit('v2');
  t.equal((await inv.fleet(['push'])).code, 0, 'the commit is in every ROOT/repo.git');
  const load = startLoad({ port: lb.port, host: 'shop.test', clients: 4, maxMs: 200_000, pauseMs: 5 });
  const before = Date.now() + 10_000;
  while (load.stats.requests < 20 && Date.now() < before) await new Promise((r) => setTimeout(r, 20));
  const play = await runPlaybook(inv, { bgproxy_commit: v2 });
  t.equal(play.code, 0, play.out);
  t.match(play.out, /PLAY \[bgproxy phase 2: cut over every host at once/);
  t.match(play.out, /TASK \[Roll back the hosts that switched, since another one did not\][\s\S]*skipping: \[web1\]/, 'nothing to roll back');
  t.match(play.out, /web1\s+: ok=\d+\s+changed=2\s+unreachable=0\s+failed=0/);
  const seen = load.stats.bodies.length;
  const until = Date.now() + 10_000;
  while (load.stats.bodies.slice(seen).filter((b) => b === 'blue v2').length < 30 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const stats = await load.stop();
  t.comment(`${stats.requests} requests through HAProxy: ${stats.errors.length} errors, ${stats.non2xx.length} non-2xx; ${JSON.stringify([...stats.counts])}`);
  t.same(stats.errors, [], 'no request failed');
  t.same(stats.non2xx, [], 'no 5xx or other non-2xx');
  t.ok((stats.counts.get('blue v2') ?? 0) > 0, 'the load saw the new release');
  t.same([...stats.counts.keys()].filter((b) => b !== 'green v1' && b !== 'blue v2'), [], 'every answer came from a release');
  t.same(await Promise.all(f.servers.map((s) => get(s.serve.port, 'shop.test'))), ['blue v2', 'blue v2', 'blue v2'], 'v2 is live on every host');
});
