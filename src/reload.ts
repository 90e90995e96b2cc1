// What a config reload (SIGHUP, `bgproxy reload`) may change in a running serve, and when
// it takes effect. Most keys apply to the next request or operation; a few are bound at
// start (the listening socket, the color ports and their pools, the mode) and need a
// restart; the app settings reach a running app at its next start.
import type { Config } from './config.js';
import { BgError } from './errors.js';

/** Keys only a restart of serve applies (a prefix matches the keys under it). */
const NEEDS_RESTART = [
  'root',
  'listen',
  'colors',
  'mode',
  'timeouts.upstreamIdleMs',
  'limits.maxHeaderBytes',
  'buffering.dir',
  'tls.listen',
  'tls.handshakeTimeoutMs',
];

/** App settings a running app process was started with; the next start of each app uses the new ones. */
const AT_NEXT_START = ['app.start', 'app.dir', 'app.env', 'app.health', 'app.startTimeoutMs', 'app.stopSignal', 'app.stopTimeoutMs', 'app.logMaxBytes'];

export interface ReloadPlan {
  /** Every key whose value differs, dotted (`hosts.live`, `timeouts.keepAliveMs`). */
  changed: string[];
  /** The changed keys that a running app only sees at its next start. */
  atNextStart: string[];
  /** What else the operator has to do for the change to show (nginx's own files). */
  notes: string[];
}

function under(key: string, prefixes: readonly string[]): boolean {
  return prefixes.some((p) => key === p || key.startsWith(`${p}.`));
}

/** Values that change as a whole: the listen address, the app's environment map. */
const WHOLE = new Set(['listen', 'app.env', 'tls.listen']);

/** Dotted paths of the leaves that differ; arrays (and WHOLE keys) compare as one value. */
export function configChanges(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (isObj(a) && isObj(b) && !WHOLE.has(prefix)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => configChanges(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

/**
 * What reloading `next` over `current` changes. Throws BG_CONFIG naming the first key that
 * needs a restart: then nothing is applied, so a reload is all or nothing.
 */
export function planReload(current: Readonly<Config>, next: Readonly<Config>): ReloadPlan {
  const changed = configChanges(current, next);
  const cold = changed.find((k) => under(k, NEEDS_RESTART));
  if (cold !== undefined) {
    throw new BgError('BG_CONFIG', `config: ${cold}: changed, and only a restart of serve applies it; nothing was reloaded`);
  }
  if ((current.tls === null) !== (next.tls === null)) {
    throw new BgError('BG_CONFIG', `config: tls: ${next.tls === null ? 'removing' : 'adding'} it opens or closes a listener; restart serve to apply it; nothing was reloaded`);
  }
  if ((current.app.start === null) !== (next.app.start === null)) {
    throw new BgError('BG_CONFIG', `config: app.start: ${next.app.start === null ? 'removing' : 'adding'} it changes who runs the apps; restart serve to apply it; nothing was reloaded`);
  }
  const notes: string[] = [];
  if (next.mode === 'nginx' && changed.some((k) => under(k, ['hosts']))) {
    notes.push('nginx serves the hosts from its site file: run bgproxy nginx-config, install its output and reload nginx');
  }
  return { changed, atNextStart: changed.filter((k) => under(k, AT_NEXT_START)), notes };
}
