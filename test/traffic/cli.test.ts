// The traffic commands as a user runs them: pause, resume, maintenance, cutover --canary,
// passwd, status; bad arguments exit 2 with one line; nginx mode refuses in one line.
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { readHistory } from '../../src/deploy/history.js';
import { parseHash, verifyPassword } from '../../src/traffic/passwd.js';
import { BIN, cli, initWithBackends, serve } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { makeRoot } from '../helpers/root.js';

function oneLine(t: Test, r: { code: number; stdout: string; stderr: string }, code: number, pattern: RegExp): void {
  t.equal(r.code, code, `exit ${code}: ${r.stderr.trim()}`);
  t.equal(r.stdout, '', 'nothing on stdout');
  t.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line');
  t.match(r.stderr, pattern);
}

t.test('bad arguments exit 2 with one line, before any server is asked', async (t) => {
  const root = makeRoot(t);
  const cases: Array<[string[], RegExp]> = [
    [['pause', '--timeout', 'abc'], /--timeout: expected a duration/],
    [['pause', '--timeout', '0'], /--timeout: must be above 0/],
    [['pause', '--bogus'], /unknown option '--bogus'/],
    [['resume', 'now'], /too many arguments/],
    [['maintenance'], /missing required argument/],
    [['maintenance', 'maybe'], /maintenance: expected on or off, got "maybe"/],
    [['maintenance', 'on', '--retry-after', 'soon'], /--retry-after: expected/],
    [['maintenance', 'on', '--retry-after', '1.5s'], /--retry-after: expected whole seconds/],
    [['cutover', '--canary', '0%'], /--canary: expected a share above 0%/],
    [['cutover', '--canary', '150%'], /--canary: expected a share above 0%/],
    [['cutover', '--canary', 'ten'], /--canary: expected a share/],
  ];
  for (const [args, pattern] of cases) oneLine(t, await cli([...args, '--root', root]), 2, pattern);
  oneLine(t, await cli(['passwd', 'a:b']), 2, /passwd: a user name is not empty and has no ":"/);
  const empty = await execa('node', [BIN, 'passwd', 'team'], { input: '\n', reject: false });
  oneLine(t, { code: empty.exitCode ?? -1, stdout: String(empty.stdout), stderr: String(empty.stderr) }, 2, /passwd: empty password/);
});

t.test('passwd prints a basicAuth object whose hash checks the password', async (t) => {
  const r = await execa('node', [BIN, 'passwd', 'team'], { input: 'correct horse\n', reject: false });
  t.equal(r.exitCode, 0);
  const o = JSON.parse(String(r.stdout)) as { user: string; hash: string };
  t.equal(o.user, 'team');
  t.notMatch(String(r.stdout), /correct horse/);
  t.equal(await verifyPassword('correct horse', parseHash(o.hash)!), true);
  const bare = await execa('node', [BIN, 'passwd'], { input: 'x\n', reject: false });
  t.match(String(bare.stdout), /^\$scrypt\$ln=14,r=8,p=1\$\S+$/, 'without a user: the hash alone');
});

t.test('maintenance, pause/resume and a canary through the CLI, shown by status', async (t) => {
  const { root } = await initWithBackends(t, '127.0.0.1:0');
  const s = await serve(t, root);

  const on = await cli(['maintenance', 'on', '--retry-after', '60', '--root', root]);
  t.equal(on.code, 0, on.stderr);
  t.match(on.stdout, /^maintenance on: live hosts answer 503 \(Retry-After: 60\) with the built-in page/);
  const down = await request(s.port, 'shop.test');
  t.equal(down.status, 503);
  t.equal(down.headers['retry-after'], '60');
  const st = await cli(['status', '--root', root]);
  t.match(st.stdout, /^maintenance: ON since \S+ \(503, Retry-After 60, built-in page\)/m);
  const json = JSON.parse((await cli(['status', '--json', '--root', root])).stdout) as { traffic: Record<string, unknown> };
  t.match(json.traffic, { maintenance: { retryAfterS: 60 }, pause: null, canary: null, access: { live: null, next: null } });
  t.equal((await cli(['maintenance', 'off', '--root', root])).code, 0);
  t.equal((await request(s.port, 'shop.test')).status, 200);

  const paused = await cli(['pause', '--timeout', '5s', '--root', root]);
  t.equal(paused.code, 0, paused.stderr);
  t.match(paused.stdout, /^paused: live requests wait \(up to 5s each\); none in flight/);
  const waiting = request(s.port, 'shop.test');
  const ps = await cli(['status', '--root', root]);
  t.match(ps.stdout, /^paused since \S+: \d+ requests? waiting \(up to 5s each\)/m);
  const resumed = await cli(['resume', '--root', root]);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stdout, /^resumed after \d+ ms: 1 waiting request goes on$/);
  t.equal((await waiting).status, 200, 'the held request went on');
  const again = await cli(['resume', '--root', root]);
  t.equal(again.code, 0, 'resume when not paused is done, as a second maintenance off is (issue 23)');
  t.equal(again.stdout, 'not paused: nothing to resume');

  const canary = await cli(['cutover', '--canary', '10%', '--root', root]);
  t.equal(canary.code, 0, canary.stderr);
  t.match(canary.stdout, /^canary: 10% of live traffic to green, sticky per client; bgproxy cutover completes it/);
  t.match((await cli(['status', '--root', root])).stdout, /^canary: 10% of live traffic to green since \S+ \(blue \d+ requests, 0% 5xx; green \d+ requests, 0% 5xx\)/m);
  const back = await cli(['rollback', '--root', root]);
  t.equal(back.code, 0, back.stderr);
  t.match(back.stdout, /^canary ended: all live traffic on blue/);
  t.match((await cli(['status', '--root', root])).stdout, /^last canary: 10% to green, ended by rollback/m);

  const actions = (await readHistory(root)).map((e) => e.action);
  t.same(actions, ['maintenance-on', 'maintenance-off', 'pause', 'resume', 'canary', 'rollback']);
  const hist = await cli(['history', '--root', root]);
  t.match(hist.stdout, /canary of 10% to green ended/);
});

t.test('nginx mode: pause, resume, maintenance and a canary refuse in one line, exit 2', async (t) => {
  const root = makeRoot(t, { mode: 'nginx', listen: '127.0.0.1:8080', hosts: { live: ['shop.test'], next: [] } });
  for (const args of [['pause'], ['resume'], ['maintenance', 'on'], ['maintenance', 'off']]) {
    oneLine(t, await cli([...args, '--root', root]), 2, new RegExp(`^bgproxy: ${args[0]} needs proxy mode: in nginx mode nginx answers the requests`));
  }
  oneLine(t, await cli(['cutover', '--canary', '10%', '--root', root]), 2, /^bgproxy: a canary needs proxy mode/);
});
