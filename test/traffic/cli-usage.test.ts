// The traffic commands' refusals as a user meets them: bad arguments exit 2 with one line
// before any server is asked; nginx mode refuses pause, resume, maintenance and a canary.
// (The commands at work: cli.test.ts; passwd: cli-passwd.test.ts.)
import { execa } from 'execa';
import t from 'tap';
import { BIN, cli, oneLine } from '../helpers/cli.js';
import { makeRoot } from '../helpers/root.js';

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

t.test('nginx mode: pause, resume, maintenance and a canary refuse in one line, exit 2', async (t) => {
  const root = makeRoot(t, { mode: 'nginx', listen: '127.0.0.1:8080', hosts: { live: ['shop.test'], next: [] } });
  for (const args of [['pause'], ['resume'], ['maintenance', 'on'], ['maintenance', 'off']]) {
    oneLine(t, await cli([...args, '--root', root]), 2, new RegExp(`^bgproxy: ${args[0]} needs proxy mode: in nginx mode nginx answers the requests`));
  }
  oneLine(t, await cli(['cutover', '--canary', '10%', '--root', root]), 2, /^bgproxy: a canary needs proxy mode/);
});
