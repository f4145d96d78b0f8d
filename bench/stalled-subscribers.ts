/**
 * Subscribers that stop reading: do they slow the writers, or grow the
 * node's memory? A fresh 3-node cluster per variant; K Subscribe streams
 * from index 1 on the leader that never read (paused at once, so gRPC's
 * flow control holds the node back); closed-loop appends meanwhile; every
 * node's RSS sampled each second. Prints one line per variant and a JSON
 * line with everything (stdout, last).
 *
 *   npm run bench:stalled -- [--stalled 0,10] [--concurrency 64] [--duration 20] [--record-size 1024]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { RaftLogGrpcClient } from '../src/node/client-proto.js';
import { ProcessCluster } from '../test/support/process-cluster.js';
import { BenchClient, type Member } from './cluster/client.js';

const { values: a } = parseArgs({
  options: {
    stalled: { type: 'string', default: '0,10' },
    concurrency: { type: 'string', default: '64' },
    duration: { type: 'string', default: '20' },
    'record-size': { type: 'string', default: '1024' },
  },
  strict: true,
});
const variants = a.stalled.split(',').map(Number);
const concurrency = Number(a.concurrency);
const durationS = Number(a.duration);
const recordSize = Number(a['record-size']);
if (variants.some((k) => !Number.isInteger(k) || k < 0) || !(concurrency >= 1) || !(durationS > 0) || !(recordSize >= 1)) {
  console.error('usage: npm run bench:stalled -- [--stalled 0,10] [--concurrency 64] [--duration 20] [--record-size 1024]');
  process.exit(2);
}

async function rssMiB(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return match === null ? null : Math.round(Number(match[1]) / 1024);
  } catch {
    return null;
  }
}

interface VariantResult {
  readonly stalled: number;
  readonly appends_per_s: number;
  readonly errors: number;
  readonly leader: string;
  /** Per node: RSS at the start of the writes, the most seen, and at the end (MiB). */
  readonly rss_mib: Record<string, { start: number | null; peak: number | null; end: number | null }>;
  /** What the stalled streams had received when the writes stopped (replies). */
  readonly replies_received_by_stalled: number;
}

async function runVariant(stalled: number): Promise<VariantResult> {
  const cluster = await ProcessCluster.start(3, [], { logLevel: 'warn' });
  const streams: grpc.ClientReadableStream<unknown>[] = [];
  const channels: grpc.Client[] = [];
  try {
    const leaderId = await cluster.waitForLeader();
    const client = new BenchClient(cluster.ids.map((id) => ({ endpoint: cluster.address(id), name: id })));
    const leader = client.members.find((m) => m.name === leaderId) as Member;
    let replies = 0;
    for (let i = 0; i < stalled; i++) {
      const channel = new RaftLogGrpcClient(cluster.address(leaderId), grpc.credentials.createInsecure()) as unknown as grpc.Client & {
        subscribe(request: object): grpc.ClientReadableStream<unknown>;
      };
      channels.push(channel);
      const stream = channel.subscribe({ fromIndex: 1, view: 'SUBSCRIBE_VIEW_COMMANDS' });
      stream.on('data', () => {
        replies++;
        stream.pause();
      });
      stream.on('error', () => undefined);
      stream.pause();
      streams.push(stream);
    }
    const samples = new Map<string, number[]>(cluster.ids.map((id) => [id, []]));
    const sample = async () => {
      for (const id of cluster.ids) {
        const rss = await rssMiB(cluster.pid(id));
        if (rss !== null) samples.get(id)?.push(rss);
      }
    };
    await sample();
    const sampler = setInterval(() => void sample(), 1000);
    const record = Buffer.alloc(recordSize, 120);
    let done = 0;
    let errors = 0;
    const until = Date.now() + durationS * 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < until) {
          try {
            await client.append(leader, record);
            done++;
          } catch {
            errors++;
          }
        }
      }),
    );
    clearInterval(sampler);
    await sample();
    const rss: VariantResult['rss_mib'] = {};
    for (const [id, values] of samples) {
      rss[id] = { start: values[0] ?? null, peak: values.length === 0 ? null : Math.max(...values), end: values.at(-1) ?? null };
    }
    return { stalled, appends_per_s: Math.round(done / durationS), errors, leader: leaderId, rss_mib: rss, replies_received_by_stalled: replies };
  } finally {
    for (const stream of streams) stream.cancel();
    for (const channel of channels) channel.close();
    await cluster.destroy();
  }
}

const results: VariantResult[] = [];
for (const stalled of variants) {
  const result = await runVariant(stalled);
  results.push(result);
  const rss = Object.entries(result.rss_mib)
    .map(([id, r]) => `${id}${id === result.leader ? '(L)' : ''} ${r.start}→${r.peak}→${r.end}`)
    .join(', ');
  console.error(
    `stalled=${stalled}: ${result.appends_per_s} appends/s of ${recordSize} B at c=${concurrency} for ${durationS} s, errors ${result.errors}; ` +
      `RSS MiB start→peak→end: ${rss}; the stalled streams took ${result.replies_received_by_stalled} replies`,
  );
}
console.log(JSON.stringify({ bench: 'stalled-subscribers', concurrency, duration_s: durationS, record_size: recordSize, results }));
