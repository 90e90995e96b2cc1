// Commands for the supervised app processes: restart, stop, start, logs.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { resolveRoot } from '../config.js';
import { controlRequest } from '../control/client.js';
import { BgError } from '../errors.js';
import { followLog, tailLog } from '../supervisor/log-file.js';

const COLOR_ARGS = ['blue', 'green', 'live', 'next'];

function checkColor(v: string, allowRoles = true): string {
  const ok = allowRoles ? COLOR_ARGS : ['blue', 'green'];
  if (!ok.includes(v)) throw new BgError('BG_USAGE', `expected ${ok.join(', ')}, got "${v}"`);
  return v;
}

export function registerApps(program: Command): void {
  program
    .command('restart <color>')
    .description('drain a color, stop its app and start it again (blue, green, live or next)')
    .option('--root <dir>', 'the root directory')
    .action(async (color: string, f: { root?: string }) => {
      const r = (await controlRequest(resolveRoot(f.root), 'restart', { color: checkColor(color) })) as {
        color: string;
        drainMs: number;
        cutOff: number;
      };
      process.stdout.write(`${r.color} restarted (drained in ${r.drainMs} ms${r.cutOff ? `, ${r.cutOff} cut off` : ''})\n`);
    });
  program
    .command('stop <color>')
    .description('drain a color and stop its app (the live color only with --force)')
    .option('--root <dir>', 'the root directory')
    .option('--force', 'also stop the live color (takes the site down)')
    .action(async (color: string, f: { root?: string; force?: boolean }) => {
      const r = (await controlRequest(resolveRoot(f.root), 'stop', { color: checkColor(color), force: f.force === true })) as {
        color: string;
        drainMs: number;
        killed: boolean;
      };
      process.stdout.write(`${r.color} stopped (drained in ${r.drainMs} ms${r.killed ? ', had to SIGKILL' : ''})\n`);
    });
  program
    .command('start <color>')
    .description("start a color's app and wait until it is healthy")
    .option('--root <dir>', 'the root directory')
    .action(async (color: string, f: { root?: string }) => {
      const r = (await controlRequest(resolveRoot(f.root), 'start', { color: checkColor(color) })) as { color: string };
      process.stdout.write(`${r.color} running\n`);
    });
  program
    .command('logs <color>')
    .description("show a color's app log (ROOT/logs/COLOR.log)")
    .option('--root <dir>', 'the root directory')
    .option('-n <lines>', 'how many lines', '50')
    .option('-f, --follow', 'keep printing new lines')
    .action(async (color: string, f: { root?: string; n: string; follow?: boolean }) => {
      const c = checkColor(color, false);
      const n = Number(f.n);
      if (!Number.isInteger(n) || n < 0) throw new BgError('BG_USAGE', `-n must be a number of lines, got "${f.n}"`);
      const file = path.join(resolveRoot(f.root), 'logs', `${c}.log`);
      // Nothing printed and exit 0 looked like a wrong root or a broken command: say why it is empty.
      if (!existsSync(file)) process.stderr.write(`bgproxy: no log yet at ${file}: the ${c} app has not started (bgproxy status shows each color's state)\n`);
      const lines = await tailLog(file, n);
      if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
      if (f.follow) {
        const follower = followLog(file, (text) => process.stdout.write(text));
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await follower.close();
      }
    });
}
