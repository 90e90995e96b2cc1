// Commands that change or show releases: deploy, cutover, rollback, history, nginx-config.
// They run in `serve` over the control socket; in nginx mode with no serve running they run
// here, in this process, like the classic recipe did.
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { Bgproxy, type CanaryStatus, type CutoverResult } from '../bgproxy.js';
import { type Config, loadConfig, resolveRoot } from '../config.js';
import { controlRequest, type EventListener } from '../control/client.js';
import type { DeployProgress, DeployResult } from '../deploy/deploy.js';
import { formatHistory, readHistory } from '../deploy/history.js';
import { parseDuration } from '../duration.js';
import { BgError, isBgError } from '../errors.js';
import { createLogger } from '../log.js';
import { formatSiteFiles, writeSiteFiles } from '../nginx/color-files.js';
import { renderServerBlocks } from '../nginx/conf.js';
import type { HookResult } from '../release/hooks.js';
import { formatWarmup } from '../release/warmup.js';
import { formatWatch } from '../release/watch.js';
import type { CanaryStatusResult } from '../types.js';
import { plural } from '../words.js';

/** Asks the running serve; in nginx mode without one, does it here. */
async function viaServerOrLocal<T>(
  root: string,
  cmd: string,
  args: Record<string, unknown>,
  local: (bg: Bgproxy) => Promise<T>,
  onEvent?: EventListener,
): Promise<T> {
  try {
    return (await controlRequest(root, cmd, args, onEvent)) as T;
  } catch (err) {
    if (!isBgError(err, 'BG_NO_SERVER')) throw err;
    const config = loadConfig(root);
    if (config.mode !== 'nginx') throw err;
    if (cmd === 'deploy' && config.app.start) {
      // app.start says serve runs the apps: deploying here would point nginx at a color where nothing runs.
      throw new BgError('BG_NO_SERVER', `app.start is set, so bgproxy serve runs the apps, and none is running for ${root}: start it (bgproxy serve --root ${root}), then deploy`);
    }
    // No supervisor here: the apps are run by serve or by the user, not by this short process.
    const standalone: Config = { ...config, app: { ...config.app, start: null } };
    const bg = new Bgproxy({ config: standalone, logger: createLogger({ level: 'warn', destination: 2 }), accessLog: false });
    try {
      return await local(bg);
    } finally {
      await bg.close(0);
    }
  }
}

export function formatCutover(r: CutoverResult): string {
  return `${formatSwitch(r)}${formatReleaseSteps(r)}`;
}

function formatSwitch(r: CutoverResult): string {
  if (r.canaryEnded) return `canary ended: all live traffic on ${r.live}; ${plural(r.inflightAtSwitch, 'request')} on ${r.was} finished in ${r.drainMs} ms\n`;
  if (r.nginx) {
    const n = r.nginx;
    const old = n.oldWorkersMs === null ? 'old workers: unknown' : `old workers gone in ${n.oldWorkersMs} ms`;
    return `live: ${r.live} (was ${r.was}) through nginx in ${n.switchedMs} ms (test ${n.testMs} ms, reload ${n.reloadMs} ms, verify ${n.verifyMs} ms); ${old}${r.cutOff ? `, ${r.cutOff} still shutting down` : ''}\n`;
  }
  const cut = r.cutOff > 0 ? `, ${r.cutOff} still running after the drain timeout` : '';
  return `live: ${r.live} (was ${r.was}), drained ${plural(r.inflightAtSwitch, 'request')} in ${r.drainMs} ms${cut}\n`;
}

/** Hooks, warm-up and watch of a cutover, one line each (nothing when none ran). */
export function formatReleaseSteps(r: Pick<CutoverResult, 'hooks' | 'warmup' | 'watch'>): string {
  const hook = (h: HookResult | undefined): string =>
    h ? `${h.ok ? `${h.hook} hook ok (${h.commands} command${h.commands === 1 ? '' : 's'}, ${h.ms} ms)` : `${h.error} (the switch stays)`}\n` : '';
  return [
    hook(r.hooks?.beforeCutover),
    r.warmup ? `${formatWarmup(r.warmup)}\n` : '',
    hook(r.hooks?.afterCutover),
    r.watch ? `${formatWatch(r.watch)} - bgproxy status shows the outcome\n` : '',
  ].join('');
}

// The duration parser moved to src/duration.ts (one format for every flag); kept importable from here.
export { parseDuration };

/**
 * Each step with its duration: on a terminal a "step ..." line that the result replaces,
 * otherwise (logs, CI, ssh without -t) one plain line per finished step.
 */
function progressPrinter(out: NodeJS.WriteStream = process.stdout): (p: DeployProgress) => void {
  let open: string | null = null;
  const closeOpen = (): void => {
    if (open !== null) out.write('\n');
    open = null;
  };
  return (p) => {
    if (p.phase === 'line') {
      closeOpen();
      out.write(`    ${p.line}\n`);
    } else if (p.phase === 'start') {
      if (out.isTTY) {
        closeOpen();
        open = p.step;
        out.write(`  ${p.step} ...`);
      }
    } else {
      if (open === p.step) out.write('\r\x1b[K');
      else closeOpen();
      open = null;
      out.write(`  ${p.step.padEnd(14)} ${p.ms} ms\n`);
    }
  };
}

/** "10%", "10", "0.5%" -> percent; 100% is a plain cutover. */
export function parsePercent(v: string): number {
  const m = /^(\d{1,3}(?:\.\d{1,2})?)%?$/.exec(v.trim());
  const p = m ? Number(m[1]) : Number.NaN;
  if (!(p > 0 && p <= 100)) throw new BgError('BG_USAGE', `--canary: expected a share above 0% and up to 100% (10%, 0.5%), got "${v}"`);
  return p;
}

export function formatCanary(c: CanaryStatus): string {
  const watch = c.watch ? `; ${formatWatch(c.watch)}` : '';
  return `canary: ${c.percent}% of live traffic to ${c.color}, sticky per client${watch}; bgproxy cutover completes it, bgproxy rollback ends it\n`;
}

const jsonLine = (v: unknown): string => `${JSON.stringify(v)}\n`;

/**
 * Runs the command and prints its result. With --json, stdout carries the control
 * protocol's lines, so a fleet reads a remote command over ssh as it reads the socket:
 * {"event":…} lines, then {"ok":true,"result":…} or {"ok":false,"error":{code,message}}.
 */
async function printed<T>(json: boolean, run: () => Promise<T>, human: (r: T) => string): Promise<void> {
  try {
    const r = await run();
    process.stdout.write(json ? jsonLine({ ok: true, result: r }) : human(r));
  } catch (err) {
    if (json) {
      const e = isBgError(err) ? err : new BgError('BG_STATE', (err as Error)?.message ?? String(err));
      process.stdout.write(jsonLine({ ok: false, error: { code: e.code, message: e.message, ...(e.detail ? { detail: e.detail } : {}) } }));
    }
    throw err;
  }
}

function progressOutput(json: boolean): (p: DeployProgress) => void {
  return json ? (p) => process.stdout.write(jsonLine({ event: 'progress', ...p })) : progressPrinter();
}

/** One line from stdin, or null at its end. */
function readStdinLine(): Promise<string | null> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, terminal: false });
    let got: string | null = null;
    rl.once('line', (l) => {
      got = l.trim();
      rl.close();
    });
    rl.once('close', () => {
      process.stdin.destroy();
      resolve(got);
    });
  });
}

/** --gate: every check passed; say "ready" and wait for "go" on stdin (anything else aborts). */
async function awaitGo(json: boolean, color: unknown, commit: unknown): Promise<string> {
  const release = typeof commit === 'string' ? ` (${commit.slice(0, 7)})` : '';
  process.stdout.write(
    json ? jsonLine({ event: 'ready', color, commit }) : `ready: ${String(color)}${release} passed every check; "go" switches, anything else or end of input aborts\n`,
  );
  return (await readStdinLine()) ?? 'abort';
}

export function registerRelease(program: Command): void {
  program
    .command('deploy [commit]')
    .description('deploy a commit (sha, tag or branch; default: the tip of the default branch) into the next color')
    .option('--root <dir>', 'the root directory')
    .option('--from <source>', 'a local repository path or git URL (default: app.repo, else ROOT/repo.git)')
    .option('--force', 'redeploy even if next already runs this commit')
    .option('--allow-dirty', 'deploy from a local working copy with uncommitted changes')
    .option('--cutover', 'once healthy, make it live')
    .option('--watch <duration>', 'with --cutover: watch the new live color this long (60s, 2m; a bare number is seconds) and roll back automatically (as cutover --watch)')
    .option('--json', 'progress and result as JSON lines')
    .option('--cancel', 'stop the deploy running in serve (its next color is marked failed)')
    .action(async (commit: string | undefined, f: { root?: string; from?: string; force?: boolean; allowDirty?: boolean; cutover?: boolean; watch?: string; json?: boolean; cancel?: boolean }) => {
      const root = resolveRoot(f.root);
      if (f.cancel) {
        if (commit !== undefined || f.from || f.force || f.allowDirty || f.cutover || f.watch) {
          throw new BgError('BG_USAGE', '--cancel takes no commit and no other deploy option');
        }
        await printed(
          f.json === true,
          async () => (await controlRequest(root, 'deploy-cancel', {})) as { color: string; commit: string | null; step: string; ended: boolean },
          (r) =>
            `cancelled the deploy${r.commit ? ` of ${r.commit.slice(0, 7)}` : ''} into ${r.color} at ${r.step}${r.ended ? '' : ' (still ending)'}; ${r.color} is marked failed until a deploy completes\n`,
        );
        return;
      }
      if (f.watch !== undefined && !f.cutover) throw new BgError('BG_USAGE', '--watch needs --cutover (a deploy alone switches nothing to watch)');
      const args = {
        commit,
        from: f.from,
        force: f.force === true,
        allowDirty: f.allowDirty === true,
        cutover: f.cutover === true,
        ...(f.watch === undefined ? {} : { watchMs: parseDuration(f.watch, '--watch') }),
      };
      const json = f.json === true;
      const print = progressOutput(json);
      // Ctrl-C here ends this command, not the deploy: it runs inside serve. Say so, and how to follow or stop it.
      const onInterrupt = (): void => {
        process.stderr.write(
          `\nbgproxy: this command stopped; the deploy goes on inside bgproxy serve. Follow it: bgproxy status --root ${root}; stop it: bgproxy deploy --cancel --root ${root}\n`,
        );
        process.exit(130);
      };
      process.once('SIGINT', onInterrupt);
      try {
        await printed(
          json,
          () =>
            viaServerOrLocal<DeployResult & { cutover?: CutoverResult }>(
              root,
              'deploy',
              args,
              (bg) => {
                // Here, without serve, the deploy runs in this process: Ctrl-C ends it.
                process.off('SIGINT', onInterrupt);
                return bg.deploy(args, print);
              },
              (event, data) => {
                if (event === 'progress') print(data as unknown as DeployProgress);
              },
            ),
          // With --cutover the release went live already: no "go live: bgproxy cutover" advice.
          (r) => (r.cutover ? `${r.message.replace(/ - go live: bgproxy cutover$/, '')}\n${formatCutover(r.cutover)}` : `${r.message}\n`),
        );
      } finally {
        process.off('SIGINT', onInterrupt);
      }
    });

  for (const name of ['cutover', 'rollback'] as const) {
    const cmd = program
      .command(name)
      .description(
        name === 'cutover'
          ? 'make next live (after a health check) and wait for the old live color to drain'
          : 'make the previous live color live again',
      )
      .option('--root <dir>', 'the root directory')
      .option('--force', 'skip the health check')
      .option('--json', 'progress and result as JSON lines')
      .option('--gate', 'once every check passed, print "ready" and switch only after "go" on stdin (fleets use it)');
    if (name === 'cutover') {
      cmd.option('--watch <duration>', 'watch the new live color this long (500ms, 60s, 2m; a bare number is seconds) and roll back automatically if its 5xx rate or health gets worse; 0 turns off a configured watch');
      cmd.option('--canary <percent>', 'send only this share of live traffic (10%) to next, sticky per client; cutover again completes it, rollback ends it');
    }
    cmd.action(async (f: { root?: string; force?: boolean; watch?: string; canary?: string; json?: boolean; gate?: boolean }) => {
      const root = resolveRoot(f.root);
      const json = f.json === true;
      const opts = { force: f.force === true, ...(f.watch === undefined ? {} : { watchMs: parseDuration(f.watch, '--watch') }) };
      const percent = f.canary === undefined ? 100 : parsePercent(f.canary);
      if (percent < 100) {
        if (f.gate) throw new BgError('BG_USAGE', '--canary and --gate do not go together: a canary is not a switch a fleet can gate');
        await printed(
          json,
          () => viaServerOrLocal<CanaryStatusResult>(root, 'canary', { percent, ...opts }, (bg) => bg.canary(percent, opts)),
          (r) => formatCanary(r.canary),
        );
        return;
      }
      const print = progressOutput(json);
      const localGate = async ({ color, commit }: { color: string; commit: string | null }): Promise<void> => {
        if ((await awaitGo(json, color, commit)) !== 'go') throw new BgError('BG_FLEET', `the gate before the switch to ${color} was not opened: nothing switched`);
      };
      await printed(
        json,
        () =>
          viaServerOrLocal<CutoverResult>(
            root,
            name,
            { ...opts, gate: f.gate === true },
            (bg) => bg[name]({ ...opts, ...(f.gate ? { gate: localGate } : {}) }, print),
            (event, data, reply) => {
              if (event === 'progress') print(data as unknown as DeployProgress);
              else if (event === 'ready') void awaitGo(json, data.color, data.commit).then(reply);
            },
          ),
        formatCutover,
      );
    });
  }

  program
    .command('history')
    .description('deploys, cutovers and rollbacks of this root (ROOT/history.jsonl)')
    .option('--root <dir>', 'the root directory')
    .option('-n <count>', 'how many entries', '20')
    .option('--json', 'one JSON object per line')
    .action(async (f: { root?: string; n: string; json?: boolean }) => {
      const n = Number(f.n);
      if (!Number.isInteger(n) || n < 1) throw new BgError('BG_USAGE', `-n must be a positive number, got "${f.n}"`);
      const entries = await readHistory(resolveRoot(f.root), n);
      if (f.json) process.stdout.write(entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
      else process.stdout.write(entries.length ? `${formatHistory(entries)}\n` : 'no history yet\n');
    });

  program
    .command('nginx-config')
    .description('print the nginx site file (live and next server blocks, upstreams) for sites-enabled; writes the files it includes that are missing')
    .option('--root <dir>', 'the root directory')
    .action((f: { root?: string }) => {
      const config = loadConfig(resolveRoot(f.root));
      const site = renderServerBlocks(config);
      // nginx refuses the whole configuration over one missing include: write them before `nginx -t`.
      const written = writeSiteFiles(config);
      if (written.length > 0) process.stderr.write(`${formatSiteFiles(written, 'these server blocks')}\n`);
      process.stdout.write(site);
    });
}
