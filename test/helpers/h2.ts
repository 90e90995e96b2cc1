// HTTP/2 for tests: sessions of Node's http2 client, one request on a session, and a raw
// h2 client over TLS that writes frames byte by byte (what a hostile client sends and
// Node's client refuses to) and reads the server's frames back.
import http2 from 'node:http2';
import tls from 'node:tls';

type T = { teardown(fn: () => unknown): void };

/** A session of Node's http2 client to the TLS listener on `port`, destroyed at teardown. */
export function h2Connect(t: T, port: number, ca: Buffer, host = 'live.test', settings?: http2.Settings): http2.ClientHttp2Session {
  const s = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: host, ...(settings ? { settings } : {}) });
  s.on('error', () => {});
  t.teardown(() => s.destroy());
  return s;
}

export interface H2Result {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** One request on `s`; `body` parts are written one by one (no content-length unless given). */
export function h2Request(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Array<string | Buffer>): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const req = s.request(headers, { endStream: body === undefined });
    let res: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.setTimeout(20_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.on('response', (h) => {
      res = h;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(res[':status']), headers: res, body: Buffer.concat(chunks).toString() }));
    req.on('close', () => {
      if (req.rstCode !== undefined && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(Object.assign(new Error(`stream reset (${req.rstCode})`), { rstCode: req.rstCode }));
    });
    req.on('error', reject);
    if (body) {
      for (const b of body) req.write(b);
      req.end();
    }
  });
}

// --- raw frames ------------------------------------------------------------------------

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 5.1), first byte ORed with `high`. */
function hpackInt(v: number, bits: number, high: number): number[] {
  const max = (1 << bits) - 1;
  if (v < max) return [high | v];
  const out = [high | max];
  let rest = v - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

/** A header block of literal fields without indexing, new names, no Huffman (RFC 7541 6.2.2). */
export function hpack(fields: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [n, v] of fields) {
    const name = Buffer.from(n, 'latin1');
    const value = Buffer.from(v, 'latin1');
    parts.push(Buffer.from([0x00, ...hpackInt(name.length, 7, 0)]), name, Buffer.from(hpackInt(value.length, 7, 0)), value);
  }
  return Buffer.concat(parts);
}

/** A request's header fields: the four pseudo-headers, then `extra`. */
export function requestFields(path = '/', authority = 'live.test', extra: Array<[string, string]> = [], method = 'GET'): Array<[string, string]> {
  return [[':method', method], [':scheme', 'https'], [':path', path], [':authority', authority], ...extra];
}

export interface RawFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export interface RawH2 {
  socket: tls.TLSSocket;
  frames: RawFrame[];
  /** Resolves when the server closed the connection. */
  closed: Promise<void>;
  isClosed(): boolean;
  write(b: Buffer): boolean;
  /** Resolves with the first frame (already read or to come) that matches. */
  waitFor(match: (f: RawFrame) => boolean, timeoutMs?: number): Promise<RawFrame | null>;
  /** The GOAWAY error code the server sent, or null. */
  goaway(): number | null;
}

/** A TLS connection with ALPN h2 that has sent the preface and empty SETTINGS (and acks the server's). */
export async function rawH2(t: T, port: number, ca: Buffer, host = 'live.test'): Promise<RawH2> {
  const socket = tls.connect({ port, host: '127.0.0.1', servername: host, ca, ALPNProtocols: ['h2'] });
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  const frames: RawFrame[] = [];
  const waiters: Array<{ match: (f: RawFrame) => boolean; resolve: (f: RawFrame | null) => void }> = [];
  let buf = Buffer.alloc(0);
  let closed = false;
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const f: RawFrame = { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
      buf = buf.subarray(9 + len);
      // Ack the server's SETTINGS as any client must (floods aside).
      if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0 && !socket.destroyed) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      frames.push(f);
      for (const w of [...waiters]) {
        if (w.match(f)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    }
  });
  const done = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      for (const w of waiters.splice(0)) w.resolve(null);
      resolve();
    }),
  );
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
  return {
    socket,
    frames,
    closed: done,
    isClosed: () => closed,
    write: (b) => socket.write(b),
    waitFor(match, timeoutMs = 20_000) {
      const seen = frames.find(match);
      if (seen) return Promise.resolve(seen);
      if (closed) return Promise.resolve(null);
      return new Promise((resolve) => {
        const w = {
          match,
          resolve: (f: RawFrame | null) => {
            clearTimeout(timer);
            resolve(f);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          resolve(null);
        }, timeoutMs);
        waiters.push(w);
      });
    },
    goaway() {
      const g = frames.find((f) => f.type === FRAME.GOAWAY);
      return g ? g.payload.readUInt32BE(4) : null;
    },
  };
}

/** The server's answer on a stream: its response HEADERS, or the RST_STREAM error code. */
export async function rawAnswer(c: RawH2, stream: number): Promise<{ headers: boolean; rst: number | null }> {
  const f = await c.waitFor((x) => x.stream === stream && (x.type === FRAME.HEADERS || x.type === FRAME.RST_STREAM));
  if (f === null) return { headers: false, rst: null };
  return f.type === FRAME.HEADERS ? { headers: true, rst: null } : { headers: false, rst: f.payload.readUInt32BE(0) };
}

// --- load ------------------------------------------------------------------------------

export interface H2LoadStats {
  requests: number;
  errors: string[];
  non2xx: number[];
  /** Response bodies (trimmed) in the order they arrived. */
  bodies: string[];
  counts: Map<string, number>;
}

/**
 * Bounded h2 load: `sessions` connections, each with `streams` request loops running at
 * once (one stream after another per loop) until stop() or maxMs.
 */
export function startH2Load(o: { port: number; ca: Buffer; host: string; sessions: number; streams: number; maxMs: number; path?: string }): {
  stats: H2LoadStats;
  stop(): Promise<H2LoadStats>;
} {
  const stats: H2LoadStats = { requests: 0, errors: [], non2xx: [], bodies: [], counts: new Map() };
  let running = true;
  const deadline = Date.now() + o.maxMs;
  const sessions: http2.ClientHttp2Session[] = [];
  const loop = async (s: http2.ClientHttp2Session): Promise<void> => {
    while (running && Date.now() < deadline && !s.destroyed) {
      try {
        const r = await h2Request(s, { ':path': o.path ?? '/', ':authority': o.host });
        stats.requests++;
        if (r.status < 200 || r.status >= 300) stats.non2xx.push(r.status);
        const b = r.body.trim();
        stats.bodies.push(b);
        stats.counts.set(b, (stats.counts.get(b) ?? 0) + 1);
      } catch (e) {
        stats.errors.push((e as Error).message);
      }
    }
  };
  const all = Promise.all(
    Array.from({ length: o.sessions }, () => {
      const s = http2.connect(`https://127.0.0.1:${o.port}`, { ca: o.ca, servername: o.host });
      s.on('error', (e) => stats.errors.push(`session: ${e.message}`));
      sessions.push(s);
      return Promise.all(Array.from({ length: o.streams }, () => loop(s)));
    }),
  );
  return {
    stats,
    async stop() {
      running = false;
      await all;
      for (const s of sessions) s.close();
      return stats;
    },
  };
}
