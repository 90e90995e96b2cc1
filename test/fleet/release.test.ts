// Fleet releases over real OpenSSH: three servers on this machine, each an sshd in front
// of its own root and its own bgproxy serve. One fleet for the whole file (setting it up
// costs seconds); the subtests run in order, each starting from where the last one left.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { formatFleetStatus, type ServerStatus } from '../../src/fleet/status.js';
import { BIN } from '../helpers/cli.js';
import { type FleetSetup, startFleet } from '../helpers/fleet.js';
import { get } from '../helpers/http.js';
import { startLoad } from '../helpers/load.js';

/** What each server's live host answers, in fleet order. */
async function lives(f: FleetSetup): Promise<string[]> {
  return Promise.all(f.servers.map((s) => get(s.serve.port, 'shop.test')));
}

async function nexts(f: FleetSetup): Promise<string[]> {
  return Promise.all(f.servers.map((s) => get(s.serve.port, 'next.shop.test')));
}

t.test('a fleet of three', async (t) => {
  const f = await startFleet(t);
  f.commit('v1');
  const push = await f.fleet(['push']);
  t.equal(push.code, 0, `${push.stderr}\nsshd: ${f.servers.map((s) => s.sshd.log()).join('\n')}`);
  t.match(push.stdout, /pushed [0-9a-f]{7} to every server/);
  const first = await f.fleet(['deploy', '--cutover']);
  t.equal(first.code, 0, first.stdout + first.stderr);
  t.same(await lives(f), ['green v1', 'green v1', 'green v1'], 'release 1 is live everywhere');

  await t.test('push + deploy + cutover of two releases under load: no failed request on any front', async (t) => {
    const loads = f.servers.map((s) => startLoad({ port: s.serve.port, host: 'shop.test', clients: 4, maxMs: 60_000, pauseMs: 5 }));
    const spreads: number[] = [];
    const took: number[] = [];
    for (const version of ['v2', 'v3']) {
      const sha = f.commit(version);
      const p = await f.fleet(['push']);
      t.equal(p.code, 0, p.stderr);
      const t0 = performance.now();
      const d = await f.fleet(['deploy', '--cutover']);
      took.push(Math.round(performance.now() - t0));
      t.equal(d.code, 0, d.stdout + d.stderr);
      t.match(d.stdout, `${sha.slice(0, 7)} is live`);
      const spread = /the switches were ([\d.]+) ms apart/.exec(d.stdout);
      t.ok(spread, 'the report says how far apart the switches were');
      spreads.push(Number(spread?.[1]));
    }
    const stats = await Promise.all(loads.map((l) => l.stop()));
    const requests = stats.reduce((n, s) => n + s.requests, 0);
    const errors = stats.flatMap((s) => s.errors);
    const non2xx = stats.flatMap((s) => s.non2xx);
    t.comment(`${requests} requests through 3 fronts, ${errors.length} errors, ${non2xx.length} non-2xx; switch spreads ${spreads.join(', ')} ms; fleet deploy --cutover ${took.join(', ')} ms`);
    t.same(errors, [], 'no request failed');
    t.same(non2xx, [], 'no 5xx or other non-2xx');
    for (const [i, s] of stats.entries()) {
      t.ok(s.requests > 50, `front ${i + 1} carried load (${s.requests})`);
      t.same([...s.counts.keys()].filter((b) => !['green v1', 'blue v2', 'green v3'].includes(b)), [], 'every answer came from a release');
    }
    t.same(await lives(f), ['green v3', 'green v3', 'green v3']);
    for (const ms of spreads) t.ok(ms < 1000, `the switches were close together (${ms} ms)`);
  });

  await t.test('a deploy that fails on one server leaves every live untouched', async (t) => {
    // v4 fails its install on web2; v5, the fix, is pushed with it and deployed next.
    const v4 = f.commit('v4', { 'fail-on': `${f.servers[1]!.root}\n` });
    f.commit('v5', { 'fail-on': null });
    t.equal((await f.fleet(['push'])).code, 0);
    const d = await f.fleet(['deploy', v4, '--cutover']);
    t.equal(d.code, 1, d.stdout);
    t.match(d.stdout, /web2 \| deploy FAILED/);
    t.match(d.stderr, /deploy failed on web2: nothing switched, every live color untouched/);
    t.notMatch(d.stdout, /phase 2/, 'phase 2 never started');
    t.same(await lives(f), ['green v3', 'green v3', 'green v3']);
    const [n1, , n3] = await nexts(f);
    t.same([n1, n3], ['blue v4', 'blue v4'], 'phase 1 did run on the others');
  });

  await t.test('a server not ready calls the cutover off; a server whose switch fails is rolled back with the others', async (t) => {
    const d = await f.fleet(['deploy']);
    t.equal(d.code, 0, d.stdout + d.stderr);
    t.same(await nexts(f), ['blue v5', 'blue v5', 'blue v5']);

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
    t.same(await lives(f), ['green v3', 'green v3', 'green v3']);

    // A server not ready within readyTimeoutMs (a hook still running): called off too, every
    // server told. web2's hook runs until the fleet has given up on it, then lets it be ready.
    const fleetJson = readFileSync(f.fleetFile, 'utf8');
    writeFileSync(f.fleetFile, JSON.stringify({ ...JSON.parse(fleetJson), readyTimeoutMs: 5000 }));
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
    t.match(late.stderr, /cutover called off before any switch \(web2 not ready within readyTimeoutMs \(5000 ms\)\): every live color untouched/);
    const hist = await f.fleet(['history', '--json']);
    t.match(hist.stdout.trim().split('\n').at(-1), /"web2":"not ready in time"/, 'history says which server was late');
    t.same(await lives(f), ['green v3', 'green v3', 'green v3']);

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
    t.same(await lives(f), ['green v3', 'green v3', 'green v3'], 'every live is back on the release before');
    restoreLink(web3.root);

    const again = await f.fleet(['cutover']);
    t.equal(again.code, 0, again.stdout + again.stderr);
    t.same(await lives(f), ['blue v5', 'blue v5', 'blue v5']);
    const back = await f.fleet(['rollback', '--json']);
    t.equal(back.code, 0, back.stdout + back.stderr);
    t.match(back.stderr, /web1 \| switched to green at \+[\d.]+ ms/, 'progress goes to stderr with --json');
    const r = JSON.parse(back.stdout) as { result: string; message: string; switch: { spreadMs: number; servers: Array<{ name: string; switched: boolean; switchedAt: number; color: string }> } };
    t.match(r, { result: 'ok', message: /^rollback done on every server: [0-9a-f]{7} is live; the switches were [\d.]+ ms apart$/ });
    t.same(r.switch.servers.map((s) => [s.name, s.color, s.switched]), [['web1', 'green', true], ['web2', 'green', true], ['web3', 'green', true]]);
    const at = r.switch.servers.map((s) => s.switchedAt);
    t.equal(r.switch.spreadMs, Math.round((Math.max(...at) - Math.min(...at)) * 10) / 10, 'the spread is the distance between the first and the last switchedAt');
    t.same(await lives(f), ['green v3', 'green v3', 'green v3']);
  });

  await t.test('an unreachable server stops the release before phase 2; fleet status names it', async (t) => {
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
    const [l1, l2] = await lives(f);
    t.same([l1, l2], ['green v3', 'green v3'], 'the reachable servers did not switch');
    web3.sshd.up();
    t.equal((await f.fleet(['status'])).code, 0);
  });

  await t.test('Ctrl-C stops new steps and says where every server stands; one fleet operation at a time', async (t) => {
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
    t.same(await lives(f), ['green v3', 'green v3', 'green v3'], 'nothing switched');
    t.same(await nexts(f), ['blue v6', 'blue v5', 'blue v5']);
    const h = JSON.parse(String((await fleetCmd(['history', '-n', '1', '--json'])).stdout)) as Record<string, unknown>;
    t.match(h, { action: 'deploy', result: 'interrupted', servers: { web1: 'deployed into blue', web2: 'not started', web3: 'not started' } });

    // The fleet is now split (v6 next on web1, v5 on the others): a cutover is called off
    // when the servers say "ready" with different commits.
    const split = await f.fleet(['cutover']);
    t.equal(split.code, 1, split.stdout);
    t.match(split.stderr, /^bgproxy: cutover called off before any switch \(ready with different commits: (web\d [0-9a-f]{7}(, )?){2,3}\): every live color untouched$/);
    t.same(await lives(f), ['green v3', 'green v3', 'green v3']);
  });
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
