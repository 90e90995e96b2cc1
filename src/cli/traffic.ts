// Traffic controls at the front door: pause, resume, maintenance, passwd. They talk to the
// running serve; in nginx mode (where nginx answers the requests) they refuse in one line.
import type { Command } from 'commander';
import type { TrafficStatus } from '../bgproxy.js';
import { loadConfig, resolveRoot } from '../config.js';
import { controlRequest } from '../control/client.js';
import { formatMs, parseDuration } from '../duration.js';
import { BgError, isBgError } from '../errors.js';
import { hashPassword } from '../traffic/passwd.js';
import { plural } from '../words.js';

/** Refuses at once in nginx mode, before asking a server that could not do it either. */
function proxyModeRoot(rootFlag: string | undefined, what: string): string {
  const root = resolveRoot(rootFlag);
  let mode: string | null = null;
  try {
    mode = loadConfig(root).mode;
  } catch (err) {
    // No readable config here: let the server (or its absence) answer.
    if (!isBgError(err, 'BG_CONFIG')) throw err;
  }
  if (mode === 'nginx') throw new BgError('BG_USAGE', `${what} needs proxy mode: in nginx mode nginx answers the requests, not bgproxy`);
  return root;
}

/** "120", "120s", "2m" -> whole seconds for Retry-After. */
export function parseRetryAfter(v: string): number {
  const ms = parseDuration(v, '--retry-after', { maxMs: 86_400_000 });
  if (!Number.isInteger(ms / 1000)) {
    throw new BgError('BG_USAGE', `--retry-after: expected whole seconds up to 86400 (120, 2m), got "${v}"`);
  }
  return ms / 1000;
}

export function registerTraffic(program: Command): void {
  program
    .command('pause')
    .description('hold new requests to the live hosts (they wait, none fail) and return once live has none in flight; bgproxy resume lets them go')
    .option('--root <dir>', 'the root directory')
    .option('--timeout <duration>', 'how long a request may wait before it gets 503 with Retry-After (30s, 2m; a bare number is seconds)', '30s')
    .option('--json', 'print one JSON object')
    .action(async (f: { root?: string; timeout: string; json?: boolean }) => {
      const timeoutMs = parseDuration(f.timeout, '--timeout');
      if (timeoutMs < 1) throw new BgError('BG_USAGE', `--timeout: must be above 0, got "${f.timeout}"`);
      const root = proxyModeRoot(f.root, 'pause');
      const r = (await controlRequest(root, 'pause', { timeoutMs })) as { timeoutMs: number; inflightLeft: number; drainMs: number };
      if (f.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else if (r.inflightLeft === 0) process.stdout.write(`paused: live requests wait (up to ${formatMs(timeoutMs)} each); none in flight (waited ${r.drainMs} ms)\n`);
      if (r.inflightLeft > 0) {
        // Still paused; but the app is not quiet, and a script must not go on as if it were.
        throw new BgError('BG_STATE', `paused, but ${plural(r.inflightLeft, 'live request was', 'live requests were')} still in flight after ${r.drainMs} ms (drainTimeoutMs)`);
      }
    });
  program
    .command('resume')
    .description('let the requests held by bgproxy pause go on, and new ones through')
    .option('--root <dir>', 'the root directory')
    .option('--json', 'print one JSON object')
    .action(async (f: { root?: string; json?: boolean }) => {
      const root = proxyModeRoot(f.root, 'resume');
      let r: { released: number; pausedMs: number; timedOut: number; refused: number };
      try {
        r = (await controlRequest(root, 'resume')) as typeof r;
      } catch (err) {
        // Nothing held is the state asked for: done, like a second `maintenance off` (exit 0).
        if (!isBgError(err, 'BG_STATE')) throw err;
        process.stdout.write(f.json ? `${JSON.stringify({ released: 0, paused: false })}\n` : 'not paused: nothing to resume\n');
        return;
      }
      if (f.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else {
        const lost = r.timedOut + r.refused > 0 ? `; ${r.timedOut} timed out and ${r.refused} were refused (503) while paused` : '';
        process.stdout.write(`resumed after ${r.pausedMs} ms: ${plural(r.released, 'waiting request goes', 'waiting requests go')} on${lost}\n`);
      }
    });
  program
    .command('maintenance')
    .description('on: the live hosts answer 503 + Retry-After with ROOT/maintenance.html (next still works); off: back to the app. Kept across restarts')
    .argument('<on|off>', 'on or off')
    .option('--root <dir>', 'the root directory')
    .option('--retry-after <seconds>', 'the Retry-After the 503s carry (120, 2m; a bare number is seconds)', '120')
    .option('--json', 'print one JSON object')
    .action(async (state: string, f: { root?: string; retryAfter: string; json?: boolean }) => {
      if (state !== 'on' && state !== 'off') throw new BgError('BG_USAGE', `maintenance: expected on or off, got "${state}"`);
      const retryAfterS = parseRetryAfter(f.retryAfter);
      const root = proxyModeRoot(f.root, 'maintenance');
      const r = (await controlRequest(root, 'maintenance', { on: state === 'on', retryAfterS })) as { maintenance: TrafficStatus['maintenance'] };
      if (f.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else if (r.maintenance) {
        process.stdout.write(`maintenance on: live hosts answer 503 (Retry-After: ${r.maintenance.retryAfterS}) with the ${r.maintenance.page} page; next hosts still work\n`);
      } else process.stdout.write('maintenance off: live hosts are served by the app\n');
    });
  program
    .command('passwd')
    .description('hash a password (read from the terminal, or the first line of stdin) for access.live/next.basicAuth')
    .argument('[user]', 'the user name: prints the whole basicAuth object')
    .action(async (user: string | undefined) => {
      if (user !== undefined && (user === '' || user.includes(':') || [...user].some((ch) => ch.charCodeAt(0) < 32))) {
        throw new BgError('BG_USAGE', 'passwd: a user name is not empty and has no ":" or control characters');
      }
      const password = await readPassword();
      if (password === '') throw new BgError('BG_USAGE', 'passwd: empty password');
      const hash = hashPassword(password);
      process.stdout.write(user === undefined ? `${hash}\n` : `${JSON.stringify({ user, hash })}\n`);
    });
}

/** The password: typed twice without echo on a terminal, else the first line of stdin. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = '';
    for await (const chunk of stdin) {
      text += String(chunk);
      if (text.includes('\n')) break;
    }
    return text.split(/\r?\n/)[0] ?? '';
  }
  const first = await promptHidden('password: ');
  const again = await promptHidden('again: ');
  if (first !== again) throw new BgError('BG_USAGE', 'passwd: the two passwords differ');
  return first;
}

function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let s = '';
    const done = (err: Error | null): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(s);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003' || ch === '\u0004') return done(new BgError('BG_USAGE', 'passwd: cancelled'));
        if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1);
        else s += ch;
      }
    };
    stdin.on('data', onData);
  });
}
