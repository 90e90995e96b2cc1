// One color's upstream: its keep-alive sockets and the count of what is in flight on it,
// split by the role it had when each request was routed, so a cutover can wait for
// exactly the requests it moved away from.
import type { Socket } from 'node:net';
import type { Color, Role } from '../config.js';
import { type Clock, UpstreamPool } from './upstream.js';

export class Target {
  readonly pool: UpstreamPool;
  /**
   * Whether a refused connection is worth holding the request for (the app is starting or
   * restarting). The supervisor clears it for a color that is stopped on purpose or failed.
   */
  holdable = true;
  #inflight = 0;
  readonly #byRole: Record<Role, number> = { live: 0, next: 0 };
  #served = 0;
  #errors5xx = 0;
  /** Failed exchanges by UPSTREAM_ERROR_KINDS (exchange.ts), for the metrics. */
  readonly upstreamErrors = new Float64Array(4);
  readonly #sockets = new Set<Socket>();
  readonly #waiters = new Set<() => void>();

  constructor(
    readonly color: Color,
    readonly port: number,
    idleMs: number,
    clock: Clock,
  ) {
    // Idle pooled sockets are dropped before a typical app's keep-alive timeout (Node 5 s,
    // gunicorn 2 s) so we rarely write to a socket the app is closing.
    this.pool = new UpstreamPool(port, idleMs, clock);
  }

  get inflight(): number {
    return this.#inflight;
  }
  inflightAs(role: Role): number {
    return this.#byRole[role];
  }
  get served(): number {
    return this.#served;
  }
  get errors5xx(): number {
    return this.#errors5xx;
  }
  get websockets(): number {
    return this.#sockets.size;
  }

  /** A request routed as `role` starts; end() must follow exactly once. */
  begin(role: Role): void {
    this.#inflight++;
    this.#byRole[role]++;
  }

  /** That request is answered, cut off or abandoned (status 0). */
  end(role: Role, status: number): void {
    this.#inflight--;
    this.#byRole[role]--;
    this.#served++;
    if (status >= 500) this.#errors5xx++;
    if (this.#waiters.size > 0) for (const w of [...this.#waiters]) w();
  }

  trackSocket(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      if (this.#waiters.size > 0) for (const w of [...this.#waiters]) w();
    });
  }

  /**
   * Waits up to timeoutMs until no request routed as `role` (or any, when role is
   * omitted; websockets included then) is in flight. Returns how many were cut off.
   */
  drain(timeoutMs: number, role?: Role): Promise<number> {
    const pending = (): number => (role ? this.#byRole[role] : this.#inflight + this.#sockets.size);
    if (pending() === 0) return Promise.resolve(0);
    return new Promise((resolve) => {
      const check = (): void => {
        if (pending() === 0) finish(0);
      };
      const timer = setTimeout(() => finish(pending()), timeoutMs);
      const finish = (left: number): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(left);
      };
      this.#waiters.add(check);
    });
  }

  /** Ends the websockets still open on this color (after their drain time). */
  closeWebsockets(): void {
    for (const s of this.#sockets) s.destroy();
  }

  close(): void {
    this.pool.close();
  }
}
