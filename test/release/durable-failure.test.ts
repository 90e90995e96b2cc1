// A failed deploy is remembered across a restart of serve (COLOR/etc/failed.json); a deploy
// that fails before it changed next (a mistyped commit) leaves next as it was.
import { existsSync } from 'node:fs';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { failedPath } from '../../src/deploy/failed-mark.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/serve.js';
import { waitFor } from '../helpers/apps.js';
import { get } from '../helpers/http.js';
import { startReleaseSetup } from '../helpers/release.js';

t.test('a deploy failing before it touched next leaves it healthy; a failed install survives a restart of serve', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t, {
    install: ['test -f VERSION', 'if [ -f broken ]; then echo "pip: no such package" >&2; exit 3; fi'],
  });
  commit('v1');
  await p.bg.deploy();
  t.equal(await get(p.port, 'next.live.test'), 'green v1');

  // A mistyped commit: nothing of green changed, so nothing of its state does.
  await t.rejects(p.bg.deploy({ commit: 'no-such-branch' }), { code: 'BG_DEPLOY', message: /resolve failed/ });
  const after = await p.bg.status();
  t.equal(after.colors.green.state, 'running', 'next keeps its healthy release');
  t.equal(after.colors.green.reason, null);
  t.notOk(existsSync(failedPath(p.root, 'green')), 'nothing recorded');

  commit('v2', { broken: '' });
  await t.rejects(p.bg.deploy(), { code: 'BG_DEPLOY', message: /install failed/ });
  t.ok(existsSync(failedPath(p.root, 'green')), 'the failure is on disk');
  await p.stop();

  const again = await startServer({ config: loadConfig(p.root), logger: silentLogger(), accessLog: false });
  t.teardown(() => again.stop());
  const s = await again.bg.status();
  t.equal(s.colors.green.state, 'failed', 'a restart of serve does not forget it');
  t.match(s.colors.green.reason, /install failed/);
  await t.rejects(again.bg.cutover(), { code: 'BG_UNHEALTHY', message: /green is marked failed \(.*install failed/ });
  t.equal(again.bg.roles.live, 'blue');

  commit('v3', { broken: null });
  await again.bg.deploy();
  t.notOk(existsSync(failedPath(p.root, 'green')), 'a completed deploy clears it');
  await waitFor(async () => (await again.bg.status()).colors.green.state === 'running', 15_000, 'green running');
  await again.bg.cutover();
  t.equal(await get(Number(again.listen!.split(':').pop()), 'live.test'), 'green v3');
});
