// A real Prometheus (the Debian package's server) scrapes bgproxy's metrics listener and
// answers queries about it over its HTTP API.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/root.js';

interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(port: number, q: string): Promise<QueryResult[]> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; data?: { result: QueryResult[] }; error?: string };
  if (body.status !== 'success') throw new Error(`query ${q}: ${body.error}`);
  return body.data!.result;
}

/** Asks `q` until `ok` holds of the answer (Prometheus scrapes every second), or 60 s pass. */
async function until(port: number, q: string, ok: (r: QueryResult[]) => boolean): Promise<QueryResult[]> {
  let last: QueryResult[] = [];
  let error: unknown = null;
  for (const end = Date.now() + 60_000; Date.now() < end; ) {
    try {
      last = await query(port, q);
      error = null;
      if (ok(last)) return last;
    } catch (err) {
      error = err; // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no answer to ${q} within 60 s: ${error ? String(error) : JSON.stringify(last)}`);
}

t.test('Prometheus scrapes bgproxy and answers a query about it', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const proxy = await startProxy(t, { blue, green, settings: { metrics: { listen: '127.0.0.1:0' } } });
  const sent = 5;
  for (let i = 0; i < sent; i++) t.equal((await request(proxy.port, 'live.test')).status, 200);

  const dir = tempDir(t, 'bg-prom-');
  const config = path.join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: bgproxy',
      '    static_configs:',
      `      - targets: ['${proxy.metricsListen}']`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const prom: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  prom.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  t.teardown(async () => {
    if (prom.exitCode !== null || prom.signalCode !== null) return;
    const gone = new Promise((r) => prom.once('exit', r));
    prom.kill('SIGTERM');
    const timer = setTimeout(() => prom.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  });
  prom.once('exit', (code) => {
    if (code !== 0 && code !== null) t.comment(`prometheus exited ${code}: ${stderr}`);
  });

  const up = await until(port, 'up{job="bgproxy"}', (r) => r[0]?.value[1] === '1');
  t.equal(up[0]!.value[1], '1', 'the scrape target is up');
  const counted = await until(port, 'sum(bgproxy_requests_total{role="live",color="blue",code="200"})', (r) => r[0]?.value[1] === String(sent));
  t.equal(counted[0]!.value[1], String(sent), 'Prometheus holds exactly the requests sent');
  const live = await until(port, 'bgproxy_live == 1', (r) => r.length === 1);
  t.equal(live[0]!.metric.color, 'blue', 'and which color is live');
});
