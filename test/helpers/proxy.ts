// An in-process bgproxy (the same startServer the CLI uses) on 127.0.0.1:0.
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { type Running, startServer } from '../../src/serve.js';
import { makeRoot } from './root.js';

type T = { teardown(fn: () => unknown): void };

export interface TestProxy extends Running {
  root: string;
  port: number;
  url: string;
}

export interface ProxyOptions {
  blue: { port: number };
  green: { port: number };
  /** Extra bgproxy.json keys. */
  settings?: Record<string, unknown>;
}

export async function startProxy(t: T, opts: ProxyOptions): Promise<TestProxy> {
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: opts.blue.port }, green: { port: opts.green.port } },
    holdMs: 0,
    drainTimeoutMs: 5000,
    ...opts.settings,
  });
  const running = await startServer({ config: loadConfig(root), logger: silentLogger(), accessLog: false });
  t.teardown(() => running.stop());
  const port = Number(running.listen!.split(':').pop());
  return { ...running, root, port, url: `http://127.0.0.1:${port}` };
}
