// A root whose colors run test/fixtures/app.js under bgproxy's supervisor.
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/serve.js';
import { freePort } from './ports.js';
import type { TestProxy } from './proxy.js';
import { makeRoot } from './root.js';

type T = { teardown(fn: () => unknown): void };

export const FIXTURE_APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/app.js');

export interface AppsOptions {
  /** Extra env per color (e.g. FIXTURE_EXIT_AT_START). */
  env?: Partial<Record<'blue' | 'green', Record<string, string>>>;
  settings?: Record<string, unknown>;
  /** Colors that get the fixture app in their repo (default both). */
  colors?: Array<'blue' | 'green'>;
}

/** Starts a supervised bgproxy in-process; resolves once every color with an app is ready. */
export async function startWithApps(t: T, opts: AppsOptions = {}): Promise<TestProxy> {
  const [bluePort, greenPort] = [await freePort(), await freePort()];
  // tap's loaders in NODE_OPTIONS would slow every app start.
  const env: Record<string, string> = { APP_VERSION: '$BG_RELEASE', NODE_OPTIONS: '' };
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: bluePort }, green: { port: greenPort } },
    holdMs: 5000,
    drainTimeoutMs: 5000,
    app: {
      // Per-color behaviour switches live in the color's checkout, like a real release's files.
      start: 'if [ -f fixture.env ]; then . ./fixture.env; fi; exec node app.js',
      env,
      health: { path: '/health', intervalMs: 200, timeoutMs: 1000 },
      startTimeoutMs: 10_000,
      stopTimeoutMs: 3000,
      ...((opts.settings?.app as object) ?? {}),
    },
    ...Object.fromEntries(Object.entries(opts.settings ?? {}).filter(([k]) => k !== 'app')),
  });
  for (const c of opts.colors ?? ['blue', 'green']) copyFileSync(FIXTURE_APP, path.join(root, c, 'repo', 'app.js'));
  for (const [color, vars] of Object.entries(opts.env ?? {})) {
    const lines = Object.entries(vars ?? {}).map(([k, v]) => `export ${k}='${v}'\n`);
    writeFileSync(path.join(root, color, 'repo', 'fixture.env'), lines.join(''));
  }
  const running = await startServer({ config: loadConfig(root), logger: silentLogger(), accessLog: false });
  t.teardown(() => running.stop());
  const port = Number(running.listen!.split(':').pop());
  return { ...running, root, port, url: `http://127.0.0.1:${port}` };
}

export async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
