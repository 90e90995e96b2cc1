// cutover --gate --json, as a fleet drives it over ssh: progress and "ready" as JSON lines,
// then the switch only on "go" from stdin; anything else, or the end of stdin, aborts
// with nothing switched and the root's lock free again.
import { execa } from 'execa';
import t from 'tap';
import { BIN, cli, initWithBackends, serve } from '../helpers/cli.js';
import { get } from '../helpers/http.js';

/** Runs `cutover --gate --json`, answers `answer` (null: closes stdin) once ready; returns the parsed lines. */
async function gated(root: string, answer: string | null): Promise<{ code: number | undefined; lines: Array<Record<string, unknown>>; readyBeforeSwitch: boolean }> {
  const child = execa('node', [BIN, 'cutover', '--gate', '--json', '--root', root], { reject: false, env: { NODE_OPTIONS: '' } });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  let readyBeforeSwitch = false;
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      lines.push(line);
      if (line.event === 'ready') {
        // Still the old live color: ready means checked, not switched.
        void get(portOf(root), 'shop.test').then((body) => {
          readyBeforeSwitch = body === (line.color === 'green' ? 'blue' : 'green');
          if (answer === null) child.stdin?.end();
          else child.stdin?.write(`${answer}\n`);
        });
      }
    }
  });
  const r = await child;
  return { code: r.exitCode, lines, readyBeforeSwitch };
}

const ports = new Map<string, number>();
const portOf = (root: string): number => ports.get(root)!;

t.test('cutover --gate switches on "go" only', async (t) => {
  const { root } = await initWithBackends(t, '127.0.0.1:0');
  const s = await serve(t, root);
  ports.set(root, s.port);

  const aborted = await gated(root, 'abort');
  t.equal(aborted.code, 1);
  t.ok(aborted.readyBeforeSwitch, 'blue was still live when ready was said');
  t.match(aborted.lines.at(-1), { ok: false, error: { code: 'BG_FLEET', message: /not opened.*nothing switched/ } });
  t.equal(await get(s.port, 'shop.test'), 'blue', 'nothing switched');

  const hungUp = await gated(root, null);
  t.equal(hungUp.code, 1);
  t.match(hungUp.lines.at(-1), { ok: false, error: { code: 'BG_FLEET' } });
  t.equal(await get(s.port, 'shop.test'), 'blue', 'a closed stdin switches nothing');

  const before = Date.now();
  const went = await gated(root, 'go');
  t.equal(went.code, 0);
  t.match(went.lines.find((l) => l.event === 'ready'), { event: 'ready', color: 'green' });
  const result = went.lines.at(-1) as { ok: boolean; result: { live: string; was: string; switchedAt: number } };
  t.match(result, { ok: true, result: { live: 'green', was: 'blue' } });
  t.ok(result.result.switchedAt >= before && result.result.switchedAt <= Date.now(), 'switchedAt is when it switched');
  t.equal(await get(s.port, 'shop.test'), 'green');

  // The lock was released each time: a plain rollback runs.
  const back = await cli(['rollback', '--json', '--root', root]);
  t.equal(back.code, 0, back.stderr);
  t.match(JSON.parse(back.stdout), { ok: true, result: { live: 'blue' } });
});
