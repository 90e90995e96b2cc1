// The post-cutover watch with real app processes: a release that answers 500 to a share
// of requests is rolled back automatically, and the rollback itself fails no request.
import { once } from 'node:events';
import t from 'tap';
import type { WatchReport } from '../../src/bgproxy.js';
import { parseDuration } from '../../src/cli/release.js';
import { controlRequest } from '../../src/control/client.js';
import { readHistory } from '../../src/deploy/history.js';
import { cli } from '../helpers/cli.js';
import { get, request } from '../helpers/http.js';
import { startLoad } from '../helpers/load.js';
import { startReleaseSetup } from '../helpers/release.js';
import { makeRoot } from '../helpers/root.js';

const WATCH_MS = 15_000;

/** Resolves with the first 'auto-rollback' event, or rejects after ms. */
function autoRollback(bg: NodeJS.EventEmitter, ms: number): Promise<WatchReport> {
  return Promise.race([
    once(bg, 'auto-rollback').then(([w]) => w as WatchReport),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no auto-rollback within ${ms} ms`)), ms).unref()),
  ]);
}

t.test('a release answering 500 to a share of requests is rolled back within watchMs; the rollback fails no request', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t, {}, { watch: { maxErrorRate: 0.05, minRequests: 50 } });
  commit('v1');
  await p.bg.deploy();
  await p.bg.cutover();
  commit('v2', { 'fixture.env': 'export FIXTURE_ERROR_RATE=0.3\n' });
  await p.bg.deploy();

  const load = startLoad({ port: p.port, host: 'live.test', clients: 50, maxMs: 25_000 });
  await new Promise((r) => setTimeout(r, 300));
  const rolledBack = autoRollback(p.bg, WATCH_MS);
  // Through the control socket, as `bgproxy cutover --watch 15s` sends it.
  const cut = (await controlRequest(p.root, 'cutover', { watchMs: WATCH_MS })) as { live: string; watch: { state: string; until: string } };
  t.equal(cut.live, 'blue');
  t.equal(cut.watch.state, 'watching', 'the command returns after the drain; the watch goes on');
  const w = await rolledBack;
  await new Promise((r) => setTimeout(r, 300));
  const stats = await load.stop();

  t.equal(p.bg.roles.live, 'green', 'rolled back');
  t.match(w, { state: 'tripped', color: 'blue', was: 'green', reason: /^5xx rate \d+(\.\d)?% \(\d+ of \d+ requests\) above 5% \(before the switch: 0%\)$/ });
  t.match(w.rollback, { ok: true, live: 'green' });
  const ms = w.rollback?.msSinceCutover ?? Number.POSITIVE_INFINITY;
  t.ok(ms < WATCH_MS, 'within watchMs');
  const tripMs = Date.parse(w.endedAt ?? '') - Date.parse(w.startedAt);
  t.comment(`auto-rollback: ${ms} ms from cutover to rollback complete (tripped after ${tripMs} ms at ${w.errors5xx} of ${w.requests} requests 5xx; the rollback took ${w.rollback?.switchMs} ms, drain ${w.rollback?.drainMs} ms)`);

  // The bad release's own 500s are expected; anything else would be the rollback's doing.
  t.same(stats.errors, [], `no connection errors in ${stats.requests} requests`);
  t.same([...new Set(stats.non2xx)], [500], 'the only non-2xx answers are the 500s of the bad release');
  const bodies = new Set(stats.bodies);
  t.same([...bodies].sort(), ['blue v2', 'blue v2 error', 'green v1'], 'every answer came from one release or the other, none from bgproxy');
  t.equal(await get(p.port, 'live.test'), 'green v1');

  const h = (await readHistory(p.root)).at(-1);
  t.match(h, { action: 'auto-rollback', color: 'green', result: 'ok', reason: /^5xx rate/ });
  const s = await p.bg.status();
  t.match(s.watch, { state: 'tripped', rollback: { ok: true } });
  t.match(s.lastRelease, { action: 'auto-rollback', result: 'ok', color: 'green' });
  t.equal(s.colors.blue.state, 'failed', 'the release that failed the watch is kept from going live again');
  await t.rejects(p.bg.cutover(), { code: 'BG_UNHEALTHY', message: /rolled back automatically/ });
});

t.test('a healthy release passes the watch; one that turns unhealthy is rolled back; other operations end a watch', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t, {}, { watch: { watchMs: 800 } });
  commit('v1');
  await p.bg.deploy();
  await p.bg.cutover({ watchMs: 0 });
  t.equal((await p.bg.status()).watch, null, 'watchMs 0 turns the configured watch off');

  commit('v2');
  await p.bg.deploy();
  const ended = once(p.bg, 'watch').then(() => once(p.bg, 'watch'));
  const r = await p.bg.cutover();
  t.match(r.watch, { state: 'watching', watchMs: 800 }, 'config watch.watchMs enables it');
  const [passed] = (await ended) as [WatchReport];
  t.match(passed, { state: 'passed', color: 'blue' });
  t.equal(p.bg.roles.live, 'blue');

  commit('v3');
  await p.bg.deploy();
  const rolledBack = autoRollback(p.bg, 10_000);
  await p.bg.cutover({ watchMs: 10_000 });
  t.equal(p.bg.roles.live, 'green');
  await request(p.port, 'live.test', { path: '/health/set?status=500' });
  const w = await rolledBack;
  t.match(w, { state: 'tripped', color: 'green', reason: /^green turned unhealthy \(unhealthy: 3 failed health checks: HTTP 500\)$/, rollback: { ok: true } });
  t.comment(`auto-rollback on health: ${w.rollback?.msSinceCutover} ms from cutover to rollback complete`);
  t.equal(p.bg.roles.live, 'blue');

  commit('v4');
  await p.bg.deploy();
  await p.bg.cutover({ watchMs: 10_000 });
  await p.bg.rollback();
  t.match((await p.bg.status()).watch, { state: 'stopped', reason: 'rollback started' }, 'a manual rollback ends the watch');

  commit('v5');
  const d = (await controlRequest(p.root, 'deploy', { cutover: true, watchMs: 10_000 })) as { cutover: { live: string; watch: unknown } };
  t.match(d.cutover.watch, { state: 'watching', watchMs: 10_000 }, 'deploy --cutover --watch watches the cutover it makes');
  await p.bg.rollback();
});

t.test('--watch durations', async (t) => {
  t.equal(parseDuration('500ms', '--watch'), 500);
  t.equal(parseDuration('60s', '--watch'), 60_000);
  t.equal(parseDuration('2m', '--watch'), 120_000);
  t.equal(parseDuration('1.5s', '--watch'), 1500);
  t.equal(parseDuration('0', '--watch'), 0);
  t.equal(parseDuration('60', '--watch'), 60_000, 'a bare number is seconds, as the help says (issue 23: --watch 5 was refused)');
  t.throws(() => parseDuration('soon', '--watch'), { code: 'BG_USAGE', message: '--watch: expected a duration like 250ms, 5s or 2m (a bare number is seconds), got "soon"' });
  t.throws(() => parseDuration('2d', '--watch'), { code: 'BG_USAGE' });
  t.throws(() => parseDuration('25h', '--watch'), { code: 'BG_USAGE' });
  // A real root: a missing one is refused first (one line naming bgproxy init, exit 2).
  const alone = await cli(['deploy', '--watch', '60s', '--root', makeRoot(t)]);
  t.equal(alone.code, 2);
  t.equal(alone.stderr, 'bgproxy: --watch needs --cutover (a deploy alone switches nothing to watch)');
});
