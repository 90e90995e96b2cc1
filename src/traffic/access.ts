// access.live / access.next as a gate: the client address against the allow list (403),
// then basic auth (401 with WWW-Authenticate); the Authorization header never reaches the app.
// A config reload swaps the rules in one assignment.
import type { Config, Role } from '../config.js';
import type { Gate, RequestView, Verdict } from '../proxy/gate.js';
import { clientAddress, plainAddress } from './address.js';
import { AllowList } from './allow-list.js';
import { answer } from './answers.js';
import { BasicAuth } from './basic-auth.js';
import type { AccessRule } from './config.js';

const FORBIDDEN = answer(403, 'bgproxy: forbidden');

interface Rule {
  allow: AllowList | null;
  auth: BasicAuth | null;
}

function compile(rule: AccessRule | null, role: Role): Rule | null {
  if (rule === null) return null;
  return {
    allow: rule.allow ? new AllowList(rule.allow) : null,
    auth: rule.basicAuth ? new BasicAuth(rule.basicAuth.user, rule.basicAuth.hash, `bgproxy ${role}`) : null,
  };
}

export class AccessGate implements Gate {
  #live: Rule | null = null;
  #next: Rule | null = null;
  #trusted: ReadonlySet<string> = new Set();

  constructor(config: Readonly<Config>) {
    this.configure(config);
  }

  /** At start and at each reload: the rules from now on (remembered credentials are dropped). */
  configure(config: Readonly<Config>): void {
    this.#live = compile(config.access.live, 'live');
    this.#next = compile(config.access.next, 'next');
    this.#trusted = new Set(config.trustProxy.map(plainAddress));
  }

  check(req: RequestView): Verdict | null {
    const rule = req.role === 'live' ? this.#live : this.#next;
    if (rule === null) return null;
    if (rule.allow !== null && !rule.allow.has(clientAddress(req, this.#trusted))) return FORBIDDEN;
    return rule.auth === null ? null : rule.auth.check(req.header('authorization'));
  }
}
