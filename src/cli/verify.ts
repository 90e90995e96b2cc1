// `bgproxy verify`: steady traffic at the live host (keep-alive and new-connection clients,
// POSTs, one websocket), optionally a cutover and a rollback in the middle through the
// control socket, then the ab-style summary. Exit 1 when any request failed.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { CutoverResult, Status } from '../bgproxy.js';
import { CONFIG_FILE, loadConfig, parseListen, resolveRoot } from '../config.js';
import { controlRequest } from '../control/client.js';
import { parseDuration } from '../duration.js';
import { BgError } from '../errors.js';
import { renderSvg } from '../verify/chart.js';
import type { LoadHandle } from '../verify/load.js';
import { formatSummary, summarize } from '../verify/summary.js';
import { plural } from '../words.js';
import { formatCutover } from './release.js';

interface VerifyFlags {
  url?: string;
  host?: string;
  root?: string;
  duration: string;
  connections: string;
  cutover?: boolean;
  chart?: string;
  websocket: boolean;
  posts: boolean;
  ca?: string;
}

export interface VerifyTarget {
  url: string;
  /** Host header to send; undefined keeps the URL's. */
  host: string | undefined;
  /** Why the URL is https: the root's tls (said in the first line, with the --ca hint). */
  viaTls: boolean;
}

/** The first live host of the root's bgproxy.json, when there is one (a broken file is an error). */
function liveHostOf(root: string): string | undefined {
  if (!existsSync(path.join(root, CONFIG_FILE))) return undefined;
  return loadConfig(root).hosts.live[0];
}

/** "0.0.0.0:443" -> "https://127.0.0.1:443/": a wildcard listener is reached on loopback. */
function urlOf(listen: string, scheme: 'http' | 'https'): string {
  const l = parseListen(listen);
  const host = l.host === '0.0.0.0' ? '127.0.0.1' : l.host === '::' ? '::1' : l.host;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${l.port}/`;
}

/**
 * The URL to load: --url, else the serve running for `root`: its TLS listener when tls is
 * configured (plain HTTP there is answered with redirects), else its HTTP listener. The Host
 * is --host, else the root's first live host, with --url too (as the help says).
 */
export async function resolveTarget(f: { url?: string; host?: string }, root: string): Promise<VerifyTarget> {
  if (f.url !== undefined) {
    let url: URL;
    try {
      url = new URL(f.url);
    } catch {
      throw new BgError('BG_USAGE', `--url must be an http:// or https:// URL, got "${f.url}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BgError('BG_USAGE', `--url must be an http:// or https:// URL, got "${f.url}"`);
    return { url: url.href, host: f.host ?? liveHostOf(root), viaTls: false };
  }
  const status = (await controlRequest(root, 'status')) as Status;
  const host = f.host ?? liveHostOf(status.root ?? root);
  if (status.tls?.listen) return { url: urlOf(status.tls.listen, 'https'), host, viaTls: true };
  if (status.listen === null) {
    throw new BgError('BG_STATE', `the server for ${root} has no HTTP listener (nginx mode): pass --url`);
  }
  return { url: urlOf(status.listen, 'http'), host, viaTls: false };
}

function positive(v: string, flag: string, max: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new BgError('BG_USAGE', `${flag} must be a number in (0, ${max}], got "${v}"`);
  return n;
}

interface Op {
  name: 'cutover' | 'rollback';
  /** Fraction of the duration at which it is issued. */
  at: number;
}

/** With --cutover: a cutover at 1/3 of the run and a rollback at 2/3, each marked when issued. */
const OPS: readonly Op[] = [
  { name: 'cutover', at: 1 / 3 },
  { name: 'rollback', at: 2 / 3 },
];

/** Why the requests before the cutover do not make a baseline (some failed, or none came back), or null. */
function baselineProblem(load: LoadHandle): string | null {
  const b = load.sofar();
  if (b.requests === 0) return 'no request was answered before it';
  if (b.failed === 0) return null;
  const e = b.examples[0];
  const example = e ? ` (e.g. ${e.method} ${e.status !== null ? `answered ${e.status}` : e.error})` : '';
  return `${plural(b.failed, 'request')} of ${b.requests} failed before it${example}`;
}

/**
 * Runs the ops in order at their times; stops at the first that fails. Never rejects.
 * A cutover is not made when the traffic before it already fails: production would be
 * switched and switched back to prove nothing (see the summary's likely cause instead).
 */
async function runOps(root: string, load: LoadHandle, durationMs: number, out: string[]): Promise<boolean> {
  for (const op of OPS) {
    const wait = op.at * durationMs - load.elapsed();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t = load.elapsed();
    const problem = op.name === 'cutover' ? baselineProblem(load) : null;
    if (problem !== null) {
      out.push(`${(t / 1000).toFixed(1)}s cutover NOT MADE: ${problem}; fix the baseline first (nothing was switched)`);
      return false;
    }
    load.mark(op.name);
    try {
      const r = (await controlRequest(root, op.name)) as CutoverResult;
      out.push(`${(t / 1000).toFixed(1)}s ${op.name}: ${formatCutover(r).trim()}`);
    } catch (err) {
      out.push(`${(t / 1000).toFixed(1)}s ${op.name} FAILED: ${(err as Error).message}`);
      return false;
    }
  }
  return true;
}

const ROOT_HAS_TLS = 'bgproxy.json has tls, so the TLS listener is loaded:';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('drive steady traffic at the live host (optionally through a cutover and a rollback) and report failures')
    .option('--url <url>', 'where to send requests (default: the serve for --root: its TLS listener when tls is configured, else its listen address)')
    .option('--host <name>', 'Host header (and TLS server name) to send (default: the first live host of the root, also with --url)')
    .option('--root <dir>', 'the root directory (for the listen address, the host and --cutover)')
    .option('--duration <duration>', 'how long to load (10s, 2m; a bare number is seconds)', '10s')
    .option('--connections <n>', 'keep-alive clients (plus a quarter as many opening a connection per request)', '50')
    .option('--cutover', 'cut over at 1/3 of the run and roll back at 2/3, through the control socket')
    .option('--chart <file>', 'write an SVG timeline of the run')
    .option('--no-websocket', 'skip the websocket probe (for apps that do not echo websocket messages)')
    .option('--no-posts', 'send GETs only (every 10th request is a POST with a JSON body otherwise)')
    .option('--ca <file>', 'with an https:// URL: a PEM file of CA certificates to trust besides the system ones (a private or test CA)')
    .action(async (f: VerifyFlags) => {
      const durationMs = parseDuration(f.duration, '--duration', { maxMs: 3_600_000 });
      if (durationMs < 1) throw new BgError('BG_USAGE', `--duration: must be above 0, got "${f.duration}"`);
      const connections = Math.round(positive(f.connections, '--connections', 10_000));
      const root = resolveRoot(f.root);
      let ca: Buffer | undefined;
      if (f.ca !== undefined) {
        try {
          ca = readFileSync(f.ca);
        } catch (err) {
          throw new BgError('BG_USAGE', `--ca: cannot read ${f.ca} (${(err as NodeJS.ErrnoException).code ?? err})`);
        }
        if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new BgError('BG_USAGE', `--ca: ${f.ca} holds no PEM certificate`);
      }
      const target = await resolveTarget(f, root);
      const opsOut: string[] = [];
      const aborter = new AbortController();
      const onSignal = (): void => aborter.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      // Loaded here: the load generator (and ws, for its websocket) only when verify runs.
      const { startLoad } = await import('../verify/load.js');
      const load = startLoad({
        url: target.url,
        host: target.host,
        durationMs,
        connections,
        posts: f.posts,
        websocket: f.websocket,
        signal: aborter.signal,
        ...(ca ? { ca } : {}),
      });
      if (target.viaTls) {
        process.stdout.write(`verify: ${ROOT_HAS_TLS} ${target.url}${ca ? '' : ' (--ca FILE trusts a private CA)'}\n`);
      }
      process.stdout.write(
        `verify: ${target.url}${target.host ? ` (Host: ${target.host})` : ''} for ${durationMs / 1000} s, ${connections} keep-alive clients` +
          ` + ${Math.max(2, Math.ceil(connections / 4))} opening a connection per request${f.posts ? ', POSTs' : ''}${f.websocket ? ', one websocket' : ''}` +
          `${f.cutover ? ', cutover and rollback in the middle' : ''}\n`,
      );
      const opsOk = f.cutover ? runOps(root, load, durationMs, opsOut) : Promise.resolve(true);
      const result = await load.done;
      const ok = await opsOk;
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      const summary = summarize(result);
      process.stdout.write(`\n${formatSummary(summary)}`);
      if (opsOut.length > 0) process.stdout.write(`\n${opsOut.join('\n')}\n`);
      if (f.chart !== undefined) {
        const file = path.resolve(f.chart);
        writeFileSync(file, renderSvg(result, { title: `bgproxy verify ${target.host ?? target.url}` }));
        process.stdout.write(`chart: ${file}\n`);
      }
      const notMade = opsOut.some((l) => l.includes('cutover NOT MADE'));
      const verdict = notMade
        ? 'FAILED: requests failed before the cutover, so none was made'
        : !ok
          ? 'FAILED: an operation failed'
          : summary.ok
            ? 'OK: no failed request'
            : 'FAILED: some requests failed';
      process.stdout.write(`${verdict}\n`);
      if (!ok || !summary.ok || aborter.signal.aborted) process.exitCode = 1;
    });
}
