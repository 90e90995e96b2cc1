// The operation metrics after real operations: a deploy from a git repository into a
// supervised color, a cutover, a crash and its automatic restart, a failed deploy.
import t from 'tap';
import { waitFor } from '../helpers/apps.js';
import { get, request } from '../helpers/http.js';
import { parseMetrics, sample, scrape } from '../helpers/metrics.js';
import { startReleaseSetup } from '../helpers/release.js';

t.test('deploys, cutovers, app up and restarts, as the operations happen', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t, {}, { metrics: { listen: '127.0.0.1:0' } });
  const read = async () => parseMetrics((await scrape(p.metricsListen!)).body);
  let s = await read();
  t.equal(sample(s, 'bgproxy_app_up', { color: 'green' }), 0, 'nothing deployed: no app up');
  t.equal(sample(s, 'bgproxy_deploys_total', { result: 'ok' }), 0);

  commit('v1');
  const d = await p.bg.deploy();
  t.equal(d.color, 'green');
  s = await read();
  t.equal(sample(s, 'bgproxy_deploys_total', { result: 'ok' }), 1);
  t.equal(sample(s, 'bgproxy_app_up', { color: 'green' }), 1, 'the deployed app is up');
  t.equal(sample(s, 'bgproxy_app_up', { color: 'blue' }), 0);
  t.equal((await p.bg.deploy()).noop, true);
  s = await read();
  t.equal(sample(s, 'bgproxy_deploys_total', { result: 'noop' }), 1, 'the same commit again: a no-op, counted as such');

  await p.bg.cutover();
  t.equal(await get(p.port, 'live.test'), 'green v1');
  s = await read();
  t.equal(sample(s, 'bgproxy_live', { color: 'green' }), 1);
  t.equal(sample(s, 'bgproxy_cutovers_total'), 1);
  t.equal(sample(s, 'bgproxy_requests_total', { role: 'live', color: 'green', code: '200' }), 1);

  // A crash: the supervisor restarts the app; the counter moves once it is back.
  t.equal((await request(p.port, 'live.test', { path: '/crash' })).status, 200);
  await waitFor(
    async () => {
      const now = await read();
      return sample(now, 'bgproxy_app_restarts_total', { color: 'green' }) === 1 && sample(now, 'bgproxy_app_up', { color: 'green' }) === 1;
    },
    30_000,
    'the restart after the crash',
  );
  t.pass('restarted after the crash, up again');

  // A deploy that fails (its install step exits 1) is counted as failed; live is untouched.
  commit('v2', { 'fail-install': '1' });
  await p.bg.reload({ ...p.bg.config, app: { ...p.bg.config.app, install: ['test ! -f fail-install'] } });
  await t.rejects(p.bg.deploy(), { code: 'BG_DEPLOY' });
  s = await read();
  t.equal(sample(s, 'bgproxy_deploys_total', { result: 'failed' }), 1);
  t.equal(sample(s, 'bgproxy_deploys_total', { result: 'ok' }), 1);
  t.equal(await get(p.port, 'live.test'), 'green v1');
});
