// Host -> role. The color behind a role is looked up per request by the caller, so a
// cutover (one assignment of the roles) changes where new requests go and nothing else.
import type { Role } from '../config.js';

export type Route = Role | 'reject';

export class Router {
  readonly #routes = new Map<string, Role>();
  readonly #unknown: Route;

  constructor(hosts: { live: readonly string[]; next: readonly string[] }, unknownHost: 'live' | 'reject') {
    for (const h of hosts.live) this.#routes.set(h, 'live');
    for (const h of hosts.next) this.#routes.set(h, 'next');
    this.#unknown = unknownHost === 'reject' ? 'reject' : 'live';
  }

  /** `host` as returned by normalizeHost(). */
  route(host: string): Route {
    return this.#routes.get(host) ?? this.#unknown;
  }
}
