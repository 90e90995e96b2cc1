// One fleet operation in progress: the fleet, its ssh masters, its output (every line
// prefixed by its server), and Ctrl-C: once interrupted, no new step starts; the steps
// already running are waited for, so the report can say where every server stands.
import { BgError, isBgError } from '../errors.js';
import type { FleetConfig, FleetServer } from './config.js';
import { Ssh } from './ssh.js';

export type Outcome<T> =
  | { server: Readonly<FleetServer>; state: 'ok'; value: T }
  | { server: Readonly<FleetServer>; state: 'failed'; error: BgError }
  | { server: Readonly<FleetServer>; state: 'not started' };

/** A failure in a word or two, for the history and summaries. */
export function describeFailure(err: BgError): string {
  return err.code === 'BG_UNREACHABLE' ? 'unreachable' : 'failed';
}

export class FleetRun {
  readonly fleet: Readonly<FleetConfig>;
  readonly ssh: Ssh;
  #interrupted = false;
  readonly #onInterrupt = new Set<() => void>();
  readonly #out: (text: string) => void;
  readonly #width: number;

  constructor(fleet: Readonly<FleetConfig>, out: (text: string) => void = (t) => process.stdout.write(t)) {
    this.fleet = fleet;
    this.ssh = new Ssh(fleet);
    this.#out = out;
    this.#width = Math.max(...fleet.servers.map((s) => s.name.length));
  }

  get servers(): readonly Readonly<FleetServer>[] {
    return this.fleet.servers;
  }

  get interrupted(): boolean {
    return this.#interrupted;
  }

  /** Ctrl-C: stop starting steps; what waits for a decision (a gate) is told at once. */
  interrupt(): void {
    if (this.#interrupted) return;
    this.#interrupted = true;
    this.say('interrupted: no new step starts; waiting for the running ones to finish');
    for (const fn of this.#onInterrupt) fn();
  }

  /** Calls fn on interrupt (at once if already interrupted); returns the unsubscribe. */
  onInterrupt(fn: () => void): () => void {
    if (this.#interrupted) fn();
    this.#onInterrupt.add(fn);
    return () => this.#onInterrupt.delete(fn);
  }

  /** A line about the whole fleet. */
  say(line: string): void {
    this.#out(`${line}\n`);
  }

  /** A line about one server, prefixed by its name. */
  line(server: Readonly<FleetServer>, line: string): void {
    this.#out(`${server.name.padEnd(this.#width)} | ${line}\n`);
  }

  /** An error about one server: its message without the name the prefix already gives, then its detail lines. */
  failure(server: Readonly<FleetServer>, what: string, err: BgError): void {
    const own = `${server.name}: `;
    this.line(server, `${what}: ${err.message.startsWith(own) ? err.message.slice(own.length) : err.message}`);
    for (const l of err.detail?.split('\n') ?? []) if (l.trim() !== '') this.line(server, `  ${l}`);
  }

  /**
   * Runs fn for every server, at most `parallel` at once, in the fleet's order; after an
   * interrupt, the ones not started yet are reported as such (unless evenIfInterrupted:
   * only for what changes nothing, like asking for status). Never throws.
   */
  async each<T>(
    fn: (server: Readonly<FleetServer>) => Promise<T>,
    opts: { parallel?: number; servers?: readonly Readonly<FleetServer>[]; evenIfInterrupted?: boolean } = {},
  ): Promise<Outcome<T>[]> {
    const servers = opts.servers ?? this.servers;
    const out: Outcome<T>[] = servers.map((server) => ({ server, state: 'not started' }));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < servers.length && (opts.evenIfInterrupted || !this.#interrupted)) {
        const i = next++;
        const server = servers[i]!;
        try {
          out[i] = { server, state: 'ok', value: await fn(server) };
        } catch (err) {
          const error = isBgError(err) ? err : new BgError('BG_FLEET', `${server.name}: ${(err as Error)?.message ?? String(err)}`);
          out[i] = { server, state: 'failed', error };
        }
      }
    };
    const n = Math.min(opts.parallel ?? this.fleet.parallel, servers.length);
    await Promise.all(Array.from({ length: n }, worker));
    return out;
  }

  close(): Promise<void> {
    return this.ssh.close();
  }
}
