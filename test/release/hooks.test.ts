// Release identity, beforeCutover/afterCutover hooks and warm-up, with real app processes.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import t from 'tap';
import { readHistory } from '../../src/deploy/history.js';
import { warmUp } from '../../src/release/warmup.js';
import { get } from '../helpers/http.js';
import { startLoad } from '../helpers/load.js';
import { startReleaseSetup } from '../helpers/release.js';

type Env = Record<string, string>;

t.test('each color sees its own release: BG_RELEASE is its short commit, hooks get the same identity', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t, {
    hooks: { beforeCutover: ['echo "before $BG_COLOR $BG_RELEASE $BG_ROLE $BG_HOOK $BG_ACTION" >> "$BG_ROOT/hooks.out"'] },
  });
  const v1 = commit('v1');
  await p.bg.deploy();
  const first = await p.bg.cutover();
  t.match(first.hooks?.beforeCutover, { ok: true, commands: 1, hook: 'beforeCutover' });
  const v2 = commit('v2');
  await p.bg.deploy();
  const live = JSON.parse(await get(p.port, 'live.test', '/env')) as Env;
  const next = JSON.parse(await get(p.port, 'next.live.test', '/env')) as Env;
  t.equal(live.BG_RELEASE, v1.slice(0, 7));
  t.equal(live.BG_COMMIT, v1);
  t.equal(live.BG_COLOR, 'green');
  t.equal(next.BG_RELEASE, v2.slice(0, 7));
  t.equal(next.BG_COLOR, 'blue');
  t.equal(next.BG_ROLE, 'next', 'the role as of its start');
  t.not(live.BG_RELEASE, next.BG_RELEASE, 'two colors, two releases');
  await p.bg.cutover();
  t.equal(
    readFileSync(path.join(p.root, 'hooks.out'), 'utf8'),
    `before green ${v1.slice(0, 7)} next beforeCutover cutover\nbefore blue ${v2.slice(0, 7)} next beforeCutover cutover\n`,
  );
});

t.test('a failing beforeCutover hook aborts the cutover: live unchanged under load, BG_HOOK naming the hook, output in detail', async (t) => {
  // The hook fails only for a release that carries fail-migration, so v1 can go live first.
  const migrate = 'echo "migrating $BG_RELEASE"; if [ -f fail-migration ]; then echo "ERROR: relation users does not exist" >&2; exit 4; fi';
  const { proxy: p, commit } = await startReleaseSetup(t, { hooks: { beforeCutover: [migrate] } });
  commit('v1');
  await p.bg.deploy();
  await p.bg.cutover();
  const v2 = commit('v2', { 'fail-migration': 'yes\n' });
  await p.bg.deploy();

  const load = startLoad({ port: p.port, host: 'live.test', clients: 50, maxMs: 20_000 });
  await new Promise((r) => setTimeout(r, 300));
  const lines: string[] = [];
  await t.rejects(
    p.bg.cutover({}, (e) => {
      if (e.phase === 'line' && e.line !== undefined) lines.push(e.line);
    }),
    {
      code: 'BG_HOOK',
      message: /^cutover to blue: beforeCutover hook failed: ".*" exited with code 4; live is unchanged$/,
      detail: /migrating .*\nERROR: relation users does not exist/,
    },
  );
  await new Promise((r) => setTimeout(r, 300));
  const stats = await load.stop();
  t.equal(p.bg.roles.live, 'green', 'live unchanged');
  t.same(stats.errors, [], 'no failed requests');
  t.same(stats.non2xx, []);
  t.same([...stats.counts.keys()], ['green v1'], `every one of ${stats.requests} answers from live`);
  t.ok(stats.requests > 200, `load ran (${stats.requests} requests)`);
  t.same(lines, [`migrating ${v2.slice(0, 7)}`, 'ERROR: relation users does not exist'], 'output streamed as progress');
  t.match(readFileSync(path.join(p.root, 'logs', 'deploy-blue.log'), 'utf8'), /beforeCutover hook \(cutover\) on blue[\s\S]*relation users does not exist/);

  const last = (await readHistory(p.root)).at(-1);
  t.match(last, { action: 'cutover', color: 'blue', result: 'failed', step: 'beforeCutover', hooks: { beforeCutover: { ok: false } } });
  const s = await p.bg.status();
  t.match(s.lastRelease, { action: 'cutover', result: 'failed', step: 'beforeCutover', hooks: { beforeCutover: { ok: false, detail: /relation users/ } } });
});

t.test('a failing afterCutover hook is reported, the switch stays', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t, { hooks: { afterCutover: ['echo "purging CDN for $BG_RELEASE ($BG_ROLE)"; exit 2'] } });
  const v1 = commit('v1');
  await p.bg.deploy();
  const r = await p.bg.cutover();
  t.equal(r.live, 'green');
  t.match(r.hooks?.afterCutover, { ok: false, error: /afterCutover hook failed: .* exited with code 2/, detail: `purging CDN for ${v1.slice(0, 7)} (live)` });
  t.equal(await get(p.port, 'live.test'), 'green v1', 'the switch stays');
  const last = (await readHistory(p.root)).at(-1);
  t.match(last, { action: 'cutover', result: 'ok', hooks: { afterCutover: { ok: false } }, message: /afterCutover hook failed/ });
});

t.test('warm-up requests the listed paths on next only; a non-2xx answer aborts', async (t) => {
  const paths = ['/warm/a', '/warm/b', '/warm/c', '/warm/d'];
  const { proxy: p, commit } = await startReleaseSetup(t, { warmup: { paths, concurrency: 2 } });
  commit('v1');
  await p.bg.deploy();
  await p.bg.cutover();
  commit('v2');
  await p.bg.deploy();
  const hits = async (host: string): Promise<Record<string, number>> => JSON.parse(await get(p.port, host, '/hits'));
  const liveBefore = await hits('live.test');
  const nextBefore = await hits('next.live.test');
  t.same(Object.keys(nextBefore), [], 'blue (next) has seen nothing yet');

  const steps: string[] = [];
  const r = await p.bg.cutover({}, (e) => {
    if (e.phase === 'done') steps.push(e.step);
  });
  t.same(steps, ['warmup']);
  t.match(r.warmup, { ok: true, requests: 4, failures: [] });
  t.ok(typeof r.warmup?.ms === 'number' && r.warmup.slowest !== null, `warm-up took ${r.warmup?.ms} ms`);
  t.same(await hits('live.test'), Object.fromEntries(paths.map((x) => [x, 1])), 'blue (now live) got each path once');
  t.same(await hits('next.live.test'), liveBefore, 'green (live during the warm-up) saw none of them');
  t.match((await p.bg.status()).lastRelease, { action: 'cutover', result: 'ok', warmup: { ok: true, requests: 4 } });
  t.match((await readHistory(p.root)).at(-1), { action: 'cutover', warmup: { ok: true, requests: 4 }, message: /^warm-up: 4 requests in \d+ ms/ });

  commit('v3', { 'fixture.env': 'export FIXTURE_ERROR_RATE=1\n' });
  await p.bg.deploy();
  await t.rejects(p.bg.cutover(), {
    code: 'BG_UNHEALTHY',
    message: /^cutover to green: warm-up failed: 4 of 4 requests not 2xx \(\/warm\/\w 500, .*\); live is unchanged$/,
    detail: /GET \/warm\/a: HTTP 500/,
  });
  t.equal(p.bg.roles.live, 'blue');
  t.equal(await get(p.port, 'live.test'), 'blue v2');
});

t.test('warmUp sends the Host it is given, at most `concurrency` at a time, and times each answer', async (t) => {
  const seen: string[] = [];
  let open = 0;
  let peak = 0;
  const server = http.createServer((req, res) => {
    seen.push(`${req.headers.host} ${req.url}`);
    peak = Math.max(peak, ++open);
    setTimeout(() => {
      open--;
      res.writeHead(req.url === '/missing' ? 404 : 200).end('ok');
    }, 20);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  const port = (server.address() as AddressInfo).port;
  const paths = ['/a', '/b', '/c', '/d', '/e', '/missing'];
  const r = await warmUp({ port, host: 'shop.example', paths, concurrency: 2, timeoutMs: 2000 });
  t.same(seen.sort(), paths.map((x) => `shop.example ${x}`).sort());
  t.ok(peak <= 2, `never more than the concurrency at once (peak ${peak})`);
  t.match(r, { ok: false, requests: 6, failures: [{ path: '/missing', status: 404 }] });
  // Three rounds of 20 ms; a Node timer may fire a little early, hence the slack.
  t.ok(r.ms >= 50, `three rounds of 20 ms took ${r.ms} ms`);
});
