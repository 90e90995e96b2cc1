// A newcomer's mistakes, each answered in one line that names the problem and the fix
// (issue 23): a wrong root, invalid JSON, a misspelt key, a quoted number, --root before the command.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parseEnvFlags } from '../../src/cli/init.js';
import { loadConfig, parseConfig } from '../../src/config.js';
import { parseJsonFile } from '../../src/config-json.js';
import { didYouMean } from '../../src/config-readers.js';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/root.js';

const oneLine = (s: string): number => s.split('\n').filter(Boolean).length;

t.test('a missing root names itself and the init command, exit 2, for every root command', async (t) => {
  const dir = tempDir(t);
  const nope = path.join(dir, 'nope');
  for (const args of [['status', '--root', nope], ['--root', nope, 'status'], ['history', '--root', nope], ['logs', 'blue', '--root', nope]]) {
    const r = await cli(args);
    t.equal(r.code, 2, args.join(' '));
    t.equal(r.stderr, `bgproxy: no bgproxy root at ${nope}: the directory does not exist (create one with: bgproxy init --root ${nope})`, args.join(' '));
    t.equal(r.stdout, '');
  }
  const empty = path.join(dir, 'empty');
  mkdirSync(empty);
  const r = await cli(['history', '--root', empty]);
  t.equal(r.code, 2);
  t.match(r.stderr, `${empty} is not a bgproxy root: it has no bgproxy.json (create one with: bgproxy init --root ${empty})`);
});

t.test('--root works before the command; init on a file refuses in one line', async (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'root');
  t.equal((await cli(['--root', root, 'init'])).code, 0, 'init with the global --root');
  const r = await cli(['--root', root, 'history']);
  t.equal(r.code, 0);
  t.equal(r.stdout, "no history yet");
  const file = path.join(dir, 'file');
  writeFileSync(file, 'x');
  const bad = await cli(['init', '--root', file]);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, `bgproxy: --root ${file} is a file, not a directory: pick a directory (it is created if missing)`);
});

t.test('init where no directory can be made answers in one line instead of hanging (Node 20 looped under /proc)', async (t) => {
  const proc = await cli(['init', '--root', '/proc/bgproxy-nope/x']);
  t.equal(proc.code, 2);
  t.equal(proc.stderr, 'bgproxy: cannot create /proc/bgproxy-nope/x: the file system at /proc does not take new directories (ENOENT; /proc and /sys never do); pick another place for the root');
  const dir = tempDir(t);
  const file = path.join(dir, 'file');
  writeFileSync(file, 'x');
  const under = await cli(['init', '--root', path.join(file, 'root')]);
  t.equal(under.code, 2);
  t.equal(under.stderr, `bgproxy: cannot create ${path.join(file, 'root')}: ${file} is a file, not a directory`);
  const deep = path.join(dir, 'a', 'b', 'root');
  const ok = await cli(['init', '--root', deep, '--env', 'BLUEGREEN=$BG_COLOR', '--env', 'OPTS=a=b']);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, `${deep}: created ., blue, blue/env`, 'missing parents are made; the listing starts at the root');
  t.same(loadConfig(deep).app.env, { BLUEGREEN: '$BG_COLOR', OPTS: 'a=b' }, 'init --env sets app.env (the Flask quickstart sets BLUEGREEN)');
  t.throws(() => parseEnvFlags(['BLUEGREEN']), { code: 'BG_USAGE', message: /^--env: expected KEY=VALUE .*got "BLUEGREEN"$/ });
  t.throws(() => parseEnvFlags(['1X=y']), { code: 'BG_USAGE' });
});

t.test('invalid JSON: line, column, the likely cause and the line quoted', async (t) => {
  t.throws(() => parseJsonFile('{\n  "listen": 8080,\n  "holdMs": 10,\n}\n', 'b.json'), {
    code: 'BG_CONFIG',
    message: 'config: b.json is not valid JSON: line 4 column 1: Expected double-quoted property name (a trailing comma before it?); line 3: "holdMs": 10,',
  });
  t.throws(() => parseJsonFile('{\n  "listen": 8080\n  "holdMs": 10\n}', 'b.json'), { message: /line 3 column 3: .*\(a comma missing at the end of the line before\?\); line 3: "holdMs": 10$/ });
  t.throws(() => parseJsonFile('{\n  "listen": 8080,\n', 'b.json'), { message: /the file ends early/ });
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'bgproxy.json'), '{\n  listen: 8080\n}\n');
  t.throws(() => loadConfig(dir), { message: /bgproxy\.json is not valid JSON: line 2 column 3: .*\(keys need double quotes\); line 2: listen: 8080$/ });
  const r = await cli(['serve', '--root', dir]);
  t.equal(r.code, 2);
  t.equal(oneLine(r.stderr), 1, 'one line');
  t.match(r.stderr, /line 2 column 3/);
});

t.test('a misspelt key gets a suggestion and the valid keys; a quoted number is refused saying so', async (t) => {
  t.equal(didYouMean('strat', ['start', 'stop']), 'start');
  t.equal(didYouMean('colour', ['colors', 'listen']), 'colors');
  t.equal(didYouMean('x', ['dir', 'env']), null);
  t.throws(() => parseConfig({ app: { strat: 'node a.js' } }, '/r'), { message: /^config: app\.strat: unknown key \(did you mean "start"\?\); valid keys: repo, dir, install/ });
  t.throws(() => parseConfig({ hodlMs: 1 }, '/r'), { message: /^config: hodlMs: unknown key \(did you mean "holdMs"\?\)/ });
  t.throws(() => parseConfig({ colors: { blue: { port: '8888' } } }, '/r'), {
    message: 'config: colors.blue.port: must be an integer, got "8888" (write 8888 without quotes)',
  });
  t.throws(() => parseConfig({ holdMs: '5000' }, '/r'), { message: 'config: holdMs: must be an integer, got "5000" (write 5000 without quotes)' });
  t.equal(parseConfig({ listen: '127.0.0.1:8080' }, '/r').listen.port, 8080, 'a port inside "HOST:PORT" is still text');
});
