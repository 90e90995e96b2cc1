// Fleet releases over real OpenSSH (test/helpers/fleet-release.ts): a server that is not
// ready for the cutover (its hook vetoes, or is still running at readyTimeoutMs) calls
// the cutover off on every server.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startReleasedFleet } from '../helpers/fleet-release.js';

t.test('a server not ready calls the cutover off everywhere', async (t) => {
  const f = await startReleasedFleet(t, { next: true });

  // A server not ready (its beforeCutover hook vetoes): the cutover is called off everywhere.
  const veto = path.join(f.servers[1]!.root, 'hold-cutover');
  writeFileSync(veto, '');
  const off = await f.fleet(['cutover']);
  rmSync(veto);
  t.equal(off.code, 1, off.stdout);
  t.match(off.stdout, /web2 \| failed: cutover to blue: beforeCutover hook failed/);
  t.match(off.stdout, /web1 \| called off: nothing switched here/);
  t.match(off.stdout, /web3 \| called off: nothing switched here/);
  t.match(off.stderr, /cutover called off before any switch \(web2 not ready\): every live color untouched/);
  t.same(await f.lives(), ['green v1', 'green v1', 'green v1']);

  // A server not ready within readyTimeoutMs (a hook still running): called off too, every
  // server told. web2's hook runs until the fleet has given up on it, then lets it be ready.
  // web1 and web3 must be ready within readyTimeoutMs: 5 s was not enough at a load of 30.
  const fleetJson = readFileSync(f.fleetFile, 'utf8');
  writeFileSync(f.fleetFile, JSON.stringify({ ...JSON.parse(fleetJson), readyTimeoutMs: 20_000 }));
  const slow = path.join(f.servers[1]!.root, 'slow-cutover');
  writeFileSync(slow, '');
  t.teardown(() => rmSync(slow, { force: true }));
  const child = f.spawnFleet(['cutover']);
  let seen = '';
  child.stdout!.on('data', (d: Buffer) => {
    seen += d.toString();
    if (seen.includes('not every server is ready')) rmSync(slow, { force: true });
  });
  const done = await child;
  const late = { code: done.exitCode ?? -1, stdout: String(done.stdout), stderr: String(done.stderr) };
  writeFileSync(f.fleetFile, fleetJson);
  t.equal(late.code, 1, late.stdout);
  t.match(late.stdout, /web1 \| ready to make blue live/);
  t.match(late.stdout, /not every server is ready: cutover called off, nothing switched/);
  t.match(late.stdout, /web1 \| called off: nothing switched here/);
  t.match(late.stdout, /web3 \| called off: nothing switched here/);
  t.match(late.stdout, /web2 \| ready too late, called off: nothing switched here/, 'the late server is told too, once it is ready');
  t.match(late.stderr, /cutover called off before any switch \(web2 not ready within readyTimeoutMs \(20000 ms\)\): every live color untouched/);
  const hist = await f.fleet(['history', '--json']);
  t.match(hist.stdout.trim().split('\n').at(-1), /"web2":"not ready in time"/, 'history says which server was late');
  t.same(await f.lives(), ['green v1', 'green v1', 'green v1']);
});
