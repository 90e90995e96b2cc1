// The Host header, reduced to what routing compares: lower case, no port, no trailing dot.
// Returns null for anything that is not a plausible host[:port] (the caller answers 400).

const HOST_CHARS = /^[a-z0-9.-]+$/;

export function normalizeHost(value: string | undefined): string | null {
  if (value === undefined || value.length === 0 || value.length > 261) return null;
  let host = value.toLowerCase();
  if (host.charCodeAt(0) === 91 /* [ */) {
    const end = host.indexOf(']');
    if (end < 0) return null;
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
    const v6 = host.slice(1, end);
    return /^[0-9a-f:.]+$/.test(v6) ? `[${v6}]` : null;
  }
  const colon = host.indexOf(':');
  if (colon >= 0) {
    const port = host.slice(colon + 1);
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return null;
    host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.length === 0 || !HOST_CHARS.test(host) || host.includes('..')) return null;
  return host;
}
