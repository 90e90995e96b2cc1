// The repo's playbook when one host fails: a failed deploy stops it before any switch, and
// a switch that fails on one host rolls back the hosts that switched. Either way every host
// ends on the release it served before.
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startFleet } from '../helpers/fleet.js';
import { get } from '../helpers/http.js';
import { runPlaybook, writeInventory } from '../helpers/inventory.js';

t.test('a failing host in the playbook leaves every host on the old release', async (t) => {
  const f = await startFleet(t);
  const inv = writeInventory(f);
  f.commit('v1');
  t.equal((await inv.fleet(['push'])).code, 0);
  t.equal((await inv.fleet(['deploy', '--cutover'])).code, 0);
  const lives = (): Promise<string[]> => Promise.all(f.servers.map((s) => get(s.serve.port, 'shop.test')));
  const nexts = (): Promise<string[]> => Promise.all(f.servers.map((s) => get(s.serve.port, 'next.shop.test')));
  t.same(await lives(), ['green v1', 'green v1', 'green v1']);

  // v2 fails its install on web2 only.
  const v2 = f.commit('v2', { 'fail-on': `${f.servers[1]!.root}\n` });
  const v3 = f.commit('v3', { 'fail-on': null });
  t.equal((await inv.fleet(['push'])).code, 0);
  const bad = await runPlaybook(inv, { bgproxy_commit: v2 });
  t.not(bad.code, 0, bad.out);
  t.match(bad.out, /fatal: \[web2\]/);
  t.match(bad.out, /NO MORE HOSTS LEFT/, 'any_errors_fatal ends the play for every host');
  t.notMatch(bad.out, /PLAY \[bgproxy phase 2/, 'phase 2 never started');
  t.same(await lives(), ['green v1', 'green v1', 'green v1'], 'no host switched');

  // v3 deploys everywhere, but web2's beforeCutover hook vetoes its switch: web1 and web3,
  // which switched, are rolled back.
  const veto = path.join(f.servers[1]!.root, 'hold-cutover');
  writeFileSync(veto, '');
  t.teardown(() => rmSync(veto, { force: true }));
  const vetoed = await runPlaybook(inv, { bgproxy_commit: v3 });
  t.not(vetoed.code, 0, vetoed.out);
  t.match(vetoed.out, /PLAY \[bgproxy phase 2/);
  t.match(vetoed.out, /TASK \[Roll back the hosts that switched, since another one did not\][\s\S]*changed: \[web1\]/);
  t.match(vetoed.out, /TASK \[Roll back the hosts that switched, since another one did not\][\s\S]*changed: \[web3\]/);
  t.match(vetoed.out, /cutover failed on web2; web1 was rolled back/);
  t.match(vetoed.out, /cutover failed on web2: [^\n]*beforeCutover hook failed/);
  t.same(await lives(), ['green v1', 'green v1', 'green v1'], 'every host is back on v1');
  t.same(await nexts(), ['blue v3', 'blue v3', 'blue v3'], 'v3 waits in next');
});
