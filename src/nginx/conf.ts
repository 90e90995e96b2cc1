// nginx include mode: the files nginx reads. Each color's ROOT/COLOR/etc/nginx.conf holds the
// location-level proxy directives for that color (the recipe's one-line file, with headers); the
// site file holds two server blocks whose `location /` includes ROOT/live/... and ROOT/next/...,
// so swapping the symlinks and reloading nginx moves the hosts, as the recipe did. Each color
// also has ROOT/COLOR/etc/nginx-upstream.conf, an http-level `upstream` block that keeps
// connections to its app alive; the site file includes both colors' blocks.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { Color, Config, Role } from '../config.js';
import { BgError } from '../errors.js';
import { writeFileAtomic } from '../layout/atomic.js';

/** Answered by nginx itself from the include file: which color the serving workers route to. */
export const MARKER_PATH = '/.well-known/bgproxy-color';

// Everything interpolated into an nginx file passes one of these. Config validation already
// refuses most of it; this is the last line before text becomes directives.
const SAFE_PATH = /^\/[A-Za-z0-9._/@+~=,-]*$/;
const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const LISTEN_HOST = /^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*|[a-z0-9.-]+)$/;

function refuse(what: string, value: unknown, why: string): never {
  throw new BgError('BG_CONFIG', `nginx: refusing to write ${what} ${JSON.stringify(value)} into an nginx file: ${why}`);
}

function checkHost(name: string, key: string): string {
  if (typeof name !== 'string' || name.length > 253 || !HOST_NAME.test(name)) {
    refuse(key, name, 'a host name is lower-case labels of a-z, 0-9 and "-" (no spaces, ";", braces, quotes or line breaks)');
  }
  return name;
}

function checkPort(port: number, key: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) refuse(key, port, 'not a port between 1 and 65535');
  return port;
}

/** The root as written into include paths: absolute, normalized, no characters nginx would parse. */
function checkRoot(root: string): string {
  const r = typeof root === 'string' && root.length > 1 ? root.replace(/\/+$/, '') : root;
  if (typeof r !== 'string' || !path.isAbsolute(r) || path.normalize(r) !== r || !SAFE_PATH.test(r)) {
    refuse('the root', root, 'include paths must be absolute, normalized and use only A-Z a-z 0-9 . _ / @ + ~ = , -');
  }
  return r;
}

/** ROOT/<live|next|color>/etc/nginx.conf, the path the recipe used. */
export function includeFile(root: string, dir: Role | Color): string {
  return path.join(checkRoot(root), dir, 'etc', 'nginx.conf');
}

/** ROOT/COLOR/etc/nginx-upstream.conf: the color's http-level upstream block. */
export function upstreamFile(root: string, color: Color): string {
  return path.join(checkRoot(root), color, 'etc', 'nginx-upstream.conf');
}

/**
 * The color's upstream name, unique per root so several bgproxy sites can share one nginx:
 * bgproxy_<root as a word>_<hash of the root>_<color>, e.g. bgproxy_srv_shop_3f2a1c_blue.
 */
export function upstreamName(root: string, color: Color): string {
  const r = checkRoot(root);
  const word = r.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(-40);
  const hash = createHash('sha256').update(r).digest('hex').slice(0, 6);
  return `bgproxy_${word}_${hash}_${color}`;
}

/**
 * The http-level upstream block for one color. With upstreamKeepalive > 0 each nginx worker
 * keeps that many idle connections to the app (HTTP/1.1, no Connection: close, as the include
 * asks), dropped after timeouts.upstreamIdleMs: below the app's own keep-alive timeout, so
 * nginx rarely writes to a connection the app is closing.
 */
export function renderUpstream(config: Config, color: Color): string {
  const port = checkPort(config.colors[color].port, `colors.${color}.port`);
  const root = checkRoot(config.root);
  const keepalive = config.nginx.upstreamKeepalive;
  const idle = keepalive > 0 ? `    keepalive ${keepalive};\n    keepalive_timeout ${config.timeouts.upstreamIdleMs}ms;\n` : '';
  return `# written by bgproxy: the ${color} app of ${root}, for nginx's http level.
# Included by the site file of \`bgproxy nginx-config\`; bgproxy rewrites it on deploy and
# cutover (nginx.upstreamKeepalive, timeouts.upstreamIdleMs); edits here are lost.
upstream ${upstreamName(root, color)} {
    server 127.0.0.1:${port};
${idle}}
`;
}

/** The location-level directives for one color. Must be included inside `location / { }`. */
export function renderInclude(config: Config, color: Color): string {
  const port = checkPort(config.colors[color].port, `colors.${color}.port`);
  const root = checkRoot(config.root);
  // nginx cuts a proxied request off after this much upstream silence; websockets included.
  const timeoutS = Math.max(1, Math.ceil(config.upstreamTimeoutMs / 1000));
  return `# written by bgproxy: the ${color} color of ${root} (127.0.0.1:${port}).
# bgproxy rewrites this file on deploy and cutover; edits here are lost.
# Included inside \`location / { }\` by the server blocks of \`bgproxy nginx-config\`,
# which also define $bgproxy_connection and include this color's nginx-upstream.conf
# (both http-level: they cannot live here).
proxy_pass http://${upstreamName(root, color)};
proxy_http_version 1.1;
proxy_set_header Host $host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Forwarded-Host $host;
proxy_set_header Upgrade $http_upgrade;
proxy_set_header Connection $bgproxy_connection;
proxy_read_timeout ${timeoutS}s;
proxy_send_timeout ${timeoutS}s;

${markerLocation(color)}`;
}

/**
 * Answered by nginx, not the app, in every include (the placeholder's too): `bgproxy cutover`
 * asks it through nginx to confirm which color the workers serving the live host route to.
 */
export function markerLocation(color: Color): string {
  return `# Answered by nginx, not the app: \`bgproxy cutover\` asks it through nginx to confirm that the
# workers serving the live host route to the new color. It names only the color.
location = ${MARKER_PATH} {
    access_log off;
    default_type text/plain;
    add_header Cache-Control "no-store" always;
    return 200 "${color}\\n";
}
`;
}

export interface WriteIncludeResult {
  file: string;
  changed: boolean;
}

/**
 * Writes ROOT/COLOR/etc/nginx.conf and nginx-upstream.conf atomically, each only when its
 * content differs; `changed` if either did.
 */
export function writeInclude(config: Config, color: Color): WriteIncludeResult {
  const file = includeFile(config.root, color);
  const upstream = writeNginxFile(config.root, upstreamFile(config.root, color), renderUpstream(config, color));
  const include = writeNginxFile(config.root, file, renderInclude(config, color));
  return { file, changed: upstream.changed || include.changed };
}

/**
 * Writes `file` (inside `root`) atomically when its content differs from `text`; `previous` is
 * what it held before (null: no file), so a caller can put it back byte for byte.
 */
export function writeNginxFile(root: string, file: string, text: string): { changed: boolean; previous: string | null } {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true });
  // ROOT/COLOR/etc may be a link someone made; never follow it out of the root.
  const realRoot = realpathSync(root);
  const realDir = realpathSync(dir);
  if (realDir !== realRoot && !realDir.startsWith(`${realRoot}${path.sep}`)) {
    throw new BgError('BG_NGINX', `refusing to write ${file}: ${dir} resolves to ${realDir}, outside ${realRoot}`);
  }
  let current: string | null = null;
  try {
    current = readFileSync(file, 'utf8');
  } catch {}
  if (current === text) return { changed: false, previous: current };
  writeFileAtomic(file, text);
  return { changed: true, previous: current };
}

function listenDirective(config: Config): string {
  const { host } = config.listen;
  const port = checkPort(config.listen.port, 'listen');
  if (!LISTEN_HOST.test(host)) refuse('listen host', host, 'not an IP address or host name');
  if (host === '0.0.0.0') return `${port}`;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const ADDRESS_OR_CIDR = /^[0-9a-fA-F:.]+(?:\/\d{1,3})?$/;

/**
 * access.ROLE.allow as nginx's allow/deny (others get 403, as in proxy mode). Behind trusted
 * proxies, the realip module makes $remote_addr the client address first, as bgproxy reads it.
 * Basic auth cannot be written: config validation refuses it in nginx mode (scrypt hashes).
 */
function accessDirectives(config: Config, role: Role): string {
  const allow = config.access[role]?.allow;
  if (!allow) return '';
  const check = (a: string, key: string): string => (ADDRESS_OR_CIDR.test(a) ? a : refuse(key, a, 'not an address or CIDR'));
  const lines = [`    # access.${role}.allow in bgproxy.json: any other client address gets 403.`];
  if (config.trustProxy.length > 0) {
    lines.push('    # The client address behind the trusted proxies (trustProxy), as bgproxy reads it.');
    lines.push(...config.trustProxy.map((a, i) => `    set_real_ip_from ${check(a, `trustProxy[${i}]`)};`));
    lines.push('    real_ip_header X-Forwarded-For;', '    real_ip_recursive on;');
  }
  lines.push(...allow.map((a, i) => `    allow ${check(a, `access.${role}.allow[${i}]`)};`));
  lines.push('    deny all;');
  return `${lines.join('\n')}\n`;
}

function serverBlock(config: Config, role: Role, hosts: readonly string[], listen: string): string {
  const names = hosts.map((h, i) => checkHost(h, `hosts.${role}[${i}]`));
  return `server {
    listen ${listen};
    server_name ${names.join(' ')};
${accessDirectives(config, role)}    location / {
        include ${includeFile(config.root, role)};
    }
}
`;
}

/**
 * The site file for sites-enabled (http level): the Connection map, both colors' upstream
 * blocks, and the live and next server blocks.
 */
export function renderServerBlocks(config: Config): string {
  if (config.hosts.live.length === 0) {
    throw new BgError('BG_CONFIG', 'config: hosts.live: nginx mode needs at least one live host name for server_name');
  }
  const root = checkRoot(config.root);
  const listen = listenDirective(config);
  const blocks = [serverBlock(config, 'live', config.hosts.live, listen)];
  if (config.hosts.next.length > 0) blocks.push(serverBlock(config, 'next', config.hosts.next, listen));
  else blocks.push('# No hosts.next: the next color has no preview host.\n');
  return `# written by bgproxy nginx-config for ${root}.
# The live hosts are served by whichever color ${root}/live points at, the next hosts by
# ${root}/next. bgproxy switches them by renaming those links and reloading nginx.
# Add TLS, static locations or other server-level directives here; keep the includes inside
# \`location / { }\`.

# WebSocket upgrade when the client asks for it, else no Connection header, so the
# connection to the app stays open for the next request (the upstream keepalive). Every
# bgproxy site defines the same map, and nginx accepts the identical repeat.
map $http_upgrade $bgproxy_connection {
    default upgrade;
    ''      '';
}

# Each color's app as an upstream with idle keep-alive connections; bgproxy writes these
# files (the ports and keep-alive settings come from bgproxy.json).
include ${upstreamFile(root, 'blue')};
include ${upstreamFile(root, 'green')};

${blocks.join('\n')}`;
}
