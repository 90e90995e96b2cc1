// `bgproxy passwd` as a user runs it: a basicAuth object whose hash checks the password.
import { execa } from 'execa';
import t from 'tap';
import { parseHash, verifyPassword } from '../../src/traffic/passwd.js';
import { BIN } from '../helpers/cli.js';

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
