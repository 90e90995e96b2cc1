// The app commands as typed on the server: status table, restart, stop, start, logs, history.
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { FIXTURE_APP, waitFor } from '../helpers/apps.js';
import { cli, serve } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { makeRoot } from '../helpers/root.js';

t.test('restart, stop, start and logs through the CLI', async (t) => {
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    app: { start: 'echo "hello from $BG_COLOR"; exec node app.js', env: { NODE_OPTIONS: '' }, health: { path: '/health', intervalMs: 200 } },
  });
  for (const c of ['blue', 'green']) copyFileSync(FIXTURE_APP, path.join(root, c, 'repo', 'app.js'));
  const s = await serve(t, root);
  const status = async () => JSON.parse((await cli(['status', '--json', '--root', root])).stdout);
  await waitFor(async () => {
    const st = await status();
    return st.colors.blue.state === 'running' && st.colors.green.state === 'running';
  });
  const table = await cli(['status', '--root', root]);
  t.match(table.stdout, /^live: blue {3}next: green {3}mode: proxy {3}listen: 127\.0\.0\.1:\d+ {3}bgproxy \S+$/m);
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  t.equal((await status()).version, version, 'status says which bgproxy version serve runs');
  t.ok(table.stdout.includes(`bgproxy ${version}\n`));
  t.match(table.stdout, /^blue +live +\d+ +running +yes +\d+ /m);
  t.match(table.stdout, /^green +next +\d+ +running +yes +\d+ /m);

  const before = (await status()).colors.green.pid;
  const r = await cli(['restart', 'next', '--root', root]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^green restarted \(drained in \d+ ms\)$/m);
  t.not((await status()).colors.green.pid, before);

  const refused = await cli(['stop', 'blue', '--root', root]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /^bgproxy: blue is live: stopping it takes the public site down/);
  const bad = await cli(['stop', 'purple', '--root', root]);
  t.equal(bad.code, 2, 'a bad color is bad usage');
  const stop = await cli(['stop', 'green', '--root', root]);
  t.equal(stop.code, 0, stop.stderr);
  t.equal((await status()).colors.green.state, 'stopped');
  const start = await cli(['start', 'green', '--root', root]);
  t.equal(start.code, 0, start.stderr);
  t.match(await get(s.port, 'next.live.test'), /^green/);

  const logs = await cli(['logs', 'green', '-n', '50', '--root', root]);
  t.equal(logs.code, 0);
  t.match(logs.stdout, /hello from green/, "the app's own output");
  t.match(logs.stdout, /started pid \d+/, 'lifecycle notes');
  const hist = await cli(['history', '--root', root]);
  t.equal(hist.code, 0);
  t.match(hist.stdout, /no history yet/);
  t.equal(await s.stop(), 0);
});
