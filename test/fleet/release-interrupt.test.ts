// Fleet releases over real OpenSSH (test/helpers/fleet-release.ts): Ctrl-C on a fleet
// deploy, the fleet lock, and a cutover of a fleet left split by it.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { BIN } from '../helpers/cli.js';
import { startReleasedFleet } from '../helpers/fleet-release.js';

t.test('Ctrl-C stops new steps and says where every server stands; one fleet operation at a time', async (t) => {
  const f = await startReleasedFleet(t, { next: true });
  f.commit('v6', { 'slow-install': '' });
  t.equal((await f.fleet(['push'])).code, 0);
  // One server at a time, so that there are steps left to not start.
  const serial = path.join(path.dirname(f.fleetFile), 'fleet-serial.json');
  writeFileSync(serial, JSON.stringify({ ...JSON.parse(readFileSync(f.fleetFile, 'utf8')), parallel: 1 }));
  const env = { XDG_RUNTIME_DIR: path.dirname(path.dirname(f.fleetFile)), NODE_OPTIONS: '' };
  const fleetCmd = (args: string[]) => execa('node', [BIN, 'fleet', ...args, '--fleet', serial], { cwd: f.repo.dir, env, reject: false });
  const run = fleetCmd(['deploy', '--cutover']);
  t.teardown(() => {
    run.kill('SIGKILL');
  });
  await new Promise<void>((resolve) => {
    let out = '';
    run.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (/web1 \| fetch/.test(out)) resolve();
    });
  });
  run.kill('SIGINT');
  // web1's deploy (a second of install) is still being waited for: the lock is held.
  const second = await fleetCmd(['cutover']);
  t.equal(second.exitCode, 1);
  t.match(String(second.stderr), /^bgproxy: fleet deploy in progress \(pid \d+/);
  const r = await run;
  const out = String(r.stdout);
  t.equal(r.exitCode, 1, out);
  t.match(out, /interrupted: no new step starts/);
  t.match(out, /web1 \| blue now runs [0-9a-f]{7} "Release v6"/, 'the step running finished');
  t.notMatch(out, /web2 \| fetch|web3 \| fetch|phase 2/, 'no new step started');
  t.match(out, /where every server stands now:\nSERVER/);
  t.match(String(r.stderr), /^bgproxy: interrupted: nothing switched, every live color untouched$/);
  t.same(await f.lives(), ['green v1', 'green v1', 'green v1'], 'nothing switched');
  t.same(await f.nexts(), ['blue v6', 'blue v2', 'blue v2']);
  const h = JSON.parse(String((await fleetCmd(['history', '-n', '1', '--json'])).stdout)) as Record<string, unknown>;
  t.match(h, { action: 'deploy', result: 'interrupted', servers: { web1: 'deployed into blue', web2: 'not started', web3: 'not started' } });

  // The fleet is now split (v6 next on web1, v2 on the others): a cutover is called off
  // when the servers say "ready" with different commits.
  const split = await f.fleet(['cutover']);
  t.equal(split.code, 1, split.stdout);
  t.match(split.stderr, /^bgproxy: cutover called off before any switch \(ready with different commits: (web\d [0-9a-f]{7}(, )?){2,3}\): every live color untouched$/);
  t.same(await f.lives(), ['green v1', 'green v1', 'green v1']);
});
