// Fleet releases over real OpenSSH (test/helpers/fleet-release.ts): a server that ssh
// cannot reach is named by fleet status and stops a release before phase 2.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { formatFleetStatus, type ServerStatus } from '../../src/fleet/status.js';
import { startReleasedFleet } from '../helpers/fleet-release.js';

t.test('an unreachable server stops the release before phase 2; fleet status names it', async (t) => {
  const f = await startReleasedFleet(t, { next: true });
  const web3 = f.servers[2]!;
  web3.sshd.down();
  t.teardown(() => web3.sshd.up());
  const s = await f.fleet(['status']);
  t.equal(s.code, 1);
  t.match(s.stdout, /web1\s+green [0-9a-f]{7}\s+blue [0-9a-f]{7}\s+live yes/);
  t.match(s.stdout, /web3\s+UNREACHABLE/);
  t.match(s.stderr, /^bgproxy: no status from web3$/);
  const json = JSON.parse((await f.fleet(['status', '--json'])).stdout) as { servers: ServerStatus[] };
  t.same(json.servers.map((r) => [r.name, r.ok, r.error?.code ?? null]), [['web1', true, null], ['web2', true, null], ['web3', false, 'BG_UNREACHABLE']]);
  // Each server says which bgproxy it runs; a fleet on two versions is pointed out.
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  t.same(json.servers.map((r) => r.status?.version ?? null), [version, version, null]);
  t.match(s.stdout, new RegExp(`web1 .* ${version.replace(/\./g, '\\.')} `));
  t.notMatch(s.stdout, /do not all run the same bgproxy/);
  const older = json.servers.map((r) => (r.name === 'web2' ? { ...r, status: { ...r.status!, version: '0.0.9' } } : r));
  t.match(formatFleetStatus(older), `the servers do not all run the same bgproxy (${version}, 0.0.9); upgrade them to one version before a release`);

  const d = await f.fleet(['deploy', '--cutover']);
  t.equal(d.code, 1);
  t.match(d.stdout, /web3 \| deploy FAILED: unreachable over ssh/);
  t.notMatch(d.stdout, /phase 2/);
  t.match(d.stderr, /deploy failed on web3: nothing switched/);
  const [l1, l2] = await f.lives();
  t.same([l1, l2], ['green v1', 'green v1'], 'the reachable servers did not switch');
  web3.sshd.up();
  t.equal((await f.fleet(['status'])).code, 0);
});
