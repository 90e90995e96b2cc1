// An app that starts but listens on another port than the one bgproxy gives it (it
// ignores $PORT): the start used to time out with "connection refused" and nothing else.
// Now the failure names where the app listens instead, and its pid.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { freePort } from '../helpers/ports.js';
import { get, startable } from './setup.js';

t.test('an app listening on another port than $PORT: the failure names that port and the pid', async (t) => {
  const other = await freePort();
  const a = await startable(t, { startTimeoutMs: 3000, env: { PORT: String(other) } });
  const err = await a.app.start().then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  t.ok(err, 'the start fails');
  t.equal(err?.code, 'BG_PROCESS');
  t.ok(a.app.pid, 'the app still runs');
  const m = new RegExp(
    `^blue did not become healthy within 3000 ms: app \\(pid (\\d+)\\) listens on 127\\.0\\.0\\.1:${other}, not on its port ${a.port}: make it listen on \\$PORT \\(bgproxy sets PORT=${a.port}\\)$`,
  ).exec(err?.message ?? '');
  t.ok(m, `the message names the port: ${err?.message}`);
  // The pid named is the process that listens (the app under the shell bgproxy runs it with).
  t.match(m ? readFileSync(`/proc/${m[1]}/cmdline`, 'utf8') : '', /app\.js/, 'the pid named is the app');
  t.equal(a.app.state, 'unhealthy');
  t.match(a.app.reason, new RegExp(`listens on 127\\.0\\.0\\.1:${other}, not on its port ${a.port}`));
  t.equal((await get(other, '/health')).status, 200, 'it really answers there');
});

t.test('an app that listens nowhere keeps the probe\'s own reason', async (t) => {
  // Listens on $PORT only after 60 s: nothing of its tree listens anywhere meanwhile.
  const a = await startable(t, { startTimeoutMs: 1500, command: `exec sleep 60` });
  await t.rejects(a.app.start(), { code: 'BG_PROCESS', message: /^blue did not become healthy within 1500 ms: connection refused$/ });
});

/** A node one-liner as the app's command: http servers answering 200 on each of `listens`. */
function servers(listens: string): string {
  const js = `const h=require('http');for(const [p,a] of ${listens})h.createServer((q,r)=>r.end('ok')).listen(p,a)`;
  return `exec ${JSON.stringify(process.execPath)} -e ${JSON.stringify(js).replaceAll('$', '\\$')}`;
}

t.test('the address is named as the app bound it: every address (IPv6), or several ports', async (t) => {
  const [p1, p2] = [await freePort(), await freePort()];
  const a = await startable(t, { startTimeoutMs: 2000, command: servers(`[[${p1},'::'],[${p2},'0.0.0.0']]`) });
  const err = (await a.app.start().catch((e: Error) => e)) as Error;
  t.match(err.message, new RegExp(`: app \\(pid ${a.app.pid}\\) listens on (\\[::\\]:${p1} and 0\\.0\\.0\\.0:${p2}|0\\.0\\.0\\.0:${p2} and \\[::\\]:${p1}), not on its port ${a.port}:`));
});

t.test('an app listening on its port and on another (an admin port) is healthy', async (t) => {
  const admin = await freePort();
  const port = await freePort();
  const a = await startable(t, { port, startTimeoutMs: 20_000, command: servers(`[[${admin},'127.0.0.1'],[${port},'127.0.0.1']]`) });
  await a.app.start();
  t.equal(a.app.state, 'running');
});
