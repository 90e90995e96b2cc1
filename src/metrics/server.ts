// metrics.listen: GET /metrics in Prometheus's text format, on a listener of its own (never
// the public port: the numbers say what is deployed, how much traffic there is, when
// certificates expire). A plain node:http server: one scrape every few seconds is not
// the hot path.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Listen } from '../config.js';
import type { Logger } from '../log.js';

export interface MetricsServer {
  /** "host:port" bound (port 0 resolved). */
  address: AddressInfo;
  close(): Promise<void>;
}

export async function startMetricsServer(registry: Registry, listen: Listen, log: Logger): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('bgproxy: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('bgproxy: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: Error) => {
        log.error({ event: 'metrics-error', err: err.message }, `metrics: ${err.message}`);
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('bgproxy: metrics failed; see the log\n');
      },
    );
  });
  // A scraper keeps its connection; an idle one must not hold serve's stop.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
