// A port for an app process that must be told its port up front (PORT=N: the supervisor
// health-checks a known port, so the app cannot listen on 0 and report back).
//
// The risk of "find a free port, close it, hand out the number": someone else binds it
// in between. Port-0 listeners (our proxies, backends, the kernel's outgoing connections)
// take ports from the ephemeral range, so we pick at random *below* that range, where only
// explicit binders go, check that it binds, and never hand out the same number twice in
// one process. Parallel tap workers can still collide, with odds around 1 in 10 000 per
// pair of calls. Everything that can listen on 0 should, and keep its listener.
import { readFileSync } from 'node:fs';
import net from 'node:net';

const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    if (Number.isInteger(n) && n > 20_000) return n;
  } catch {
    // not Linux: fall through
  }
  return 32_768;
}

const LOW = 20_000;
const HIGH = ephemeralLow(); // exclusive

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port on 127.0.0.1 that was free a moment ago, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found between ${LOW} and ${HIGH}`);
}
