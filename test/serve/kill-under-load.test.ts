// kill -9 of the live app under 50 keep-alive clients: the supervisor restarts it and the
// proxy holds requests meanwhile, so no client sees an error.
import t from 'tap';
import { startWithApps, waitFor } from '../helpers/apps.js';
import { startLoad } from '../helpers/load.js';

t.test('kill -9 of the live app under load: restarted, zero errors, zero 5xx', async (t) => {
  const p = await startWithApps(t, { colors: ['blue'], settings: { holdMs: 8000 } });
  await waitFor(async () => (await p.bg.status()).colors.blue.state === 'running');
  const pid = (await p.bg.status()).colors.blue.pid as number;
  const load = startLoad({ port: p.port, host: 'live.test', clients: 50, maxMs: 30_000 });
  await waitFor(() => load.stats.requests > 200, 10_000, 'traffic');
  const before = load.stats.requests;
  process.kill(pid, 'SIGKILL');
  await waitFor(async () => {
    const s = (await p.bg.status()).colors.blue;
    return s.state === 'running' && s.pid !== pid;
  }, 20_000, 'restart');
  const restartedAt = load.stats.requests;
  await waitFor(() => load.stats.requests > restartedAt + 200, 10_000, 'traffic after the restart');
  const stats = await load.stop();
  const s = (await p.bg.status()).colors.blue;
  t.comment(`requests=${stats.requests} (before kill ${before}) errors=${stats.errors.length} non2xx=${stats.non2xx.length} restarts=${s.restarts}`);
  t.equal(s.restarts, 1, 'restarted once');
  t.match(s.lastExit, { signal: 'SIGKILL' });
  t.same(stats.errors, [], 'no client saw an error');
  t.same(stats.non2xx, [], 'no 5xx');
});
