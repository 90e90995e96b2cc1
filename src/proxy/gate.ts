// The seam between the front door and the policies that may answer a request themselves,
// hold it, or send it elsewhere before it is forwarded: the ACME challenge, HTTP→HTTPS,
// SNI/Host agreement (TLS), access rules, maintenance, pause and canary (traffic controls).
// The forwarding engine builds one RequestView per request and asks each gate in order;
// a gate that has nothing to say returns null, so the common path allocates nothing.
import type { Color, Role } from '../config.js';

export interface RequestView {
  readonly method: string;
  /** The request target in origin form ("/path?query"). */
  readonly path: string;
  /** The routed host, normalized (lower case, no port). */
  readonly host: string;
  /** The role the host routes to. */
  readonly role: Role;
  /** The peer address of the client socket. */
  readonly remoteAddress: string;
  /** Whether the client socket is one of the configured trusted proxies. */
  readonly trustedPeer: boolean;
  /** Set when the connection is TLS: the SNI name the client sent (null without SNI). */
  readonly tls: { readonly servername: string | null } | null;
  /** An upgrade request (websocket). */
  readonly upgrade: boolean;
  /** A request header by lower-case name: the first field's value, or undefined. */
  header(lowerName: string): string | undefined;
}

/** Answer the request here, without the app. */
export interface Answer {
  readonly kind: 'answer';
  readonly status: number;
  /** Extra response headers (Content-Type, Retry-After, WWW-Authenticate, Location, …). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body: string | Buffer;
  /** Close the connection after answering (the request body, if any, is not read). */
  readonly close?: boolean;
}

/** Forward it, changed. */
export interface Forward {
  readonly kind: 'forward';
  /** Send to this color instead of the role's (canary). The request still counts under its role. */
  readonly color?: Color;
  /** Request headers (lower-case names) removed before the app sees the request. */
  readonly stripRequestHeaders?: readonly string[];
  /** Request headers (lower-case names) set to these values, replacing any the client sent (canary: Cookie without its cookie). */
  readonly setRequestHeaders?: ReadonlyArray<readonly [string, string]>;
  /** Response headers added to what the app answers (Set-Cookie for canary stickiness). */
  readonly addResponseHeaders?: ReadonlyArray<readonly [string, string]>;
}

/** Hold the request (nothing read from its body) until the promise settles with a verdict. */
export interface Wait {
  readonly kind: 'wait';
  readonly until: Promise<Verdict | null>;
}

export type Verdict = Answer | Forward | Wait;

export interface Gate {
  /** null: nothing to say, the next gate (or the forwarder) takes the request as it is. */
  check(req: RequestView): Verdict | null;
}
