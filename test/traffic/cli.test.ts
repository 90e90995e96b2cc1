// The traffic commands as a user runs them against a running serve: maintenance,
// pause/resume, cutover --canary, shown by status and history. (Refusals: cli-usage.test.ts.)
import t from 'tap';
import { readHistory } from '../../src/deploy/history.js';
import { cli, initWithBackends, serve } from '../helpers/cli.js';
import { request } from '../helpers/http.js';

t.test('maintenance, pause/resume and a canary through the CLI, shown by status', async (t) => {
  const { root } = await initWithBackends(t, '127.0.0.1:0');
  const s = await serve(t, root);

  const on = await cli(['maintenance', 'on', '--retry-after', '60', '--root', root]);
  t.equal(on.code, 0, on.stderr);
  t.match(on.stdout, /^maintenance on: live hosts answer 503 \(Retry-After: 60\) with the built-in page/);
  const down = await request(s.port, 'shop.test');
  t.equal(down.status, 503);
  t.equal(down.headers['retry-after'], '60');
  const st = await cli(['status', '--root', root]);
  t.match(st.stdout, /^maintenance: ON since \S+ \(503, Retry-After 60, built-in page\)/m);
  const json = JSON.parse((await cli(['status', '--json', '--root', root])).stdout) as { traffic: Record<string, unknown> };
  t.match(json.traffic, { maintenance: { retryAfterS: 60 }, pause: null, canary: null, access: { live: null, next: null } });
  t.equal((await cli(['maintenance', 'off', '--root', root])).code, 0);
  t.equal((await request(s.port, 'shop.test')).status, 200);

  // A wait long enough for a loaded machine to run status and resume while the request waits.
  const paused = await cli(['pause', '--timeout', '2m', '--root', root]);
  t.equal(paused.code, 0, paused.stderr);
  t.match(paused.stdout, /^paused: live requests wait \(up to 2m each\); none in flight/);
  const waiting = request(s.port, 'shop.test', { timeoutMs: 180_000 });
  const ps = await cli(['status', '--root', root]);
  t.match(ps.stdout, /^paused since \S+: \d+ requests? waiting \(up to 2m each\)/m);
  const resumed = await cli(['resume', '--root', root]);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stdout, /^resumed after \d+ ms: 1 waiting request goes on$/);
  t.equal((await waiting).status, 200, 'the held request went on');
  const again = await cli(['resume', '--root', root]);
  t.equal(again.code, 0, 'resume when not paused is done, as a second maintenance off is (issue 23)');
  t.equal(again.stdout, 'not paused: nothing to resume');

  const canary = await cli(['cutover', '--canary', '10%', '--root', root]);
  t.equal(canary.code, 0, canary.stderr);
  t.match(canary.stdout, /^canary: 10% of live traffic to green, sticky per client; bgproxy cutover completes it/);
  t.match((await cli(['status', '--root', root])).stdout, /^canary: 10% of live traffic to green since \S+ \(blue \d+ requests, 0% 5xx; green \d+ requests, 0% 5xx\)/m);
  const back = await cli(['rollback', '--root', root]);
  t.equal(back.code, 0, back.stderr);
  t.match(back.stdout, /^canary ended: all live traffic on blue/);
  t.match((await cli(['status', '--root', root])).stdout, /^last canary: 10% to green, ended by rollback/m);

  const actions = (await readHistory(root)).map((e) => e.action);
  t.same(actions, ['maintenance-on', 'maintenance-off', 'pause', 'resume', 'canary', 'rollback']);
  const hist = await cli(['history', '--root', root]);
  t.match(hist.stdout, /canary of 10% to green ended/);
});
