// A bgproxy root in a short temp dir (unix socket paths are limited to 107 bytes).
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { initRoot } from '../../src/layout/init.js';

type T = { teardown(fn: () => unknown): void };

export function tempDir(t: T, prefix = 'bg-'): string {
  const dir = mkdtempSync(path.join('/tmp', prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Creates ROOT with `settings` merged over the defaults (listen 127.0.0.1:0). */
export function makeRoot(t: T, settings: Record<string, unknown> = {}): string {
  const root = path.join(tempDir(t), 'root');
  initRoot({ root, settings: { listen: '127.0.0.1:0', ...settings } });
  return root;
}
