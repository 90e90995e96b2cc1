// The repo's playbook when a switch fails on one host (its beforeCutover hook vetoes it):
// the hosts that switched are rolled back, the play fails naming the host, and every host
// ends on the release it served before, the new one waiting in next.
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startFleet } from '../helpers/fleet.js';
import { get } from '../helpers/http.js';
import { firstRelease, runPlaybook, writeInventory } from '../helpers/inventory.js';

t.test('a switch failing on one host: the hosts that switched are rolled back', async (t) => {
  const f = await startFleet(t);
  const inv = writeInventory(f);
  await firstRelease(f, f.commit('v1'));
  const lives = (): Promise<string[]> => Promise.all(f.servers.map((s) => get(s.serve.port, 'shop.test')));
  const nexts = (): Promise<string[]> => Promise.all(f.servers.map((s) => get(s.serve.port, 'next.shop.test')));
  const v3 = f.commit('v3');
  t.equal((await inv.fleet(['push'])).code, 0);

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
