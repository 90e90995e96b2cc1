// The client's address as access rules and the canary see it: the socket's peer, or, when
// that peer is a trusted proxy (config trustProxy), the nearest X-Forwarded-For entry that is
// not one of ours. IPv4-mapped IPv6 ("::ffff:10.0.0.1") reads as plain IPv4.
import type { RequestView } from '../proxy/gate.js';

export function plainAddress(a: string): string {
  return a.length > 7 && a.charCodeAt(0) === 58 /* : */ && a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export function clientAddress(req: RequestView, trusted: ReadonlySet<string>): string {
  if (!req.trustedPeer) return plainAddress(req.remoteAddress);
  const xff = req.header('x-forwarded-for');
  if (xff === undefined) return plainAddress(req.remoteAddress);
  // Right to left: each trusted hop appended the address it saw; the first one it did not
  // trust is the client. Entries left of it are the client's own claims.
  let end = xff.length;
  let hop = '';
  while (end > 0) {
    const start = xff.lastIndexOf(',', end - 1);
    hop = plainAddress(xff.slice(start + 1, end).trim());
    if (hop !== '' && !trusted.has(hop)) return hop;
    end = Math.max(start, 0);
  }
  return hop === '' ? plainAddress(req.remoteAddress) : hop;
}
