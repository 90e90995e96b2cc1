// `bgproxy serve` when its listen port, its TLS port or its metrics port is already taken
// (an old serve, nginx, another site): one line that names the port and the process holding
// it (pid and command, from /proc), exit 1, and nothing left behind (a serve on the same
// root starts once the port is free).
import t from 'tap';
import { cli, oneLine, serve } from '../helpers/cli.js';
import { startForeign } from '../helpers/foreign.js';
import { editConfig, makeRoot } from '../helpers/root.js';
import { issueCert, makeCa } from '../helpers/tls.js';

const HOSTS = { live: ['live.test'], next: ['next.live.test'] };

for (const setting of ['listen', 'tls.listen', 'metrics.listen'] as const) {
  t.test(`${setting} taken: serve refuses in one line naming the port and its holder`, async (t) => {
    const other = await startForeign(t);
    const ca = makeCa(t);
    const cert = issueCert(ca, 'live', ['live.test', 'next.live.test']);
    const taken = `127.0.0.1:${other.port}`;
    const root = makeRoot(t, {
      hosts: HOSTS,
      colors: { blue: { port: 1 }, green: { port: 2 } },
      ...(setting === 'listen' ? { listen: taken } : {}),
      ...(setting === 'tls.listen' ? { tls: { listen: taken, certificates: [cert] } } : {}),
      ...(setting === 'metrics.listen' ? { metrics: { listen: taken } } : {}),
    });
    const r = await cli(['serve', '--root', root, '--log-level', 'silent']);
    const label = setting === 'listen' ? '' : ` \\(${setting.replace('.', '\\.')}\\)`;
    oneLine(
      t,
      r,
      1,
      new RegExp(
        `^bgproxy: cannot listen on 127\\.0\\.0\\.1:${other.port}${label}: port ${other.port} is already in use by pid ${other.pid} \\(.*node -e.*\\): stop it, or change ${setting.replace('.', '\\.')} in bgproxy\\.json$`,
      ),
    );
    // Nothing was left holding the root: once the port is free, serve starts.
    await other.stop();
    if (setting === 'listen') {
      editConfig(root, (c) => {
        c.listen = '127.0.0.1:0';
      });
    }
    const s = await serve(t, root);
    t.equal(await s.stop(), 0, 'a serve on the same root starts and stops');
  });
}
