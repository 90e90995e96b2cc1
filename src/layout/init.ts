// `bgproxy init`: the root on disk. Idempotent, adopts a root made by the classic recipe,
// and never overwrites a config that differs unless forced.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { COLORS, CONFIG_FILE, parseConfig } from '../config.js';
import { parseJsonFile } from '../config-json.js';
import { BgError } from '../errors.js';
import { type SiteFile, writeSiteFiles } from '../nginx/color-files.js';
import { renderServerBlocks } from '../nginx/conf.js';
import { refuseSymlink, writeFileAtomic } from './atomic.js';
import { checkCreatable, makeDirs } from './mkdirs.js';
import { type Repair, repairRoles } from './roles.js';

export interface InitOptions {
  root: string;
  /** Raw config keys set by flags (already shaped like bgproxy.json); merged over an existing config. */
  settings: Record<string, unknown>;
  force?: boolean;
}

export interface InitResult {
  root: string;
  configWritten: 'created' | 'updated' | 'unchanged';
  roles: Repair;
  created: string[];
  /** nginx mode: the files the site file of `nginx-config` includes, written where missing. */
  nginxFiles: SiteFile[];
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

function changedKeys(a: unknown, b: unknown, prefix = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) =>
      changedKeys((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k),
    );
  }
  return [prefix || '(root)'];
}

export function defaultSettings(): Record<string, unknown> {
  return {
    listen: '0.0.0.0:80',
    hosts: { live: [], next: [] },
    colors: { blue: { port: 8888 }, green: { port: 8889 } },
    app: {},
    drainTimeoutMs: 30000,
  };
}

export function initRoot(opts: InitOptions): InitResult {
  const root = path.resolve(opts.root);
  const file = path.join(root, CONFIG_FILE);
  let existing: Record<string, unknown> | null = null;
  if (existsSync(file)) {
    try {
      existing = parseJsonFile(readFileSync(file, 'utf8'), file, 'config: ', ' (fix it, or init --force)') as Record<string, unknown>;
    } catch (err) {
      if (!opts.force) throw err;
    }
  }
  const wanted = deepMerge(existing ?? defaultSettings(), opts.settings);
  // Validate before anything touches the disk: a bad flag changes nothing.
  const config = parseConfig(wanted, root);
  // What nginx mode writes into nginx's files is checked here too, not after the dirs exist.
  if (config.mode === 'nginx') renderServerBlocks(config);
  const changes = existing ? changedKeys(existing, wanted) : [];
  if (existing && changes.length > 0 && !opts.force) {
    throw new BgError(
      'BG_STATE',
      `${file} exists and would change (${changes.join(', ')}); rerun with --force to overwrite`,
    );
  }

  // Every refusal happens before the first directory is made.
  refuseSymlink(file);
  checkCreatable(root);
  const created: string[] = [];
  const mkdir = (dir: string, mode = 0o755): void => {
    for (const made of makeDirs(dir, mode)) if (made.startsWith(root)) created.push(path.relative(root, made) || '.');
  };
  mkdir(root);
  for (const color of COLORS) for (const sub of ['env', 'etc', 'repo']) mkdir(path.join(root, color, sub));
  mkdir(path.join(root, 'run'), 0o700);
  chmodSync(path.join(root, 'run'), 0o700);
  mkdir(path.join(root, 'logs'));
  const bare = path.join(root, 'repo.git');
  if (!existsSync(bare)) {
    execFileSync('git', ['init', '--bare', '--quiet', '--initial-branch=main', bare], { stdio: 'pipe' });
    created.push('repo.git');
  }
  const roles = repairRoles(root);
  let configWritten: InitResult['configWritten'] = 'unchanged';
  if (!existing || changes.length > 0) {
    writeFileAtomic(file, `${JSON.stringify(wanted, null, 2)}\n`);
    configWritten = existing ? 'updated' : 'created';
  }
  // A new root's site file must load in nginx before any deploy (issue 15).
  const nginxFiles = config.mode === 'nginx' ? writeSiteFiles(config) : [];
  return { root, configWritten, roles, created, nginxFiles };
}
