// The root a command works on, checked once before the command runs: a missing directory, a
// file, or a directory that was never initialised each get one line that names it and the
// command that fixes it (before, `status --root /nope` suggested `serve --root /nope`, which
// then failed on the missing bgproxy.json). Also makes --root a global option: it works before
// the command (`bgproxy --root X status`) as well as after it.
import { statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CONFIG_FILE, resolveRoot } from '../config.js';
import { BgError } from '../errors.js';
import { checkCreatable, statOrNull } from '../layout/mkdirs.js';

/** Commands that make a root, or need none (verify --url), check it themselves. */
const UNCHECKED = new Set(['init', 'verify']);

/** Where the root came from, for the message: the flag, the variable or the directory. */
function origin(flag: string | undefined): string {
  if (flag !== undefined) return '';
  return process.env.BGPROXY_ROOT !== undefined ? ' (from $BGPROXY_ROOT)' : ' (the current directory; pass --root DIR or set BGPROXY_ROOT)';
}

/** Throws BG_USAGE unless `root` exists, is a directory and holds bgproxy.json. */
export function checkRoot(flag: string | undefined): string {
  const root = resolveRoot(flag);
  const stat = statOrNull(root);
  if (!stat) throw new BgError('BG_USAGE', `no bgproxy root at ${root}${origin(flag)}: the directory does not exist (create one with: bgproxy init --root ${root})`);
  if (!stat.isDirectory()) throw new BgError('BG_USAGE', `--root ${root} is not a directory`);
  if (!statSync(path.join(root, CONFIG_FILE), { throwIfNoEntry: false })) {
    throw new BgError('BG_USAGE', `${root}${origin(flag)} is not a bgproxy root: it has no ${CONFIG_FILE} (create one with: bgproxy init --root ${root})`);
  }
  return root;
}

/** Throws BG_USAGE when `root` exists but is not a directory (init would fail on it half-way). */
export function checkInitRoot(flag: string | undefined): string {
  const root = resolveRoot(flag);
  const stat = statOrNull(root);
  if (stat && !stat.isDirectory()) throw new BgError('BG_USAGE', `--root ${root} is a file, not a directory: pick a directory (it is created if missing)`);
  checkCreatable(root);
  return root;
}

/**
 * A global --root, and the check before each top-level command that takes one. The
 * command's own --root wins over the global one; fleet commands take a fleet root instead.
 */
export function installRootOption(program: Command): void {
  program.option('--root <dir>', 'the root directory, before or after the command (default: $BGPROXY_ROOT or the current directory)');
  program.hook('preAction', (_program, action) => {
    if (!action.options.some((o) => o.long === '--root')) return;
    const global = program.opts<{ root?: string }>().root;
    if (global !== undefined && action.getOptionValue('root') === undefined) action.setOptionValue('root', global);
    if (action.parent !== program || UNCHECKED.has(action.name())) return;
    checkRoot(action.getOptionValue('root') as string | undefined);
  });
}
