// Cutover in nginx mode, the recipe's `ln -nsf` + `nginx -s reload`, made safe: check next is
// healthy -> write both include files -> swap the links (rename) -> nginx -t -> reload -> confirm
// through nginx that the live host reaches the new color. Any failure puts the links back (and
// reloads again if a reload was attempted). Then waits, bounded, for nginx's old workers to exit.
// Needs no running `bgproxy serve`; the caller holds the root's lock.
import http from 'node:http';
import https from 'node:https';
import { type Color, type Config, otherColor } from '../config.js';
import { BgError } from '../errors.js';
import { repairRoles, writeRoles } from '../layout/roles.js';
import type { Logger } from '../log.js';
import { checkHealth } from '../supervisor/health-check.js';
import { writeColorFiles } from './color-files.js';
import { MARKER_PATH } from './conf.js';
import { nginxChildren, reloadRestored, runNginx, waitGone, withSuffix } from './process.js';

export type NginxStep = 'health' | 'include' | 'switch' | 'test' | 'reload' | 'verify' | 'restore' | 'old-workers';

export interface NginxCutoverOptions {
  /** Skip the health check of next, and the check that the app answers through nginx. */
  force?: boolean;
  logger?: Logger;
  onStep?: (step: NginxStep, ms: number) => void;
  /** How long the verify step polls nginx for the new color (default 5000 ms). */
  verifyTimeoutMs?: number;
  /** Limit for testCommand and reloadCommand each (default 60000 ms). */
  commandTimeoutMs?: number;
}

export interface NginxCutoverResult {
  live: Color;
  was: Color;
  forced: boolean;
  /** From the link swap to the live host confirmed on the new color through nginx. */
  switchedMs: number;
  testMs: number;
  reloadMs: number;
  verifyMs: number;
  /** Until every worker the master had before the reload exited; null: master not found. */
  oldWorkersMs: number | null;
  /** Old workers still shutting down when drainTimeoutMs ran out (0 when all exited). */
  oldWorkersLeft: number;
}

export async function nginxCutover(config: Config, opts: NginxCutoverOptions = {}): Promise<NginxCutoverResult> {
  const log = opts.logger?.child({ component: 'nginx' });
  const step = async <T>(name: NginxStep, fn: () => T | Promise<T>): Promise<{ value: T; ms: number }> => {
    const started = performance.now();
    const value = await fn();
    const ms = Math.round(performance.now() - started);
    log?.info({ step: name, ms }, `nginx cutover: ${name} done in ${ms} ms`);
    opts.onStep?.(name, ms);
    return { value, ms };
  };
  const was = repairRoles(config.root).roles.live;
  const live = otherColor(was);
  const force = opts.force === true;
  if (!force) await step('health', () => requireHealthy(config, live));
  await step('include', () => {
    // A color without a release keeps its placeholder (see includeFor).
    writeColorFiles(config, 'blue');
    writeColorFiles(config, 'green');
  });
  const before = await nginxChildren(config);

  const switchStarted = performance.now();
  let reloadAttempted = false;
  let testMs = 0;
  let reloadMs = 0;
  let verifyMs = 0;
  try {
    await step('switch', () => writeRoles(config.root, live));
    testMs = (await step('test', () => runNginx('test', config.nginx.testCommand, opts.commandTimeoutMs))).ms;
    reloadAttempted = true;
    reloadMs = (await step('reload', () => runNginx('reload', config.nginx.reloadCommand, opts.commandTimeoutMs))).ms;
    verifyMs = (await step('verify', () => verifyThroughNginx(config, live, !force, opts.verifyTimeoutMs ?? 5000))).ms;
  } catch (err) {
    const restored = await step('restore', () => restore(config, was, reloadAttempted, opts.commandTimeoutMs));
    throw withSuffix(err, restored.value);
  }
  const switchedMs = Math.round(performance.now() - switchStarted);

  const { value: left, ms } = await step('old-workers', () => waitGone(before, config.drainTimeoutMs));
  const oldWorkersMs = before === null ? null : ms;
  log?.info({ live, was, switchedMs, oldWorkersMs, oldWorkersLeft: left }, `nginx now serves ${live}`);
  return { live, was, forced: force, switchedMs, testMs, reloadMs, verifyMs, oldWorkersMs, oldWorkersLeft: left };
}

async function requireHealthy(config: Config, color: Color): Promise<void> {
  const { path, timeoutMs } = config.app.health;
  const h = await checkHealth(config.colors[color].port, path, timeoutMs);
  if (!h.ok) {
    throw new BgError(
      'BG_UNHEALTHY',
      `${color} (port ${config.colors[color].port}) is not healthy: ${h.reason ?? 'no answer'} on ${path}; nothing was changed (--force to switch anyway)`,
    );
  }
}

/** Puts the links back; returns the end of the error message: what state things are in. */
async function restore(config: Config, was: Color, reload: boolean, timeoutMs?: number): Promise<string> {
  try {
    writeRoles(config.root, was);
  } catch (err) {
    return `; putting the links back to live -> ${was} FAILED too: ${(err as Error).message}`;
  }
  return reloadRestored(config, `; the links are back to live -> ${was}`, reload, timeoutMs);
}

// ---------------------------------------------------------------------------------------------
// Verify. The include file carries a location answered by nginx with the color's name: polling it
// through nginx, on fresh connections (so new workers answer), tells which include the workers
// serve, for any app, without touching the app's responses (an add_header in the include would
// silently drop the site's own server-level add_header lines, e.g. HSTS). Then, unless forced,
// one request through nginx must reach the app (2xx/3xx): the route works, not only the config.

interface VerifyTarget {
  marker: URL;
  app: URL;
  host: string | undefined;
}

function verifyTarget(config: Config): VerifyTarget {
  if (config.nginx.verifyUrl !== null) {
    const app = new URL(config.nginx.verifyUrl);
    return { marker: new URL(MARKER_PATH, app), app, host: undefined };
  }
  const h = config.listen.host;
  const ip = h === '0.0.0.0' ? '127.0.0.1' : h === '::' ? '[::1]' : h.includes(':') ? `[${h}]` : h;
  const base = `http://${ip}:${config.listen.port}`;
  return { marker: new URL(MARKER_PATH, base), app: new URL(config.app.health.path, base), host: config.hosts.live[0] };
}

async function verifyThroughNginx(config: Config, color: Color, checkApp: boolean, timeoutMs: number): Promise<void> {
  const target = verifyTarget(config);
  const deadline = performance.now() + timeoutMs;
  let seen = 'nothing';
  for (;;) {
    const r = await get(target.marker, target.host, Math.max(100, Math.min(2000, deadline - performance.now())));
    if (r.status === 200 && r.body.trim() === color) break;
    seen = r.status === 200 ? `"${r.body.trim().slice(0, 40)}"` : (r.error ?? `HTTP ${r.status}`);
    if (performance.now() >= deadline) {
      throw new BgError('BG_NGINX', `nginx did not switch to ${color} within ${timeoutMs} ms: ${target.marker.href} answered ${seen}`, {
        detail: `GET ${target.marker.href}${target.host ? ` (Host: ${target.host})` : ''} should answer "${color}"; is the include inside location / of the live server block?`,
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!checkApp) return;
  // Retried until the deadline: one 502 from a worker that was still starting must not undo
  // a good cutover; an app that really fails through nginx fails every time.
  for (;;) {
    const r = await get(target.app, target.host, Math.max(100, Math.min(config.app.health.timeoutMs, deadline - performance.now())));
    if (r.status >= 200 && r.status < 400) return;
    if (performance.now() >= deadline) {
      throw new BgError('BG_NGINX', `through nginx, ${target.app.href} answered ${r.error ?? `HTTP ${r.status}`} after the switch to ${color}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function get(url: URL, host: string | undefined, timeoutMs: number): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const mod = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { 'user-agent': 'bgproxy-verify', connection: 'close' };
    if (host) headers.host = host;
    // Only routing is checked here; a self-signed certificate must not fail the cutover.
    const req = mod.request(url, { method: 'GET', agent: false, headers, rejectUnauthorized: false, servername: host }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 4096) body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolve({ status: 0, body, error: e.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body: '', error: e.code ?? e.message }));
    req.end();
  });
}
