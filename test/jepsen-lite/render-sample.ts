/**
 * Writes the HTML report of a synthetic run, to look at the page without a
 * cluster: `npx tsx test/jepsen-lite/render-sample.ts /tmp/sample.html [seconds]`.
 * The default 60 s gives a few thousand ops drawn one by one; 600 s gives
 * enough to see the downsampled (binned and sampled) drawing.
 * The history is made up but shaped like a real one: 8 workers, a partition
 * that makes ops on the minority time out (info, and the worker comes back
 * as a new process), and a kill of a node whose clients then fail fast.
 */
import { writeFileSync } from 'node:fs';
import type { ClientEvent, HistoryEvent, NemesisEvent, OperationF } from './history.js';
import { renderReport } from './report-html.js';

const out = process.argv[2] ?? '/tmp/sample.html';
const SEED = 7;
const WORKERS = 8;
const DURATION_NS = Number(process.argv[3] ?? 60) * 1e9;
const NODES = ['n1', 'n2', 'n3'];

/** mulberry32: a seeded PRNG so the sample is the same every time. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = rng(SEED);
const partition = { start: 0.25 * DURATION_NS, end: 0.45 * DURATION_NS, minority: 'n3' };
const kill = { start: 0.63 * DURATION_NS, end: 0.73 * DURATION_NS, node: 'n2' };
/** One client hangs here and never hears back, to show an op drawn to the end of the run. */
const HANG = { worker: 1, at: 0.85 * DURATION_NS };

const nemesis: NemesisEvent[] = [
  {
    process: 'nemesis',
    type: 'info',
    f: 'start-partition',
    value: { fault: 1, kind: 'partition', description: 'n1 n2 | n3', nodes: ['n3'] },
    time: partition.start,
  },
  {
    process: 'nemesis',
    type: 'info',
    f: 'stop-partition',
    value: { fault: 1, kind: 'partition', description: 'n1 n2 | n3', nodes: ['n3'] },
    time: partition.end,
  },
  {
    process: 'nemesis',
    type: 'info',
    f: 'kill',
    value: { fault: 2, kind: 'kill', description: 'kill n2 (leader)', nodes: ['n2'] },
    time: kill.start,
  },
  {
    process: 'nemesis',
    type: 'info',
    f: 'restart',
    value: { fault: 2, kind: 'kill', description: 'kill n2 (leader)', nodes: ['n2'] },
    time: kill.end,
  },
];

const client: ClientEvent[] = [];
let register = 0;
let nextValue = 1;
for (let worker = 0; worker < WORKERS; worker++) {
  let processId = worker;
  let t = random() * 50e6;
  while (t < DURATION_NS) {
    // Like Jepsen, a worker talks to one node, so only the minority's workers see the partition.
    const node = NODES[worker % NODES.length] ?? 'n1';
    const roll = random();
    const f: OperationF = roll < 0.5 ? 'read' : roll < 0.8 ? 'write' : 'cas';
    const key = `k${Math.floor(random() * 3)}`;
    const value = f === 'read' ? null : f === 'write' ? nextValue++ : [register, nextValue++];
    client.push({ process: processId, type: 'invoke', f, key, value, time: t, node });
    if (worker === HANG.worker && t >= HANG.at) break;

    const partitioned = node === partition.minority && t >= partition.start && t < partition.end;
    const killed = node === kill.node && t >= kill.start && t < kill.end;
    // A lognormal-ish latency with a tail: a few ms normally, tens of ms now and then.
    let latency = Math.exp(Math.log(3e6) + random() * 1.5 + (random() < 0.02 ? 3 : 0));
    let completion: Pick<ClientEvent, 'type' | 'value'> & { error?: string; index?: number };
    if (partitioned) {
      latency = 1e9;
      completion = { type: 'info', value, error: 'deadline exceeded' };
    } else if (killed) {
      latency = 1e6 + random() * 2e6;
      completion = { type: 'fail', value, error: 'unavailable: connection refused' };
    } else if (f === 'cas' && random() < 0.3) {
      completion = { type: 'fail', value, error: 'compare-failed' };
    } else {
      if (f === 'write') register = value as number;
      if (f === 'cas') register = (value as number[])[1] ?? register;
      completion = { type: 'ok', value: f === 'read' ? register : value, ...(f === 'read' ? {} : { index: nextValue }) };
    }
    const done = t + latency;
    if (done >= DURATION_NS) break; // the run ends with this op outstanding
    client.push({ process: processId, f, key, node, time: done, ...completion });
    if (completion.type === 'info') processId += WORKERS;
    t = done + random() * 250e6;
  }
}

const events: HistoryEvent[] = [...client, ...nemesis].sort((a, b) => a.time - b.time);
const ops = client.filter((e) => e.type === 'invoke').length;

const html = renderReport({
  title: `jepsen-lite: register, partition+kill, 3 nodes, seed ${SEED} (synthetic sample)`,
  settings: {
    workload: 'register',
    nemesis: 'partition,kill',
    nodes: NODES.length,
    concurrency: WORKERS,
    'time-limit': `${DURATION_NS / 1e9} s`,
    seed: SEED,
  },
  events,
  checkers: [
    { name: 'linearizable', valid: true, summary: `${ops} operations, linearizable` },
    { name: 'timeline', valid: 'unknown', summary: 'not checked in the sample', details: 'This is a made-up history:\nno checker ran.' },
  ],
});
writeFileSync(out, html);
console.log(`${out}: ${ops} operations, ${events.length} events, ${(html.length / 1024).toFixed(0)} KiB`);
