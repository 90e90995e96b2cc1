import type { Command } from 'commander';
import { parseHostName, parseListen, parsePort } from '../config.js';
import { BgError } from '../errors.js';
import { initRoot } from '../layout/init.js';
import { formatSiteFiles } from '../nginx/color-files.js';
import { checkInitRoot } from './root.js';

interface InitFlags {
  root?: string;
  host?: string[];
  nextHost?: string[];
  bluePort?: string;
  greenPort?: string;
  listen?: string;
  start?: string;
  install?: string[];
  repo?: string;
  appDir?: string;
  healthPath?: string;
  env?: string[];
  mode?: string;
  force?: boolean;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** --env KEY=VALUE (repeatable) -> app.env; the value may hold "=" and $BG_COLOR-style references. */
export function parseEnvFlags(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (eq < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new BgError('BG_USAGE', `--env: expected KEY=VALUE with a KEY of letters, digits and _ (e.g. --env BLUEGREEN='$BG_COLOR'), got "${pair}"`);
    }
    env[key] = pair.slice(eq + 1);
  }
  return env;
}

/** Flags -> the bgproxy.json keys they set (validated again as a whole by parseConfig). */
export function settingsFromFlags(f: InitFlags): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  if (f.listen !== undefined) s.listen = f.listen.includes(':') ? f.listen : `0.0.0.0:${f.listen}`;
  if (f.listen !== undefined) parseListen(s.listen, '--listen');
  if (f.host || f.nextHost) {
    const live = (f.host ?? []).map((h) => parseHostName(h, '--host'));
    // The recipe's convention: the preview of shop.example is next.shop.example.
    const next = f.nextHost ? f.nextHost.map((h) => parseHostName(h, '--next-host')) : live.map((h) => `next.${h}`);
    s.hosts = { live, next };
  }
  const colors: Record<string, unknown> = {};
  if (f.bluePort !== undefined) colors.blue = { port: parsePort(f.bluePort, '--blue-port') };
  if (f.greenPort !== undefined) colors.green = { port: parsePort(f.greenPort, '--green-port') };
  if (Object.keys(colors).length) s.colors = colors;
  const app: Record<string, unknown> = {};
  if (f.start !== undefined) app.start = f.start;
  if (f.install !== undefined) app.install = f.install;
  if (f.repo !== undefined) app.repo = f.repo;
  if (f.appDir !== undefined) app.dir = f.appDir;
  if (f.healthPath !== undefined) app.health = { path: f.healthPath };
  if (f.env !== undefined) app.env = parseEnvFlags(f.env);
  if (Object.keys(app).length) s.app = app;
  if (f.mode !== undefined) s.mode = f.mode;
  return s;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create (or adopt) a blue/green root: blue/ green/ live next run/ logs/ repo.git bgproxy.json')
    .option('--root <dir>', 'the root directory (default: $BGPROXY_ROOT or the current directory)')
    .option('--host <name>', 'a public host name, routed to live (repeatable)', collect)
    .option('--next-host <name>', 'a preview host name, routed to next (repeatable; default next.<host>)', collect)
    .option('--blue-port <n>', 'port of the blue app (default 8888)')
    .option('--green-port <n>', 'port of the green app (default 8889)')
    .option('--listen <[host:]port>', 'where the proxy listens (default 0.0.0.0:80)')
    .option('--start <command>', 'app.start: how to start the app (e.g. "node server.js")')
    .option('--install <command>', 'app.install: a command run after checkout, before start (repeatable)', collect)
    .option('--repo <source>', 'app.repo: where deploy fetches from (default ROOT/repo.git)')
    .option('--app-dir <dir>', 'app.dir: the app folder inside the repository (default .)')
    .option('--health-path <path>', 'app.health.path (default /)')
    .option('--env <KEY=VALUE>', "app.env: a variable for the app, e.g. BLUEGREEN='$BG_COLOR' (repeatable)", collect)
    .option('--mode <mode>', 'proxy (default) or nginx')
    .option('--force', 'overwrite an existing bgproxy.json that differs')
    .action((f: InitFlags) => {
      const root = checkInitRoot(f.root);
      const r = initRoot({ root, settings: settingsFromFlags(f), force: f.force === true });
      const made = r.created.length ? `created ${r.created.join(', ')}` : 'nothing to create';
      process.stdout.write(
        `${root}: ${made}; bgproxy.json ${r.configWritten}; live -> ${r.roles.roles.live}, next -> ${r.roles.roles.next}\n`,
      );
      if (r.roles.repaired && r.created.length === 0) process.stdout.write(`repaired: ${r.roles.repaired}\n`);
      if (r.nginxFiles.length > 0) process.stdout.write(`${formatSiteFiles(r.nginxFiles, 'the site file of bgproxy nginx-config')}\n`);
    });
}
