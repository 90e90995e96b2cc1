// The control socket under hostile input: permissions, stale socket files, a second
// server, invalid JSON, oversized and unknown commands. Errors are coded; nothing changes.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { controlRequest } from '../../src/control/client.js';
import { MAX_REQUEST_BYTES } from '../../src/control/protocol.js';
import { ControlServer } from '../../src/control/server.js';
import { silentLogger } from '../../src/log.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { startProxy } from '../helpers/proxy.js';
import { stillServes } from '../helpers/raw.js';
import { tempDir } from '../helpers/root.js';

/** Sends raw bytes on the control socket; resolves with the answer lines. */
function rawControl(file: string, bytes: string | Buffer): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve) => {
    const s = net.connect(file, () => s.end(bytes));
    let buf = '';
    s.on('data', (d) => (buf += d.toString()));
    s.on('error', () => {});
    s.on('close', () =>
      resolve(
        buf
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      ),
    );
  });
}

async function setup(t: Test) {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  return { p, file: path.join(p.root, 'run', 'bgproxy.sock') };
}

t.test('socket mode 0600 in a 0700 directory', async (t) => {
  const { file } = await setup(t);
  t.equal(statSync(file).mode & 0o777, 0o600, 'socket 0600');
  t.equal(statSync(path.dirname(file)).mode & 0o777, 0o700, 'run/ 0700');
});

t.test('invalid JSON, oversized, unknown commands: coded errors, nothing changes', async (t) => {
  const { p, file } = await setup(t);
  const before = p.bg.roles.live;
  const cases: Array<[string, string | Buffer]> = [
    ['invalid JSON', '{"cmd": cutover}\n'],
    ['not an object', '"cutover"\n'],
    ['no cmd', '{"args":{}}\n'],
    ['args not an object', '{"cmd":"cutover","args":[1]}\n'],
    ['unknown command', '{"cmd":"rm -rf /"}\n'],
    ['prototype key', '{"cmd":"__proto__"}\n'],
    ['constructor key', '{"cmd":"constructor"}\n'],
    ['oversized', `{"cmd":"cutover","pad":"${'x'.repeat(MAX_REQUEST_BYTES + 10)}"}\n`],
    ['oversized without a newline', 'x'.repeat(MAX_REQUEST_BYTES * 2)],
    ['binary', Buffer.from([0xff, 0xfe, 0, 1, 10])],
  ];
  for (const [name, bytes] of cases) {
    const lines = await rawControl(file, bytes);
    const last = lines.at(-1) as { ok?: boolean; error?: { code?: string; message?: string } } | undefined;
    t.equal(last?.ok, false, `${name}: refused`);
    t.equal(last?.error?.code, 'BG_CONTROL', `${name}: coded BG_CONTROL`);
  }
  t.equal(p.bg.roles.live, before, 'roles unchanged');
  await t.rejects(controlRequest(p.root, 'no-such-command'), { code: 'BG_CONTROL' });
  t.same(await controlRequest(p.root, 'ping'), { pid: process.pid }, 'the control socket still answers');
  await stillServes(t, p.port);
});

t.test('a connection that sends nothing and one that half-closes do not wedge the server', async (t) => {
  const { p, file } = await setup(t);
  const idle = net.connect(file);
  idle.on('error', () => {});
  t.teardown(() => idle.destroy());
  t.same(await rawControl(file, ''), [], 'an empty request gets a close, no answer');
  t.same(await controlRequest(p.root, 'ping'), { pid: process.pid });
});

t.test('a stale socket file from a killed server is replaced', async (t) => {
  const root = tempDir(t);
  mkdirSync(path.join(root, 'run'), { recursive: true, mode: 0o700 });
  const file = path.join(root, 'run', 'bgproxy.sock');
  // What a SIGKILLed server leaves behind: a socket file nobody listens on.
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
  t.ok(statSync(file).isSocket(), 'a stale socket file exists');
  const server = new ControlServer(root, { ping: async () => 'pong' }, silentLogger());
  await server.listen();
  t.teardown(() => server.close());
  t.equal(await controlRequest(root, 'ping'), 'pong');
  t.equal(statSync(file).mode & 0o777, 0o600);
});

t.test('a second server on the same root refuses to start; a regular file is not removed', async (t) => {
  const root = tempDir(t);
  mkdirSync(path.join(root, 'run'), { recursive: true, mode: 0o700 });
  const first = new ControlServer(root, { ping: async () => 1 }, silentLogger());
  await first.listen();
  t.teardown(() => first.close());
  const second = new ControlServer(root, { ping: async () => 2 }, silentLogger());
  await t.rejects(second.listen(), { code: 'BG_ALREADY_RUNNING' });
  t.equal(await controlRequest(root, 'ping'), 1, 'the first one still answers');

  const other = tempDir(t);
  mkdirSync(path.join(other, 'run'), { recursive: true, mode: 0o700 });
  writeFileSync(path.join(other, 'run', 'bgproxy.sock'), 'not a socket');
  const third = new ControlServer(other, {}, silentLogger());
  await t.rejects(third.listen(), { code: 'BG_LAYOUT' });
  t.ok(statSync(path.join(other, 'run', 'bgproxy.sock')).isFile(), 'the file was left alone');
});
