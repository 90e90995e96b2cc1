#!/usr/bin/env node
// Reference forwarder for `npm run bench`: the fastest off-the-shelf Node combination
// measured (../shared/PERF.md): http.createServer in front, undici's Pool.dispatch behind,
// with a handler that writes the upstream's head and chunks straight into the response.
// No routing, no checks, no log. Not part of bgproxy.
//   node bench/ref-undici.js LISTEN_PORT UPSTREAM_PORT
import http from 'node:http';
import { Pool } from 'undici';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 256, pipelining: 1 });
const server = http.createServer((req, res) => {
  pool.dispatch(
    { method: req.method, path: req.url, headers: req.rawHeaders.filter((_, i, a) => i % 2 === 0 ? a[i].toLowerCase() !== 'connection' : a[i - 1].toLowerCase() !== 'connection'), body: req.method === 'GET' || req.method === 'HEAD' ? null : req },
    {
      onConnect() {},
      onHeaders(status, rawHeaders) {
        const h = [];
        for (let i = 0; i < rawHeaders.length; i += 2) {
          const k = rawHeaders[i].toString();
          const lk = k.toLowerCase();
          if (lk !== 'connection' && lk !== 'keep-alive' && lk !== 'transfer-encoding') h.push(k, rawHeaders[i + 1].toString());
        }
        res.writeHead(status, h);
        return true;
      },
      onData(chunk) {
        return res.write(chunk);
      },
      onComplete() {
        res.end();
      },
      onError() {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      },
    },
  );
});
server.keepAliveTimeout = 65_000;
server.listen(listenPort, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
