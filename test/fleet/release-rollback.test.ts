// Fleet releases over real OpenSSH (test/helpers/fleet-release.ts): a switch that fails on
// one server rolls the others back; a fleet rollback reports every server's switch.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startReleasedFleet } from '../helpers/fleet-release.js';

t.test('a server whose switch fails is rolled back with the others; rollback --json', async (t) => {
  const f = await startReleasedFleet(t, { next: true });

  // A disk fault on web3 that only the switch itself meets: its live link cannot be replaced.
  const web3 = f.servers[2]!;
  const link = path.join(web3.root, 'live');
  renameSync(link, path.join(web3.root, 'live.saved'));
  mkdirSync(link);
  writeFileSync(path.join(link, 'keep'), '');
  t.teardown(() => restoreLink(web3.root));
  const c = await f.fleet(['cutover']);
  t.equal(c.code, 1, c.stdout);
  t.match(c.stdout, /web1 \| ready to make blue live/);
  t.match(c.stdout, /web3 \| failed: cannot switch the role links/);
  t.match(c.stdout, /web1 \| rolled back: green live again, \d+ ms after it switched to blue/);
  t.match(c.stdout, /web2 \| rolled back: green live again, \d+ ms after it switched to blue/);
  t.match(c.stderr, /cutover failed on web3; rolled back web1, web2/);
  t.match(c.stdout, /where every server stands now/);
  t.same(await f.lives(), ['green v1', 'green v1', 'green v1'], 'every live is back on the release before');
  restoreLink(web3.root);

  const again = await f.fleet(['cutover']);
  t.equal(again.code, 0, again.stdout + again.stderr);
  t.same(await f.lives(), ['blue v2', 'blue v2', 'blue v2']);
  const back = await f.fleet(['rollback', '--json']);
  t.equal(back.code, 0, back.stdout + back.stderr);
  t.match(back.stderr, /web1 \| switched to green at \+[\d.]+ ms/, 'progress goes to stderr with --json');
  const r = JSON.parse(back.stdout) as { result: string; message: string; switch: { spreadMs: number; servers: Array<{ name: string; switched: boolean; switchedAt: number; color: string }> } };
  t.match(r, { result: 'ok', message: /^rollback done on every server: [0-9a-f]{7} is live; the switches were [\d.]+ ms apart$/ });
  t.same(r.switch.servers.map((s) => [s.name, s.color, s.switched]), [['web1', 'green', true], ['web2', 'green', true], ['web3', 'green', true]]);
  const at = r.switch.servers.map((s) => s.switchedAt);
  t.equal(r.switch.spreadMs, Math.round((Math.max(...at) - Math.min(...at)) * 10) / 10, 'the spread is the distance between the first and the last switchedAt');
  t.same(await f.lives(), ['green v1', 'green v1', 'green v1']);
});

/** Puts web3's live link back the way it was saved. */
function restoreLink(root: string): void {
  const link = path.join(root, 'live');
  try {
    renameSync(path.join(root, 'live.saved'), `${link}.back`);
  } catch {
    return; // already restored
  }
  rmSync(link, { recursive: true, force: true });
  renameSync(`${link}.back`, link);
}
