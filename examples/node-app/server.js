// The classic recipe's demo app, in Node: answers every request with its color and version.
// bgproxy runs it with PORT and BG_COLOR set; bgproxy.json maps BLUEGREEN to $BG_COLOR.
import { readFileSync } from 'node:fs';
import http from 'node:http';

// Bump VERSION in a commit, `bgproxy deploy`, and watch the answer change at cutover.
const VERSION = readFileSync(new URL('./VERSION', import.meta.url), 'utf8').trim();
const port = Number(process.env.PORT ?? 8888);
const color = process.env.BLUEGREEN ?? 'unknown';

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`Hello 0-downtime ${color} World! (version ${VERSION})\n`);
});

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port} as ${color}, version ${VERSION}`));

// bgproxy stops an app with SIGTERM (app.stopSignal) after draining it; finish what is in
// flight and exit, before app.stopTimeoutMs ends in SIGKILL.
process.on('SIGTERM', () => {
  console.log('SIGTERM: closing');
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
