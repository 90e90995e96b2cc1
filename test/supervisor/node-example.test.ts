// examples/node-app run exactly as its bgproxy.json says.
import { cpSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { appEnv, parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { AppProcess } from '../../src/supervisor/app-process.js';
import { freePort } from '../helpers/ports.js';
import { alive, get } from './setup.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/node-app', import.meta.url));

t.test('examples/node-app answers with its color and version, stops on SIGTERM', async (t) => {
  const root = t.testdir({});
  const dir = path.join(root, 'green', 'repo', 'examples', 'node-app');
  cpSync(EXAMPLE, dir, { recursive: true });
  const config = parseConfig(JSON.parse(readFileSync(path.join(EXAMPLE, 'bgproxy.json'), 'utf8')), root);
  const port = await freePort();
  const env: Record<string, string> = { ...appEnv(config, 'green', { PORT: String(port) }), NODE_OPTIONS: '' };
  const version = readFileSync(path.join(EXAMPLE, 'VERSION'), 'utf8').trim();
  const app = new AppProcess({
    color: 'green',
    port,
    command: config.app.start!,
    cwd: dir,
    env,
    health: config.app.health,
    startTimeoutMs: 20_000,
    stopSignal: config.app.stopSignal,
    stopTimeoutMs: config.app.stopTimeoutMs,
    logFile: path.join(root, 'logs', 'green.log'),
    logMaxBytes: config.app.logMaxBytes,
    pidFile: path.join(root, 'green', 'etc', 'app.pid'),
    logger: silentLogger(),
  });
  t.teardown(() => app.stop());
  await app.start();
  t.equal((await get(port, '/')).body, `Hello 0-downtime green World! (version ${version})\n`);
  const pid = app.pid!;
  t.same(await app.stop(), { killed: false });
  t.notOk(alive(pid));
  t.match(readFileSync(path.join(root, 'logs', 'green.log'), 'utf8'), /SIGTERM: closing/);
});
