#!/usr/bin/env node
// Reference forwarder for `npm run bench`: the floor of Node's own HTTP stack. A plain
// http.createServer that forwards every request to one upstream with http.request on a
// keep-alive agent and pipes both ways; no routing, no checks, no log. Not part of bgproxy.
//   node bench/ref-http.js LISTEN_PORT UPSTREAM_PORT
import http from 'node:http';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
const server = http.createServer((req, res) => {
  const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (ures) => {
    res.writeHead(ures.statusCode ?? 502, ures.headers);
    ures.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 65_000;
server.listen(listenPort, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
