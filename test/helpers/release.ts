// A supervised bgproxy whose colors are deployed from a real git repository holding the
// fixture app; each commit carries its version in a file.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/serve.js';
import { WorkRepo } from '../deploy/git-repos.js';
import { FIXTURE_APP } from './apps.js';
import { freePort } from './ports.js';
import type { TestProxy } from './proxy.js';
import { makeRoot, tempDir } from './root.js';

type T = { teardown(fn: () => unknown): void };

export interface ReleaseSetup {
  proxy: TestProxy;
  repo: WorkRepo;
  /** Commits the app at `version` (extra files optional); returns the sha. */
  commit(version: string, files?: Record<string, string | null>): string;
}

export async function startReleaseSetup(t: T, app: Record<string, unknown> = {}, settings: Record<string, unknown> = {}): Promise<ReleaseSetup> {
  const repo = WorkRepo.init(path.join(tempDir(t), 'app'));
  const source = readFileSync(FIXTURE_APP, 'utf8');
  const commit = (version: string, files: Record<string, string | null> = {}): string =>
    repo.commit(`Release ${version}`, { 'app.js': source, VERSION: `${version}\n`, ...files });
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    holdMs: 8000,
    drainTimeoutMs: 5000,
    app: {
      repo: repo.dir,
      install: ['test -f VERSION'],
      // tap's loaders in NODE_OPTIONS would slow every app start.
      env: { NODE_OPTIONS: '' },
      // A release may carry fixture.env with behaviour switches (e.g. FIXTURE_UNHEALTHY=1).
      start: 'if [ -f fixture.env ]; then . ./fixture.env; fi; APP_VERSION=$(cat VERSION) exec node app.js',
      health: { path: '/health', intervalMs: 200, timeoutMs: 1000 },
      startTimeoutMs: 8000,
      stopTimeoutMs: 3000,
      ...app,
    },
    ...settings,
  });
  const running = await startServer({ config: loadConfig(root), logger: silentLogger(), accessLog: false });
  t.teardown(() => running.stop());
  const port = Number(running.listen!.split(':').pop());
  return { proxy: { ...running, root, port, url: `http://127.0.0.1:${port}` }, repo, commit };
}
