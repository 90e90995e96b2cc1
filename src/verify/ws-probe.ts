// One websocket kept open for the whole load, sending a message every ~100 ms and
// expecting it echoed. A cutover must not close it: the old color keeps it until
// its drain timeout, so a close before the end of the run counts as a failure.
import { WebSocket } from 'ws';

export interface WsResult {
  /** True when the socket opened, stayed open to the end and every message came back. */
  ok: boolean;
  opened: boolean;
  sent: number;
  echoed: number;
  /** Sent but not echoed, after a grace period at the end. */
  lost: number;
  /** ms since the load started when the socket closed or failed unexpectedly; null if it didn't. */
  closedAt: number | null;
  error: string | null;
}

export interface WsProbe {
  /** Stops sending, waits briefly for outstanding echoes, closes; never rejects. */
  finish(): Promise<WsResult>;
}

const SEND_EVERY_MS = 100;
const ECHO_GRACE_MS = 1000;

export function startWsProbe(o: {
  url: URL;
  host: string | undefined;
  elapsed: () => number;
  timeoutMs: number;
  tls?: { ca?: Buffer; servername?: string } | null;
}): WsProbe {
  const wsUrl = new URL(o.url);
  wsUrl.protocol = o.url.protocol === 'https:' ? 'wss:' : 'ws:';
  const headers: Record<string, string> = o.host === undefined ? {} : { host: o.host };
  const ws = new WebSocket(wsUrl, { headers, handshakeTimeout: o.timeoutMs, ...(o.tls ?? {}) });
  const pending = new Set<string>();
  let opened = false;
  let finishing = false;
  let sent = 0;
  let echoed = 0;
  let closedAt: number | null = null;
  let error: string | null = null;
  let seq = 0;
  let onDrained: (() => void) | null = null;

  const fail = (why: string): void => {
    if (finishing || closedAt !== null) return;
    closedAt = o.elapsed();
    error = why;
    clearInterval(ticker);
    onDrained?.();
  };
  const ticker = setInterval(() => {
    if (!opened || ws.readyState !== WebSocket.OPEN) return;
    const msg = `bgproxy-verify ${seq++}`;
    pending.add(msg);
    sent++;
    ws.send(msg);
  }, SEND_EVERY_MS);

  ws.on('open', () => {
    opened = true;
  });
  ws.on('message', (data) => {
    const msg = Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
    if (pending.delete(msg)) echoed++;
    if (finishing && pending.size === 0) onDrained?.();
  });
  ws.on('unexpected-response', (_req, res) => {
    fail(`upgrade refused: HTTP ${res.statusCode}`);
    res.resume();
    ws.terminate();
  });
  ws.on('error', (err) => fail(err.message));
  ws.on('close', (code) => fail(`closed with code ${code}`));

  return {
    async finish(): Promise<WsResult> {
      clearInterval(ticker);
      if (closedAt === null && pending.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ECHO_GRACE_MS);
          onDrained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      finishing = true;
      if (closedAt === null && !opened) error = 'never opened';
      ws.terminate();
      const lost = sent - echoed;
      return {
        ok: opened && closedAt === null && error === null && lost === 0,
        opened,
        sent,
        echoed,
        lost,
        closedAt,
        error,
      };
    },
  };
}
