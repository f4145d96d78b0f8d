/**
 * The HTML report of a jepsen-lite run. No browser here, so the specs read
 * the document as text: what elements the SVG holds, with which classes,
 * where bars and bands sit relative to the plot frame, and that nothing in
 * it reaches outside the file.
 */
import { describe, expect, it } from 'vitest';
import type { ClientEvent, HistoryEvent, NemesisEvent, OperationF } from './history.js';
import { DOWNSAMPLE_ABOVE_OPS, type ReportInput, renderReport } from './report-html.js';

const MS = 1e6;
const SIZE_LIMIT = 15 * 1024 * 1024;

type Completion = 'ok' | 'fail' | 'info';

/** One op as an invoke and (unless `completion` is null) its completion. */
function op(
  process: number,
  f: OperationF,
  key: string | null,
  value: unknown,
  startMs: number,
  endMs: number,
  completion: Completion | null,
  extra: { result?: unknown; error?: string; node?: string } = {},
): ClientEvent[] {
  const node = extra.node ?? 'n1';
  const invoke: ClientEvent = { process, type: 'invoke', f, key, value, time: startMs * MS, node };
  if (completion === null) return [invoke];
  const done: ClientEvent = {
    process,
    type: completion,
    f,
    key,
    value: extra.result ?? value,
    time: endMs * MS,
    node,
    ...(extra.error === undefined ? {} : { error: extra.error }),
  };
  return [invoke, done];
}

function fault(id: number, kind: string, description: string, startMs: number, endMs: number | null): NemesisEvent[] {
  const value = { fault: id, kind, description };
  const start: NemesisEvent = { process: 'nemesis', type: 'info', f: `start-${kind}`, value, time: startMs * MS };
  return endMs === null ? [start] : [start, { process: 'nemesis', type: 'info', f: `stop-${kind}`, value, time: endMs * MS }];
}

const byTime = (events: HistoryEvent[]): HistoryEvent[] => [...events].sort((a, b) => a.time - b.time);

const report = (
  events: HistoryEvent[],
  checkers: ReportInput['checkers'] = [{ name: 'linearizable', valid: true, summary: 'ok' }],
  title = 'a run',
) => renderReport({ title, settings: { nodes: 3, seed: 7 }, events: byTime(events), checkers });

/** The first SVG chart of a class, so bars are not confused with scatter points. */
function chart(html: string, name: 'timeline' | 'latency'): string {
  const match = html.match(new RegExp(`<svg class="chart ${name}"[\\s\\S]*?</svg>`));
  if (match === null) throw new Error(`no ${name} chart`);
  return match[0];
}

interface Box {
  readonly cls: string;
  readonly x: number;
  readonly width: number;
  readonly title: string;
}

function rects(svg: string, classPrefix: string): Box[] {
  const found: Box[] = [];
  const re = new RegExp(`<rect class="(${classPrefix}[^"]*)" x="([\\d.]+)" y="[\\d.]+" width="([\\d.]+)"[^>]*>(?:<title>([^<]*)</title>)?`, 'g');
  for (const m of svg.matchAll(re)) {
    found.push({ cls: m[1] ?? '', x: Number(m[2]), width: Number(m[3]), title: m[4] ?? '' });
  }
  return found;
}

function frame(svg: string): { left: number; right: number } {
  const m = svg.match(/<rect class="frame" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/);
  if (m === null) throw new Error('no plot frame');
  return { left: Number(m[1]), right: Number(m[1]) + Number(m[2]) };
}

/** Where a time lands on the plot, given the run's end: the charts map [0, end] onto the frame. */
const xAt = (svg: string, ms: number, endMs: number): number => {
  const { left, right } = frame(svg);
  return left + (ms / endMs) * (right - left);
};

/** Opening and closing tags pair up: a stray `<` from an unescaped value would break this. */
function unbalancedTags(html: string): string[] {
  const VOID = new Set(['meta', 'br', 'hr', 'img', 'input', 'link']);
  const withoutStyle = html.replace(/<style>[\s\S]*?<\/style>/, '');
  const stack: string[] = [];
  const problems: string[] = [];
  for (const m of withoutStyle.matchAll(/<!DOCTYPE[^>]*>|<(\/?)([a-zA-Z][\w-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g)) {
    const name = m[2];
    if (name === undefined) continue;
    if (m[1] === '/') {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
    } else if (m[4] !== '/' && !VOID.has(name)) {
      stack.push(name);
    }
  }
  const text = withoutStyle.replace(/<!DOCTYPE[^>]*>|<\/?[a-zA-Z][\w-]*(?:[^>"']|"[^"]*"|'[^']*')*?\/?>/g, '');
  if (text.includes('<')) problems.push('a bare < in text');
  return [...problems, ...stack.map((name) => `<${name}> never closed`)];
}

describe('a small run: 3 processes, a partition and a kill, one checker failing', () => {
  const SCRIPT = '<script>alert("pwned")</script>';
  const events = [
    ...op(0, 'write', 'k1', 1, 0, 5, 'ok'),
    ...op(0, 'read', 'k1', null, 100, 104, 'ok', { result: 1 }),
    ...op(0, 'cas', 'k1', [7, 8], 700, 720, 'fail', { error: 'compare-failed' }),
    ...op(1, 'write', 'k2', SCRIPT, 50, 60, 'ok', { node: 'n3' }),
    ...op(1, 'read', 'k2', null, 900, 1900, 'info', { node: 'n3', error: 'deadline exceeded' }),
    // p1 timed out, so its worker comes back as p4, later.
    ...op(4, 'append', null, 17, 2300, 2400, 'ok'),
    ...fault(1, 'partition', 'n1 n2 | n3', 500, 1500),
    ...fault(2, 'kill', 'kill n2 (leader)', 2200, 2500),
  ];
  const html = report(
    events,
    [
      { name: 'linearizable', valid: false, summary: 'read of k2 saw a value never written', details: 'op 5 & op 7: "impossible" <read>' },
      { name: 'stats', valid: true, summary: 'all f had an ok' },
    ],
    'register <k1 & k2> "seed 7"',
  );
  const timeline = chart(html, 'timeline');

  it('is one complete HTML document whose tags all pair up', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect(unbalancedTags(html)).toEqual([]);
  });

  it('gives each client process a lane, the late p4 included', () => {
    const lanes = [...timeline.matchAll(/<text class="lane"[^>]*>(p\d+)<\/text>/g)].map((m) => m[1]);
    expect(lanes).toEqual(['p0', 'p1', 'p4']);
  });

  it('draws one bar per op, classed by how it ended, with a tooltip naming it', () => {
    const bars = rects(timeline, 'op ');
    expect(bars.map((b) => b.cls).sort()).toEqual(['op fail', 'op info', 'op ok', 'op ok', 'op ok', 'op ok']);
    const cas = bars.find((b) => b.cls === 'op fail');
    expect(cas?.title).toContain('p0 cas k1 [7,8]');
    expect(cas?.title).toContain('fail after 20.0 ms');
    expect(cas?.title).toContain('error: compare-failed');
    const read = bars.find((b) => b.cls === 'op info');
    expect(read?.title).toContain('p1 read k2');
    expect(read?.title).toContain('node n3');
    expect(read?.x).toBeCloseTo(xAt(timeline, 900, 2500), 0);
    expect((read?.x ?? 0) + (read?.width ?? 0)).toBeCloseTo(xAt(timeline, 1900, 2500), 0);
    expect(bars.find((b) => b.title.includes('p0 read k1'))?.title).toContain('returned 1');
  });

  it('shades the partition and the kill as bands over their windows, labelled with their descriptions', () => {
    for (const svg of [timeline, chart(html, 'latency')]) {
      const partition = svg.match(/<g class="fault partition"[\s\S]*?<\/g>/)?.[0] ?? '';
      const kill = svg.match(/<g class="fault kill"[\s\S]*?<\/g>/)?.[0] ?? '';
      expect(partition).toContain('>partition: n1 n2 | n3</text>');
      expect(kill).toContain('>kill: kill n2 (leader)</text>');
      const [band] = rects(partition, 'band');
      expect(band?.x).toBeCloseTo(xAt(svg, 500, 2500), 0);
      expect((band?.x ?? 0) + (band?.width ?? 0)).toBeCloseTo(xAt(svg, 1500, 2500), 0);
    }
    // Bands come first in the SVG, so everything else is drawn over them.
    expect(timeline.indexOf('class="fault ')).toBeLessThan(timeline.indexOf('class="op '));
  });

  it('says FAIL overall when one checker is false, and shows each verdict and its details', () => {
    expect(html).toMatch(/class="overall">Overall: <span class="verdict fail">FAIL</);
    const rows = [...html.matchAll(/<tr class="checker"><td>([^<]*)<\/td><td><span class="verdict (\w+)">/g)].map((m) => [m[1], m[2]]);
    expect(rows).toEqual([
      ['linearizable', 'fail'],
      ['stats', 'pass'],
    ]);
    expect(html).toContain('<details><summary>details</summary><pre>op 5 &amp; op 7: &quot;impossible&quot; &lt;read&gt;</pre></details>');
  });

  it('counts ops by f and outcome, and faults by kind', () => {
    const counts = html.match(/<table class="counts">[\s\S]*?<\/table>/)?.[0] ?? '';
    expect(counts).toContain('<tr><th>read</th><td>1</td><td>0</td><td>1</td><td>0</td><td>2</td></tr>');
    expect(counts).toContain('<tr class="total"><th>all</th><td>4</td><td>1</td><td>1</td><td>0</td><td>6</td></tr>');
    const faults = html.match(/<table class="faults">[\s\S]*?<\/table>/)?.[0] ?? '';
    expect(faults).toMatch(/partition<\/th><td>1<\/td><td>1\.0 s<\/td>/);
    expect(faults).toMatch(/kill<\/th><td>1<\/td><td>0\.3 s<\/td>/);
  });

  it('plots every completed op in the latency scatter', () => {
    const latency = chart(html, 'latency');
    expect(latency.match(/class="pt ok"/g)).toHaveLength(4);
    expect(latency.match(/class="pt fail"/g)).toHaveLength(1);
    expect(latency.match(/class="pt info"/g)).toHaveLength(1);
    expect(latency).toContain('>1 s</text>');
  });

  it('references nothing outside the file', () => {
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/\bsrc\s*=/i);
    expect(html).not.toMatch(/@import/);
    expect(html).not.toMatch(/<link\b/i);
    for (const m of html.matchAll(/\bhref\s*=\s*"([^"]*)"/g)) expect(m[1]?.startsWith('#')).toBe(true);
    for (const m of html.matchAll(/url\(([^)]*)\)/g)) expect(m[1]?.startsWith('#')).toBe(true);
  });

  it('escapes values, titles and summaries instead of letting them become markup', () => {
    expect(html).not.toContain('<script');
    expect(html).toContain('&quot;&lt;script&gt;alert(\\&quot;pwned\\&quot;)&lt;/script&gt;&quot;');
    expect(html).toContain('<title>register &lt;k1 &amp; k2&gt; &quot;seed 7&quot;</title>');
  });
});

describe('the overall verdict', () => {
  const events = op(0, 'read', 'k1', null, 0, 1, 'ok');
  const verdict = (valids: (boolean | 'unknown')[]) =>
    report(
      events,
      valids.map((valid, i) => ({ name: `c${i}`, valid, summary: '' })),
    ).match(/class="overall">Overall: <span class="verdict (\w+)"/)?.[1];

  it('is PASS only when every checker is valid', () => {
    expect(verdict([true, true])).toBe('pass');
    expect(verdict([true, 'unknown'])).toBe('unknown');
    expect(verdict(['unknown', false])).toBe('fail');
  });

  it('is not PASS when no checker ran', () => {
    expect(verdict([])).toBe('unknown');
  });
});

describe('an op that never completes', () => {
  const events = [
    ...op(0, 'write', 'k1', 1, 0, 10, 'ok'),
    ...op(1, 'write', 'k1', 2, 1000, 0, null),
    ...op(0, 'read', 'k1', null, 3000, 4000, 'ok', { result: 1 }),
    // Started and never stopped: the fault, too, lasts to the end.
    ...fault(1, 'pause', 'pause n1', 2000, null),
  ];
  const html = report(events);
  const timeline = chart(html, 'timeline');

  it('is drawn from its invocation to the end of the run, hatched, and says so', () => {
    const [bar] = rects(timeline, 'op pending');
    expect(bar).toBeDefined();
    expect(bar?.x).toBeCloseTo(xAt(timeline, 1000, 4000), 0);
    expect((bar?.x ?? 0) + (bar?.width ?? 0)).toBeCloseTo(frame(timeline).right, 0);
    expect(bar?.title).toContain('never completed');
    expect(html).toContain('url(#hatch-pending)');
    expect(timeline).toContain('<pattern id="hatch-pending"');
  });

  it('has no latency to plot, and the page says it left it out', () => {
    expect(chart(html, 'latency').match(/class="pt /g)).toHaveLength(2);
    expect(html).toContain('1 operation(s) never completed and have no latency to plot.');
  });

  it('an unstopped fault is shaded to the end of the run', () => {
    const [band] = rects(timeline.match(/<g class="fault pause"[\s\S]*?<\/g>/)?.[0] ?? '', 'band');
    expect(band?.x).toBeCloseTo(xAt(timeline, 2000, 4000), 0);
    expect((band?.x ?? 0) + (band?.width ?? 0)).toBeCloseTo(frame(timeline).right, 0);
  });
});

describe('fault windows', () => {
  it('run from the first event with a fault id to the second, whatever repeats that id later', () => {
    const events = [
      ...op(0, 'read', 'k1', null, 0, 3000, 'ok'),
      ...fault(1, 'slow', 'slow n1 (50 ms)', 1000, 2000),
      // A nemesis that retries its stop must not stretch the window.
      {
        process: 'nemesis',
        type: 'info',
        f: 'stop-slow',
        value: { fault: 1, kind: 'slow', description: 'slow n1 (50 ms)' },
        time: 2500 * MS,
      } satisfies NemesisEvent,
    ];
    const timeline = chart(report(events), 'timeline');
    const bands = rects(timeline, 'band');
    expect(bands).toHaveLength(1);
    expect((bands[0]?.x ?? 0) + (bands[0]?.width ?? 0)).toBeCloseTo(xAt(timeline, 2000, 3000), 0);
  });
});

/**
 * A long run, shaped like a real one: `workers` clients doing ~2 ms ops with
 * think time; ops on n3 time out during a partition (the worker comes back
 * with a new process number), ops on n2 fail fast while it is killed, and a
 * few cas lose their comparison throughout.
 */
function longRun(opCount: number, workers = 10): { events: HistoryEvent[]; outcomes: Record<Completion, number> } {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const outcomes: Record<Completion, number> = { ok: 0, fail: 0, info: 0 };
  const client: HistoryEvent[] = [];
  const processOf = Array.from({ length: workers }, (_, i) => i);
  const clock = Array.from({ length: workers }, () => random() * 5);
  const fs: OperationF[] = ['read', 'write', 'cas', 'append'];
  const partition = [200_000, 260_000];
  const kill = [400_000, 430_000];
  for (let i = 0; i < opCount; i++) {
    const worker = i % workers;
    const node = `n${(worker % 3) + 1}`;
    const start = clock[worker] ?? 0;
    const f = fs[Math.floor(random() * fs.length)] ?? 'read';
    let end = start + 1 + random() * 3;
    let outcome: Completion = f === 'cas' && random() < 0.3 ? 'fail' : 'ok';
    if (node === 'n3' && start >= (partition[0] ?? 0) && start < (partition[1] ?? 0)) [outcome, end] = ['info', start + 1000];
    if (node === 'n2' && start >= (kill[0] ?? 0) && start < (kill[1] ?? 0)) [outcome, end] = ['fail', start + 0.5];
    outcomes[outcome]++;
    const p = processOf[worker] ?? worker;
    client.push(...op(p, f, f === 'append' ? null : `k${i % 5}`, i, start, end, outcome, { node, ...(outcome === 'ok' ? {} : { error: 'x' }) }));
    if (outcome === 'info') processOf[worker] = p + workers;
    clock[worker] = end + 55 + random() * 10;
  }
  const events = [
    ...client,
    ...fault(1, 'partition', 'n1 n2 | n3', partition[0] ?? 0, partition[1] ?? 0),
    ...fault(2, 'kill', 'kill n2', kill[0] ?? 0, kill[1] ?? 0),
  ];
  return { events, outcomes };
}

describe('a long run of 100,000 ops', () => {
  const { events, outcomes } = longRun(100_000);
  const endMs = events.reduce((end, e) => Math.max(end, e.time), 0) / MS;
  const html = report(events);
  const timeline = chart(html, 'timeline');
  const latency = chart(html, 'latency');

  it('stays under the size limit and says on the page that it was downsampled', () => {
    expect(Buffer.byteLength(html, 'utf8')).toBeLessThan(SIZE_LIMIT);
    expect(html.match(/<p class="note downsampled">Downsampled: [^<]*/g)).toHaveLength(2);
    expect(unbalancedTags(html)).toEqual([]);
  });

  it('draws the timeline as bins with counts instead of one bar per op', () => {
    expect(timeline).not.toContain('class="op ');
    const bins = rects(timeline, 'bin ');
    expect(bins.length).toBeGreaterThan(1000);
    expect(bins.length).toBeLessThanOrEqual(30_000);
    expect(bins[0]?.title).toMatch(/op\(s\) active: /);
    // During the kill every op on n2 fails: those bins are red; before the faults no bin is amber.
    expect(bins.some((b) => b.cls === 'bin fail')).toBe(true);
    expect(bins.filter((b) => b.cls === 'bin info').length).toBeGreaterThan(0);
    expect(bins.filter((b) => b.cls === 'bin info' && b.x + b.width < xAt(timeline, 199_000, endMs))).toEqual([]);
  });

  it('keeps every fail and info in the latency scatter and samples the ok ops', () => {
    expect(latency.match(/class="pt fail"/g)).toHaveLength(outcomes.fail);
    expect(latency.match(/class="pt info"/g)).toHaveLength(outcomes.info);
    const okShown = latency.match(/class="pt ok"/g)?.length ?? 0;
    expect(okShown).toBeGreaterThan(5_000);
    expect(okShown).toBeLessThanOrEqual(10_000);
    expect(html).toContain(`all ${(outcomes.fail + outcomes.info).toLocaleString('en-US')} fail/info operations are shown`);
    expect(html).toMatch(/ok operations are sampled 1 in \d+, evenly over time/);
  });
});

describe('the downsampling threshold', () => {
  it(`draws every op up to ${DOWNSAMPLE_ABOVE_OPS} ops and bins above`, () => {
    const at = chart(report(longRun(DOWNSAMPLE_ABOVE_OPS).events), 'timeline');
    expect(at.match(/class="op /g)).toHaveLength(DOWNSAMPLE_ABOVE_OPS);
    const above = chart(report(longRun(DOWNSAMPLE_ABOVE_OPS + 1).events), 'timeline');
    expect(above).not.toContain('class="op ');
    expect(above).toContain('class="bin ');
  });
});
