// Fleet releases over real OpenSSH (test/helpers/fleet-release.ts): a deploy that fails
// its install on one server stops the release before any switch.
import t from 'tap';
import { startReleasedFleet } from '../helpers/fleet-release.js';

t.test('a deploy that fails on one server leaves every live untouched', async (t) => {
  const f = await startReleasedFleet(t);
  // v4 fails its install on web2; v5, the fix, is pushed with it (deployed by no one here).
  const v4 = f.commit('v4', { 'fail-on': `${f.servers[1]!.root}\n` });
  f.commit('v5', { 'fail-on': null });
  t.equal((await f.fleet(['push'])).code, 0);
  const d = await f.fleet(['deploy', v4, '--cutover']);
  t.equal(d.code, 1, d.stdout);
  t.match(d.stdout, /web2 \| deploy FAILED/);
  t.match(d.stderr, /deploy failed on web2: nothing switched, every live color untouched/);
  t.notMatch(d.stdout, /phase 2/, 'phase 2 never started');
  t.same(await f.lives(), ['green v1', 'green v1', 'green v1']);
  const [n1, , n3] = await f.nexts();
  t.same([n1, n3], ['blue v4', 'blue v4'], 'phase 1 did run on the others');
});
