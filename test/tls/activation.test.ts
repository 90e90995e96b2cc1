// systemd socket activation with two sockets told apart by FileDescriptorName= (http,
// https): serve takes both, and a restart of serve refuses no HTTPS connection.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { activatedListenFds } from '../../src/serve.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { BIN } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { makeRoot } from '../helpers/root.js';
import { httpsRequest, issueCert, makeCa } from '../helpers/tls.js';

const HOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/socket-holder.py');

t.test('activatedListenFds: one unnamed socket is http; two must be named http and https', async (t) => {
  const env = (vars: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: '/bin', ...vars });
  t.same(activatedListenFds(env({ LISTEN_FDS: '1', LISTEN_PID: '7', LISTEN_FDNAMES: 'bgproxy-shop.socket' }), 7), { http: 3, https: null });
  t.same(activatedListenFds(env({ LISTEN_FDS: '1', LISTEN_PID: '7', LISTEN_FDNAMES: 'https' }), 7), { http: null, https: 3 });
  const two = env({ LISTEN_FDS: '2', LISTEN_PID: '7', LISTEN_FDNAMES: 'https:http' });
  t.same(activatedListenFds(two, 7), { http: 4, https: 3 }, 'by name, in either order');
  t.same(two, { PATH: '/bin' }, 'LISTEN_* removed');
  t.throws(() => activatedListenFds(env({ LISTEN_FDS: '2', LISTEN_PID: '7', LISTEN_FDNAMES: 'shop.socket:shop.socket' }), 7), {
    code: 'BG_USAGE',
    message: /FileDescriptorName=http and FileDescriptorName=https/,
  });
  t.throws(() => activatedListenFds(env({ LISTEN_FDS: '3', LISTEN_PID: '7', LISTEN_FDNAMES: 'http:https:x' }), 7), { code: 'BG_USAGE' });
  t.equal(activatedListenFds(env({ LISTEN_FDS: '2', LISTEN_PID: '1' }), 7), null, 'meant for another process');
});

t.test('serve on two activated sockets; a restart refuses no HTTPS request', async (t) => {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'shop', ['shop.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const root = makeRoot(t, {
    hosts: { live: ['shop.test'], next: [] },
    colors: { blue: { port: blue.port }, green: { port: green.port } },
    holdMs: 5000,
    drainTimeoutMs: 5000,
    tls: { listen: '127.0.0.1:1', certificates: [cert] },
  });
  const holder = spawn('python3', [HOLDER, process.execPath, BIN, 'serve', '--root', root, '--no-access-log'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '', HOLDER_TLS: '1' },
  });
  const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  t.teardown(async () => {
    if (holder.exitCode !== null) return;
    holder.stdin.end('stop\n');
    const timer = setTimeout(() => holder.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  });
  const lines: string[] = [];
  let buf = '';
  holder.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  const line = async (re: RegExp, count = 1): Promise<RegExpMatchArray> => {
    const until = Date.now() + 30_000;
    for (;;) {
      const hits = lines.map((l) => re.exec(l)).filter((m): m is RegExpExecArray => m !== null);
      if (hits.length >= count) return hits[count - 1]!;
      if (Date.now() > until) throw new Error(`no line ${re} (#${count}); last: ${lines.slice(-5).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const port = Number((await line(/^port (\d+)$/))[1]);
  const tlsPort = Number((await line(/^tlsport (\d+)$/))[1]);
  const listening = JSON.parse((await line(/^\{.*"event":"listening".*$/))[0]) as { listen: string; tlsListen: string; activated?: boolean };
  t.equal(listening.listen, `127.0.0.1:${port}`);
  t.equal(listening.tlsListen, `127.0.0.1:${tlsPort}`, 'the https socket, not tls.listen');
  t.equal((await httpsRequest({ port: tlsPort, host: 'shop.test', ca: ca.pem })).body, 'blue\n');
  t.equal((await request(port, 'shop.test')).status, 308, 'http redirects to https');

  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loop = (async () => {
    while (running) {
      await httpsRequest({ port: tlsPort, host: 'shop.test', ca: ca.pem }).then(
        (r) => (r.status === 200 ? ok++ : failed.push(String(r.status))),
        (e: NodeJS.ErrnoException) => failed.push(e.code ?? e.message),
      );
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  holder.stdin.write('restart\n');
  await line(/^exited (\d+)$/);
  await line(/"event":"listening"/, 2);
  const before = ok;
  while (ok < before + 20) await new Promise((r) => setTimeout(r, 20));
  running = false;
  await loop;
  t.same(failed, [], `no HTTPS request failed across the restart (${ok} answered)`);
});
