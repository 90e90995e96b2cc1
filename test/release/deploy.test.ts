import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { readHistory } from '../../src/deploy/history.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/serve.js';
import { waitFor } from '../helpers/apps.js';
import { get } from '../helpers/http.js';
import { startReleaseSetup } from '../helpers/release.js';

t.test('deploy into next, status shows the commit, cutover makes it live', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t);
  const v1 = commit('v1');
  const steps: string[] = [];
  const r = await p.bg.deploy({}, (e) => {
    if (e.phase === 'done') steps.push(e.step);
  });
  t.equal(r.color, 'green');
  t.equal(r.commit, v1);
  t.same(steps, ['fetch', 'resolve', 'checkout', 'install', 'record', 'restart']);
  t.match(r.message, new RegExp(`^green now runs ${v1.slice(0, 7)} "Release v1" - preview: http://next\\.live\\.test:${p.port}/ - go live: bgproxy cutover$`));
  const s = await p.bg.status();
  t.equal(s.colors.green.commit, v1);
  t.equal(s.colors.green.subject, 'Release v1');
  t.equal(s.colors.green.state, 'running');
  t.equal(await get(p.port, 'next.live.test'), `green v1`);
  t.equal((await get(p.port, 'live.test')).startsWith('bgproxy:'), true, 'live (blue) has no release yet: 502');
  await p.bg.cutover();
  t.equal(await get(p.port, 'live.test'), 'green v1');
  const env = JSON.parse(await get(p.port, 'live.test', '/env')) as Record<string, string>;
  t.equal(env.BG_RELEASE, v1.slice(0, 7), 'the app sees its release');
  t.equal(env.BG_COMMIT, v1);
  t.equal(env.BG_COLOR, 'green');
  const h = await readHistory(p.root);
  t.same(h.map((e) => [e.action, e.result]), [['deploy', 'ok'], ['cutover', 'ok']]);
});

t.test('deploying the same commit twice is a no-op; --force redoes it; git clean removes stale files', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t);
  commit('v1');
  await p.bg.deploy();
  const pid = (await p.bg.status()).colors.green.pid;
  const stale = path.join(p.root, 'green', 'repo', 'stale.txt');
  writeFileSync(stale, 'left by the recipe');
  const again = await p.bg.deploy();
  t.equal(again.noop, true);
  t.match(again.message, /already runs .* nothing to do/);
  t.equal((await p.bg.status()).colors.green.pid, pid, 'not restarted');
  const forced = await p.bg.deploy({ force: true });
  t.equal(forced.noop, false);
  t.notOk(existsSync(stale), 'git clean -ffdx removed the stale file');
  t.not((await p.bg.status()).colors.green.pid, pid, 'restarted');
});

t.test('a failing install: exit names the step, next marked failed, cutover refused, live untouched', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t, { install: ['test -f VERSION', 'echo "pip: no such package" >&2; exit 3'] });
  commit('v1');
  await t.rejects(p.bg.deploy(), { code: 'BG_DEPLOY', message: /deploy into green: install failed: .* exited with code 3/, detail: /no such package/ });
  const s = await p.bg.status();
  t.equal(s.colors.green.state, 'failed');
  t.match(s.colors.green.reason, /install failed/);
  await t.rejects(p.bg.cutover(), { code: 'BG_UNHEALTHY', message: /green is marked failed/ });
  t.equal(p.bg.roles.live, 'blue');
  const h = await readHistory(p.root);
  t.match(h.at(-2), { action: 'deploy', result: 'failed', step: 'install' });
});

t.test('an app that never gets healthy fails the deploy at restart; live keeps serving; cutover refused', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t, { startTimeoutMs: 1500 });
  commit('v1');
  await p.bg.deploy();
  await p.bg.cutover();
  commit('v2', { 'fixture.env': 'export FIXTURE_UNHEALTHY=1\n' });
  await t.rejects(p.bg.deploy(), { code: 'BG_DEPLOY', message: /deploy into blue: .*did not become healthy within 1500 ms/ });
  t.equal(await get(p.port, 'live.test'), 'green v1', 'live untouched');
  const s = await p.bg.status();
  t.equal(s.colors.blue.state, 'failed');
  await t.rejects(p.bg.cutover(), { code: 'BG_UNHEALTHY' });
  t.equal(p.bg.roles.live, 'green');
  commit('v3', { 'fixture.env': null });
  const fixed = await p.bg.deploy();
  t.equal(fixed.noop, false);
  t.equal((await p.bg.status()).colors.blue.state, 'running', 'a good deploy clears the failure');
  await p.bg.cutover();
  t.equal(await get(p.port, 'live.test'), 'blue v3');
});

t.test('two deploys at once: the second is refused naming the first', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t, { install: ['sleep 1'] });
  commit('v1');
  const first = p.bg.deploy();
  await new Promise((r) => setTimeout(r, 200));
  await t.rejects(p.bg.deploy(), { code: 'BG_LOCKED', message: /^deploy in progress \(pid \d+, started \d+s ago\)/ });
  await t.rejects(p.bg.cutover(), { code: 'BG_LOCKED' }, 'a cutover waits for no deploy: it is refused');
  t.equal((await first).noop, false);
  t.ok((await p.bg.deploy()).noop, 'the lock is free again');
});

t.test('deploy by tag and from a bare repo.git after a push', async (t) => {
  const { proxy: p, commit, repo } = await startReleaseSetup(t);
  const v1 = commit('v1');
  repo.git('tag', 'v1.0');
  commit('v2');
  const byTag = await p.bg.deploy({ commit: 'v1.0' });
  t.equal(byTag.commit, v1);
  repo.git('push', '-q', path.join(p.root, 'repo.git'), 'HEAD:refs/heads/main');
  const v2 = repo.git('rev-parse', 'HEAD');
  const fromBare = await p.bg.deploy({ from: path.join(p.root, 'repo.git') });
  t.equal(fromBare.commit, v2);
  t.equal(await get(p.port, 'next.live.test'), 'green v2');
  await t.rejects(p.bg.deploy({ commit: 'no-such-branch' }), { code: 'BG_DEPLOY', message: /resolve failed: no commit, tag or branch "no-such-branch"/ });
});

t.test('a dirty working copy is refused without a commit unless allowed', async (t) => {
  const { proxy: p, commit, repo } = await startReleaseSetup(t);
  commit('v1');
  writeFileSync(path.join(repo.dir, 'scratch.txt'), 'uncommitted');
  await t.rejects(p.bg.deploy(), { code: 'BG_DEPLOY', message: /uncommitted changes/ });
  t.equal((await p.bg.deploy({ allowDirty: true })).noop, false);
});

t.test('rollback brings back the previous release, and refuses when a deploy replaced it', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t);
  const v1 = commit('v1');
  await p.bg.deploy();
  await p.bg.cutover(); // green v1 live
  commit('v2');
  await p.bg.deploy();
  const c = await p.bg.cutover(); // blue v2 live, green v1 next
  t.equal(c.wasCommit, v1, 'the cutover records what it replaced');
  const r = await p.bg.rollback();
  t.equal(r.live, 'green');
  t.equal(await get(p.port, 'live.test'), 'green v1');
  commit('v3');
  await p.bg.deploy(); // v3 into blue: the release rollback would bring back (v2) is gone
  await t.rejects(p.bg.rollback(), { code: 'BG_STATE', message: /previous release [0-9a-f]{7} is no longer on blue \(it now holds [0-9a-f]{7}, deployed since\)/ });
  t.equal(await get(p.port, 'live.test'), 'green v1', 'nothing changed');
  const h = (await readHistory(p.root)).filter((e) => e.action === 'rollback');
  t.match(h.at(-1), { result: 'failed' });
});

t.test('rollback with nothing to roll back to says so and changes nothing, also with force', async (t) => {
  const { proxy: p } = await startReleaseSetup(t);
  const before = (await p.bg.status()).live;
  for (const opts of [{}, { force: true }]) {
    await t.rejects(p.bg.rollback(opts), { code: 'BG_STATE', message: /^nothing to roll back to: .* holds no release$/ });
    t.equal((await p.bg.status()).live, before, `live unchanged (${JSON.stringify(opts)})`);
  }
  const h = (await readHistory(p.root)).filter((e) => e.action === 'rollback');
  t.same(h.map((e) => e.result), ['failed', 'failed']);
});

t.test('restart of a color with no release refuses and starts nothing', async (t) => {
  const { proxy: p } = await startReleaseSetup(t);
  await t.rejects(p.bg.restartColor('green'), { code: 'BG_STATE', message: /^green has no release \(.* is empty\): deploy one first/ });
  t.not((await p.bg.status()).colors.green.state, 'running', 'nothing started');
});

t.test('after serve restarts, rollback finds the previous release in history', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t);
  commit('v1');
  await p.bg.deploy();
  await p.bg.cutover(); // green v1
  commit('v2');
  await p.bg.deploy();
  await p.bg.cutover(); // blue v2, previous: green v1
  await p.stop();
  const again = await startServer({ config: loadConfig(p.root), logger: silentLogger(), accessLog: false });
  t.teardown(() => again.stop());
  await waitFor(async () => (await again.bg.status()).colors.green.state === 'running', 15_000, 'green running again');
  const r = await again.bg.rollback();
  t.same([r.live, r.was], ['green', 'blue']);
  const port = Number(again.listen!.split(':').pop());
  t.equal(await get(port, 'live.test'), 'green v1');
});
