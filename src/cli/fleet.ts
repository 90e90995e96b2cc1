// `bgproxy fleet push|deploy|cutover|rollback|status|history`: the same release on every
// server of fleet.json (or of an Ansible inventory), over the system ssh. Changes take the fleet's local lock; Ctrl-C
// stops starting steps and the report says where every server stands.
import type { Command } from 'commander';
import { BgError } from '../errors.js';
import { type FleetConfig, fleetPath, loadFleet } from '../fleet/config.js';
import { formatFleetHistory, readFleetHistory } from '../fleet/history.js';
import { loadInventory } from '../fleet/inventory.js';
import { acquireFleetLock } from '../fleet/lock.js';
import { fleetPush } from '../fleet/push.js';
import { type FleetReport, fleetDeploy, fleetSwitch, reportJson } from '../fleet/release.js';
import { FleetRun } from '../fleet/run.js';
import { fleetStatus, formatFleetStatus } from '../fleet/status.js';

interface Common {
  fleet?: string;
  root?: string;
  inventory?: string;
  limit?: string;
  json?: boolean;
}

function common(cmd: Command): Command {
  return cmd
    .option('--fleet <file>', 'the fleet file (default: ROOT/fleet.json)')
    .option('--root <dir>', 'the local root holding fleet.json')
    .option('-i, --inventory <file>', 'the servers of an Ansible inventory instead of fleet.json (read with ansible-inventory)')
    .option('-l, --limit <pattern>', "with --inventory: only the hosts of this Ansible pattern (a group, 'web:!web3'…)")
    .option('--json', 'print one JSON object');
}

/** The fleet: from --inventory (and --limit), else --fleet or ROOT/fleet.json. */
async function loadFleetFrom(f: Common): Promise<Readonly<FleetConfig>> {
  if (f.inventory !== undefined) {
    if (f.fleet !== undefined) throw new BgError('BG_USAGE', '--inventory and --fleet do not go together: name the servers one way');
    return loadInventory(f.inventory, f.limit);
  }
  if (f.limit !== undefined) throw new BgError('BG_USAGE', '--limit needs --inventory (it is an Ansible host pattern)');
  return loadFleet(fleetPath(f));
}

/**
 * Runs fn on a FleetRun: with the fleet's lock when it changes servers, Ctrl-C wired to
 * interrupt (a second Ctrl-C exits at once), ssh masters closed at the end.
 */
async function withRun<T>(f: Common, action: string | null, fn: (run: FleetRun, fleet: Readonly<FleetConfig>) => Promise<T>): Promise<T> {
  const fleet = await loadFleetFrom(f);
  const lock = action ? await acquireFleetLock(fleet.file, action) : null;
  let run: FleetRun;
  try {
    // --json: stdout is the result alone; progress goes to stderr.
    run = new FleetRun(fleet, f.json ? (t) => process.stderr.write(t) : undefined);
  } catch (err) {
    await lock?.release();
    throw err;
  }
  let presses = 0;
  const onSigint = (): void => {
    presses++;
    if (presses === 1) run.interrupt();
    else {
      process.stderr.write('bgproxy: interrupted twice: exiting without waiting (servers finish what they started)\n');
      process.exit(130);
    }
  };
  // SIGTERM (a CI job cancelled) is handled like Ctrl-C: the report still says where each server stands.
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    return await fn(run, fleet);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await run.close();
    await lock?.release();
  }
}

/** Prints the report; when it did not succeed, where every server stands now, and fails. */
async function conclude(run: FleetRun, f: Common, r: FleetReport): Promise<void> {
  if (f.json) process.stdout.write(`${JSON.stringify(reportJson(r))}\n`);
  else run.say(r.message);
  if (r.result === 'ok') return;
  if (!f.json) {
    run.say('where every server stands now:');
    process.stdout.write(formatFleetStatus(await fleetStatus(run)));
  }
  throw new BgError('BG_FLEET', r.message);
}

export function registerFleet(program: Command): void {
  const fleet = program.command('fleet').description('the same release on N servers over ssh, in two phases (fleet.json or an Ansible inventory)');

  common(fleet.command('push [ref]'))
    .description("git push REF (default HEAD's branch) from this checkout to every server's ROOT/repo.git")
    .option('--force', 'force the push (a branch rewritten)')
    .action(async (ref: string | undefined, f: Common & { force?: boolean }) => {
      await withRun(f, 'push', async (run) => {
        const r = await fleetPush(run, process.cwd(), ref, f.force === true);
        if (f.json) process.stdout.write(`${JSON.stringify({ commit: r.commit, ref: r.ref })}\n`);
        else run.say(`pushed ${r.commit.slice(0, 7)} to every server - next: bgproxy fleet deploy --cutover`);
      });
    });

  common(fleet.command('deploy [commit]'))
    .description('phase 1: deploy COMMIT (default: the last pushed) into next everywhere; with --cutover, phase 2: switch everywhere at once')
    .option('--cutover', 'once every server is healthy on the same commit, make it live everywhere')
    .option('--no-rollback', 'if a switch fails, leave the servers that switched as they are')
    .option('--force', 'redeploy where next already runs the commit')
    .action(async (commit: string | undefined, f: Common & { cutover?: boolean; rollback: boolean; force?: boolean }) => {
      await withRun(f, 'deploy', async (run, fl) => {
        const r = await fleetDeploy(run, {
          ...(commit ? { commit } : {}),
          cutover: f.cutover === true,
          rollback: f.rollback && fl.onFailure === 'rollback',
          force: f.force === true,
        });
        await conclude(run, f, r);
      });
    });

  for (const name of ['cutover', 'rollback'] as const) {
    common(fleet.command(name))
      .description(name === 'cutover' ? 'make next live on every server at once' : 'make the previous release live again on every server at once')
      .option('--no-rollback', 'if a switch fails, leave the servers that switched as they are')
      .action(async (f: Common & { rollback: boolean }) => {
        await withRun(f, name, async (run, fl) => conclude(run, f, await fleetSwitch(run, name, f.rollback && fl.onFailure === 'rollback')));
      });
  }

  common(fleet.command('status'))
    .description('one table: server, live and next colors with their commits, health, in flight, last release')
    .action(async (f: Common) => {
      await withRun(f, null, async (run) => {
        const rows = await fleetStatus(run);
        process.stdout.write(f.json ? `${JSON.stringify({ servers: rows })}\n` : formatFleetStatus(rows));
        const down = rows.filter((r) => !r.ok);
        if (down.length > 0) {
          throw new BgError(down.every((r) => r.error?.code === 'BG_UNREACHABLE') ? 'BG_UNREACHABLE' : 'BG_FLEET', `no status from ${down.map((r) => r.name).join(', ')}`);
        }
      });
    });

  common(fleet.command('history'))
    .description("the fleet's pushes, deploys, cutovers and rollbacks (fleet-history.jsonl next to fleet.json)")
    .option('-n <count>', 'how many entries', '20')
    .action(async (f: Common & { n: string }) => {
      const n = Number(f.n);
      if (!Number.isInteger(n) || n < 1) throw new BgError('BG_USAGE', `-n must be a positive number, got "${f.n}"`);
      const file = (await loadFleetFrom(f)).file;
      const entries = await readFleetHistory(file, n);
      if (f.json) process.stdout.write(entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
      else process.stdout.write(entries.length ? `${formatFleetHistory(entries)}\n` : 'no fleet history yet\n');
    });
}
