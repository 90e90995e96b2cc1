import t from 'tap';
import { assignColors, renderSvg } from '../../src/verify/chart.js';
import type { LoadResult, Sample } from '../../src/verify/load.js';

/** Checks that tags nest and close; enough to catch a broken template without an XML parser. */
function wellFormed(svg: string): boolean {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, selfClose] = m;
    if (selfClose === '/') continue;
    if (close === '/') {
      if (stack.pop() !== name) return false;
    } else stack.push(name!);
  }
  return stack.length === 0 && !/[<>]/.test(svg.replace(/<[^>]*>/g, ''));
}

function sample(t: number, label: string | null, error: Sample['error'] = null): Sample {
  return { t, ms: 1 + (t % 7), status: error === null ? 200 : null, label, error, keepAlive: true, method: 'GET', client: 0 };
}

t.test('one rect per non-empty (bucket, label), failures on top, marks drawn', async (t) => {
  const samples: Sample[] = [];
  // 0-1000 ms: blue v1; 1000-2000 ms: green v2 & one straggler; a failure at 1550 ms.
  for (let ms = 0; ms < 1000; ms += 10) samples.push(sample(ms, 'blue v1'));
  for (let ms = 1000; ms < 2000; ms += 10) samples.push(sample(ms, 'green v2'));
  samples.push(sample(1005, 'blue v1'));
  samples.push(sample(1550, null, 'reset'));
  samples.push(sample(1560, null, 'connect'));
  const result: LoadResult = {
    url: 'http://127.0.0.1:1/',
    startedAt: 0,
    durationMs: 2000,
    loadMs: 2000,
    keepAliveClients: 1,
    oneShotClients: 2,
    samples,
    marks: [{ t: 1000, label: 'cutover' }],
    ws: null,
  };
  const svg = renderSvg(result, { title: 'A & B <test>' });
  t.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.ok(wellFormed(svg), 'tags balance');
  const bars = [...svg.matchAll(/<rect class="bar" data-label="([^"]*)" data-bucket="(\d+)"/g)];
  // 10 blue buckets + 10 green buckets + the straggler in bucket 10.
  t.equal(bars.length, 21);
  t.equal(new Set(bars.map((b) => `${b[1]}@${b[2]}`)).size, 21, 'no duplicate (bucket, label)');
  t.equal(bars.filter((b) => b[1] === 'blue v1').length, 11);
  const fails = [...svg.matchAll(/<rect class="fail" data-bucket="(\d+)"/g)];
  t.same(
    fails.map((f) => f[1]),
    ['15'],
  );
  t.match(svg, /<g class="mark"><line[^>]*stroke-dasharray/);
  t.match(svg, />cutover 1s</);
  t.match(svg, /A &#38; B &#60;test&#62;/, 'text is escaped');
  t.match(svg, /<polyline class="p99"/);
  t.match(svg, />blue v1 \(101\)<\/text>/, 'legend with counts');
  t.match(svg, />failed \(2\)<\/text>/);
});

t.test('an empty run still renders a valid chart', async (t) => {
  const svg = renderSvg({
    url: 'x',
    startedAt: 0,
    durationMs: 0,
    loadMs: 0,
    keepAliveClients: 1,
    oneShotClients: 2,
    samples: [],
    marks: [],
    ws: null,
  });
  t.ok(wellFormed(svg));
  t.notMatch(svg, /class="bar"/);
  t.notMatch(svg, /NaN|Infinity/);
});

t.test('colors: blue-ish for blue*, green-ish for green*, distinct otherwise', async (t) => {
  const c = assignColors(['blue v1', 'green v2', 'blue v3', 'hello', 'world']);
  t.match(c.get('blue v1'), /^#/);
  t.not(c.get('blue v1'), c.get('blue v3'));
  t.not(c.get('hello'), c.get('world'));
  t.equal(new Set(c.values()).size, 5);
});
