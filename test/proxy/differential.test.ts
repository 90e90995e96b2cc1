// Differential framing suite: every payload of fixtures/framing-corpus.json goes through
// bgproxy to an app that parses with gunicorn's parser (not llhttp), through a tee that keeps
// the exact bytes bgproxy forwarded. For each payload the requests the app parsed must be the
// ones llhttp reads in the forwarded bytes, each rewritten by bgproxy, each answered to the
// client, each with the headers the client wrote (less hop-by-hop ones and those bgproxy
// rewrites: the 'headers' class); and the client gets the statuses the corpus expects. The same corpus through a
// naive forwarder must be flagged: that proves the checks can fail.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { type Payload, runCorpus, startNaiveForwarder, startRecorder, startTee } from '../helpers/differential.js';
import { startProxy } from '../helpers/proxy.js';

const corpus = JSON.parse(readFileSync(new URL('./fixtures/framing-corpus.json', import.meta.url), 'utf8')) as Payload[];

/** llhttp 9.3 (Node 20) refuses what 9.4 takes (optional whitespace around Content-Length). */
function llhttpAtLeast(v: string): boolean {
  const [a = 0, b = 0] = (process.versions.llhttp ?? '0.0').split('.').map(Number);
  const [x = 0, y = 0] = v.split('.').map(Number);
  return a > x || (a === x && b >= y);
}

// Ids are as long as the "{id}" they replace, so the corpus's lengths stay right.
const payloads = corpus.filter((p) => p.minLlhttp === undefined || llhttpAtLeast(p.minLlhttp)).map((p, i) => ({ ...p, id: `p${String(i).padStart(3, '0')}` }));

t.test('the corpus is large enough and names every class', async (t) => {
  t.ok(corpus.length >= 60, `${corpus.length} payloads`);
  const classes = new Set(corpus.map((p) => p.class));
  for (const c of ['cl-te', 'te-cl', 'te-te', 'content-length', 'chunks', 'obs-fold', 'line-endings', 'controls', 'upgrade', 'refusal', 'pipelining', 'headers']) t.ok(classes.has(c), c);
});

t.test('bgproxy: the app parsed exactly what bgproxy accepted, and every answer reached the client', async (t) => {
  const recorder = await startRecorder(t);
  const tee = await startTee(t, recorder.port);
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue: tee, green, settings: { unknownHost: 'reject', timeouts: { headersMs: 3000, requestMs: 3000 } } });
  const findings = await runCorpus(p.port, tee, recorder, payloads);
  const print = process.env.DIFF_PRINT === '1';
  for (const f of findings) {
    const payload = payloads.find((x) => x.id === f.id)!;
    if (print) console.error(JSON.stringify({ name: f.name, statuses: f.statuses, violations: f.violations }));
    t.same(f.violations, [], `${f.name}: no differential finding`);
    if (payload.expect !== null) t.same(f.statuses, payload.expect, `${f.name}: statuses ${payload.expect.join(', ')}`);
  }
  t.same(p.bg.target('blue').pool.uncleanReleases, {}, 'no upstream socket was offered back to the pool dirty');
});

t.test('a naive forwarder is flagged by the same checks', async (t) => {
  const recorder = await startRecorder(t);
  const tee = await startTee(t, recorder.port);
  const naive = await startNaiveForwarder(t, tee.port);
  const findings = await runCorpus(naive, tee, recorder, payloads);
  const flagged = findings.filter((f) => f.violations.length > 0);
  if (process.env.DIFF_PRINT === '1') for (const f of flagged) console.error(JSON.stringify({ name: f.name, violations: f.violations }));
  t.ok(flagged.length > 0, `${flagged.length} of ${findings.length} payloads flagged`);
  // Each for a different reason: raw pipelining, bytes after an upgrade, a refusal, a TE
  // the two parsers read differently (gunicorn takes "gzip, chunked"; llhttp parses it too),
  // and headers the app got other than bgproxy's rules make them (an underscore name gunicorn
  // merges into X-Forwarded-For, a spoofed X-Forwarded-Host).
  for (const name of [
    'three pipelined GETs',
    'upgrade answered 200, then GET',
    'two Hosts then GET',
    'TE obfuscation: gzip, chunked',
    'underscore X_Forwarded_For',
    'X-Forwarded-Host spoof',
  ]) {
    t.ok(
      flagged.some((f) => f.name === name),
      `flagged: ${name}`,
    );
  }
});
