// README's commands table and each command's --help list the same options (issue 23: verify's
// --no-posts and --no-websocket were in --help only, so a newcomer never found them).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import t from 'tap';
import { buildProgram } from '../../src/cli/program.js';
import { cli } from '../helpers/cli.js';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');

/** The first cell of each row of the table under "## Commands": its `bgproxy …` spans. */
function tableUsages(): string[] {
  const text = readFileSync(README, 'utf8');
  const section = text.slice(text.indexOf('\n## Commands\n'), text.indexOf('\n## ', text.indexOf('\n## Commands\n') + 5));
  const out: string[] = [];
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `bgproxy ')) continue;
    const first = line.slice(1, line.search(/[^\\]\|/) + 1);
    for (const m of first.matchAll(/`(bgproxy [^`]+)`/g)) out.push((m[1] as string).replace(/\\\|/g, '|'));
  }
  return out;
}

/** `bgproxy certs renew [--force]` -> the certs renew command and the flags written. */
function parseUsage(program: Command, usage: string): { cmd: Command; path: string; flags: Set<string> } | null {
  const words = usage.split(/\s+/).slice(1);
  let cmd = program;
  const names: string[] = [];
  for (const w of words) {
    const sub = cmd.commands.find((c) => c.name() === w);
    if (!sub) break;
    cmd = sub;
    names.push(w);
  }
  if (cmd === program) return null;
  const flags = new Set([...usage.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])/g)].map((m) => m[1] as string));
  return { cmd, path: names.join(' '), flags };
}

/** What --help lists for a command, less --root (global, described once above the table): each option's spellings ("-f, --follow"). */
function helpOptions(cmd: Command): string[][] {
  return cmd.options.map((o) => [o.short, o.long].filter((f): f is string => f !== undefined)).filter((names) => !names.includes('--root'));
}

/** The options of --help missing from the README's usage, and the README's flags --help does not have. */
function compare(written: Set<string>, options: string[][]): { missing: string[]; unknown: string[] } {
  const missing = options.filter((names) => !names.some((n) => written.has(n))).map((names) => names.join(', '));
  const known = new Set(options.flat());
  return { missing, unknown: [...written].filter((f) => !known.has(f)) };
}

t.test('every command in the table lists the options of its --help, no more, no fewer', async (t) => {
  const program = buildProgram();
  const usages = tableUsages();
  t.ok(usages.length >= 20, `the table was found (${usages.length} usages)`);
  const seen = new Set<string>();
  for (const usage of usages) {
    const u = parseUsage(program, usage);
    t.ok(u, `"${usage}" names a command`);
    if (!u) continue;
    seen.add(u.path.split(' ')[0] as string);
    // fleet's row names its subcommands; their options are in the Fleets section.
    if (u.path === 'fleet') continue;
    t.same(compare(u.flags, helpOptions(u.cmd)), { missing: [], unknown: [] }, `bgproxy ${u.path}: README vs --help`);
  }
  const missing = program.commands.map((c) => c.name()).filter((n) => !seen.has(n));
  t.same(missing, [], 'every command has a row');
});

t.test('--help prints those options (the real CLI)', async (t) => {
  const r = await cli(['verify', '--help']);
  t.equal(r.code, 0);
  for (const names of helpOptions(buildProgram().commands.find((c) => c.name() === 'verify') as Command)) t.match(r.stdout, names.join(', '));
});
