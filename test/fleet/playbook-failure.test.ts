// The repo's playbook when one host fails its deploy: any_errors_fatal ends the playbook
// before any switch, and every host keeps serving the release it served before.
import t from 'tap';
import { startFleet } from '../helpers/fleet.js';
import { get } from '../helpers/http.js';
import { firstRelease, runPlaybook, writeInventory } from '../helpers/inventory.js';

t.test('a failing host in the playbook leaves every host on the old release', async (t) => {
  const f = await startFleet(t);
  const inv = writeInventory(f);
  await firstRelease(f, f.commit('v1'));
  const lives = (): Promise<string[]> => Promise.all(f.servers.map((s) => get(s.serve.port, 'shop.test')));
  const nexts = (): Promise<string[]> => Promise.all(f.servers.map((s) => get(s.serve.port, 'next.shop.test')));
  t.same(await lives(), ['green v1', 'green v1', 'green v1']);

  // v2 fails its install on web2 only.
  const v2 = f.commit('v2', { 'fail-on': `${f.servers[1]!.root}\n` });
  t.equal((await inv.fleet(['push'])).code, 0);
  const bad = await runPlaybook(inv, { bgproxy_commit: v2 });
  t.not(bad.code, 0, bad.out);
  t.match(bad.out, /fatal: \[web2\]/);
  t.match(bad.out, /NO MORE HOSTS LEFT/, 'any_errors_fatal ends the play for every host');
  t.notMatch(bad.out, /PLAY \[bgproxy phase 2/, 'phase 2 never started');
  t.same(await lives(), ['green v1', 'green v1', 'green v1'], 'no host switched');
  const [n1, , n3] = await nexts();
  t.same([n1, n3], ['blue v2', 'blue v2'], 'phase 1 did run on the others');
});
