// The one test an upstream socket passes before it goes back to a keep-alive pool. A socket
// that is reused in any other state hands the next, unrelated request a stale answer, a
// paused reader (the request waits for the upstream timeout, then 504) or another exchange's
// listeners: it is destroyed instead, and the reason counted where tests and metrics see it.
import type net from 'node:net';

/** What the pool sees of a socket that is offered back. */
export interface PoolCandidate {
  readonly socket: net.Socket;
  /** An exchange still holds it. */
  readonly inUse: boolean;
  /** Reading is paused (for a slow client): the next user would never hear its answer. */
  readonly paused: boolean;
  /** The parser is inside a response (its end not reached). */
  readonly midResponse: boolean;
  /** Closed, failed, or marked dead by its owner. */
  readonly dead: boolean;
  /** Listener count taken when it connected: anything above it was left by a user. */
  readonly listenerBaseline: number;
}

export type UncleanReason = 'dead' | 'in-use' | 'paused' | 'mid-response' | 'unread-bytes' | 'unsent-bytes' | 'listeners';

/** The events whose listeners a user could leave behind. */
const EVENTS = ['data', 'end', 'error', 'close', 'drain', 'readable', 'timeout'] as const;

/** Listeners on the events a pooled socket may carry. */
export function listenerCount(socket: net.Socket): number {
  let n = 0;
  for (const e of EVENTS) n += socket.listenerCount(e);
  return n;
}

/** Why `c` must not be pooled, or null when it is clean. */
export function unclean(c: PoolCandidate): UncleanReason | null {
  const s = c.socket;
  if (c.dead || s.destroyed || !s.writable || !s.readable) return 'dead';
  if (c.inUse) return 'in-use';
  if (c.paused) return 'paused';
  if (c.midResponse) return 'mid-response';
  if (s.readableLength > 0) return 'unread-bytes';
  if (s.writableLength > 0) return 'unsent-bytes';
  if (listenerCount(s) > c.listenerBaseline) return 'listeners';
  return null;
}
