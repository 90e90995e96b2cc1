// The `access` key of bgproxy.json: who may reach the live and the next hosts. Read by
// parseConfig; the gates get it already checked.
import { fail, obj, opt, type Raw, str, strList } from '../config-readers.js';
import { parseCidr } from './allow-list.js';
import { parseHash } from './passwd.js';

export interface AccessRule {
  /** Client addresses (CIDRs) let in; null: any address. */
  allow: string[] | null;
  /** Credentials asked for; the hash comes from `bgproxy passwd`. null: none. */
  basicAuth: { user: string; hash: string } | null;
}

export interface AccessConfig {
  live: AccessRule | null;
  next: AccessRule | null;
}

function parseRule(v: Raw, key: string, mode: 'proxy' | 'nginx'): AccessRule | null {
  if (v === undefined || v === null) return null;
  const o = obj(v, key, ['allow', 'basicAuth']);
  const allow = opt<string[] | null>(o, 'allow', key, strList, null);
  allow?.forEach((c, i) => {
    if (parseCidr(c) === null) fail(`${key}.allow[${i}]`, `not an address or CIDR: "${c.slice(0, 60)}"`);
  });
  if (allow !== null && allow.length === 0) fail(`${key}.allow`, 'an empty list would refuse everyone; remove the key to allow any address');
  let basicAuth: AccessRule['basicAuth'] = null;
  if (o.basicAuth !== undefined && o.basicAuth !== null) {
    const b = obj(o.basicAuth, `${key}.basicAuth`, ['user', 'hash']);
    const user = str(b.user, `${key}.basicAuth.user`, { nonEmpty: true });
    if (user.includes(':')) fail(`${key}.basicAuth.user`, 'must not contain ":"');
    const hash = str(b.hash, `${key}.basicAuth.hash`, { nonEmpty: true });
    if (parseHash(hash) === null) fail(`${key}.basicAuth.hash`, 'not a hash made by `bgproxy passwd` ($scrypt$ln=..,r=..,p=..$salt$hash); never a plain password');
    if (mode === 'nginx') {
      fail(`${key}.basicAuth`, "nginx mode cannot check it: nginx's auth_basic reads crypt(3) hashes, not scrypt; use allow, or auth_basic with your own htpasswd file in the server block");
    }
    basicAuth = { user, hash };
  }
  if (allow === null && basicAuth === null) return null;
  return { allow, basicAuth };
}

export function parseAccess(v: Raw, mode: 'proxy' | 'nginx'): AccessConfig {
  const o = obj(v ?? {}, 'access', ['live', 'next']);
  return { live: parseRule(o.live, 'access.live', mode), next: parseRule(o.next, 'access.next', mode) };
}
