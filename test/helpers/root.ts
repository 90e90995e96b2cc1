// A bgproxy root in a short temp dir (unix socket paths are limited to 107 bytes).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { initRoot } from '../../src/layout/init.js';
import { reaper } from './reaper.js';

type T = { teardown(fn: () => unknown): void };

export function tempDir(t: T, prefix = 'bg-'): string {
  const dir = mkdtempSync(path.join('/tmp', prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Removed even when the test is killed before its teardown runs.
  reaper()?.removeAtExit(dir);
  return dir;
}

/** Creates ROOT with `settings` merged over the defaults (listen 127.0.0.1:0). */
export function makeRoot(t: T, settings: Record<string, unknown> = {}): string {
  const root = path.join(tempDir(t), 'root');
  initRoot({ root, settings: { listen: '127.0.0.1:0', ...settings } });
  return root;
}

/** bgproxy.json as init writes it, loosely typed for edits. */
export interface RawConfig {
  hosts: { live: string[]; next: string[] };
  colors: Record<'blue' | 'green', { port: number }>;
  app: { env?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

/** Rewrites ROOT/bgproxy.json through `edit`, as a user with an editor would. */
export function editConfig(root: string, edit: (c: RawConfig) => void): void {
  const file = path.join(root, 'bgproxy.json');
  const c = JSON.parse(readFileSync(file, 'utf8')) as RawConfig;
  edit(c);
  writeFileSync(file, JSON.stringify(c, null, 2));
}
