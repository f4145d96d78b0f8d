/**
 * One variant of the overload benchmark: a fresh 3-node cluster started with
 * one --max-uncommitted-bytes, a short closed-loop run that states its
 * capacity, then open-loop Put load far above it while every node's memory
 * and the leader's backlog are sampled. The cluster is torn down before it
 * returns, on errors too.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeCommand } from '../../src/node/kv-commands.js';
import { BenchClient, sleep } from '../cluster/client.js';
import { type CpuUsage, cpuDelta, cpuSnapshot } from '../cluster/cpu.js';
import { keyOf, type RowResult, runLoadRow } from '../cluster/load.js';
import { SpawnedTarget } from '../cluster/target.js';
import { type OpenLoopResult, runOpenLoop } from './open-loop.js';
import { type NodeSample, procMemory, type Sample, startSampler } from './sampler.js';

export interface VariantOptions {
  readonly boundBytes: number;
  readonly ratePerS: number;
  readonly durationS: number;
  readonly deadlineMs: number;
  readonly maxInFlight: number;
  readonly valueSize: number;
  readonly keys: number;
  readonly closedConcurrency: number;
  /** 0 = no closed-loop reference. */
  readonly closedDurationS: number;
  readonly sampleMs: number;
  readonly nodeArgs: readonly string[];
  readonly logLevel: string;
  /** Flags for node itself in every node process, e.g. --trace-gc (its output lands in the node's log file). */
  readonly execArgv: readonly string[];
  /** Where to copy the nodes' log files (as <bound>-<node>.log) before the cluster is removed; null = nowhere. */
  readonly keepLogsDir: string | null;
}

export interface LeaderMemory {
  /** Just before the open-loop load. */
  readonly rss_start_mib: number | null;
  readonly rss_peak_mib: number | null;
  /** When the last request of the window was due. */
  readonly rss_end_mib: number | null;
  /** Once every request of the window had its answer (or its deadline). */
  readonly rss_after_drain_mib: number | null;
  /** VmHWM after the drain: the true peak since the process started (closed-loop reference included). */
  readonly hwm_mib: number | null;
}

/** A sample, timed from the start of the open-loop load. */
export interface TimedSample {
  readonly t_s: number;
  readonly nodes: Record<string, NodeSample>;
}

export interface VariantResult {
  readonly bound_bytes: number;
  /** The bound in entries of this benchmark's Put, as the leader counts bytes (the encoded command). */
  readonly bound_entries: number;
  readonly entry_bytes: number;
  /** The node that led when the open-loop load started: leader_memory and the table's leader columns are its. */
  readonly leader: string;
  readonly closed_loop: RowResult | null;
  readonly open_loop: OpenLoopResult;
  /** CPU over the open-loop window (percent of one core). */
  readonly cpu: CpuUsage;
  readonly leader_memory: LeaderMemory;
  readonly follower_rss_peak_mib: Record<string, number | null>;
  readonly follower_hwm_mib: Record<string, number | null>;
  /** Largest lastLogIndex − commitIndex the leader reported during the window and drain. */
  readonly leader_uncommitted_max: number | null;
  readonly leader_unapplied_max: number | null;
  /** Slowest Status answer of the leader during the window and drain (see NodeSample.status_ms). */
  readonly leader_status_max_ms: number | null;
  /** Leaders seen during the run as node@term: more than one means an election happened under load. */
  readonly leaders_seen: readonly string[];
  /** When the load stopped, seconds from its start. */
  readonly window_end_s: number;
  /** The last sample before the load, then every one until the drain ended. */
  readonly samples: readonly TimedSample[];
}

/** Calls onTarget with the cluster as soon as it exists and with null once it is gone, for signal handlers. */
export async function runVariant(
  o: VariantOptions,
  onTarget: (t: SpawnedTarget | null) => void,
  print: (line: string) => void,
): Promise<VariantResult> {
  const nodeArgs = [...o.nodeArgs, '--max-uncommitted-bytes', String(o.boundBytes)];
  const target = await SpawnedTarget.start({ size: 3, nodeArgs, logLevel: o.logLevel, execArgv: o.execArgv }, onTarget);
  try {
    print(
      `  cluster in ${target.cluster.dir}, pids ${target
        .tracked()
        .map((t) => `${t.name}=${t.pid}`)
        .join(' ')}`,
    );
    let closed: RowResult | null = null;
    if (o.closedDurationS > 0) {
      closed = await runLoadRow({
        op: 'put',
        concurrency: o.closedConcurrency,
        valueSize: o.valueSize,
        keys: o.keys,
        endpoints: target.endpoints,
        warmupS: 1,
        durationS: o.closedDurationS,
        timeoutMs: o.deadlineMs,
        tracked: () => target.tracked(),
      });
      print(
        `  closed loop c=${closed.concurrency}: ${closed.ops_per_s} ops/s, p50 ${closed.lat_ms.p50} p99 ${closed.lat_ms.p99} ms, ` +
          `errors ${closed.errors}, cpu loadgen ${closed.cpu.loadgen_pct}%`,
      );
    }
    return await overload(o, target, closed);
  } finally {
    if (o.keepLogsDir !== null) await keepLogs(target, o.keepLogsDir, String(o.boundBytes), print);
    await target.destroy();
    onTarget(null);
  }
}

async function overload(o: VariantOptions, target: SpawnedTarget, closed: RowResult | null): Promise<VariantResult> {
  const client = new BenchClient(target.endpoints, o.deadlineMs);
  const tracked = target.tracked();
  const sampler = startSampler({ nodes: tracked, endpoints: target.endpoints, periodMs: o.sampleMs });
  let samples: Sample[] | null = null;
  try {
    const leader = await client.findLeaderWithin(15_000);
    if (leader === null) throw new Error(`no leader found within 15 s among ${target.endpoints.map((e) => e.endpoint).join(', ')}`);
    // A sample of the calm before the load, with Status answered.
    await sleep(2 * o.sampleMs);
    const startAt = Date.now();
    const cpu0 = cpuSnapshot(tracked);
    // Filled in by onWindowEnd: CPU over the window alone, and when the load stopped.
    const atWindowEnd: { cpu?: CpuUsage; at?: number } = {};
    const open = await runOpenLoop(client, leader, {
      ratePerS: o.ratePerS,
      durationS: o.durationS,
      maxInFlight: o.maxInFlight,
      valueSize: o.valueSize,
      keys: o.keys,
      onWindowEnd: () => {
        atWindowEnd.cpu = cpuDelta(cpu0, cpuSnapshot(tracked));
        atWindowEnd.at = Date.now();
      },
    });
    const hwm = Object.fromEntries(tracked.map((t) => [t.name, procMemory(t.pid)?.hwm_mib ?? null]));
    const all = await sampler.stop();
    samples = all;
    const { cpu, at: windowEndAt } = atWindowEnd;
    if (cpu === undefined || windowEndAt === undefined) throw new Error('the open loop ended without reaching the end of its window');

    const before = all.filter((x) => x.at <= startAt);
    const first = before[before.length - 1] ?? all[0];
    const during = all.filter((x) => x.at > startAt);
    const last = all[all.length - 1];
    if (first === undefined || last === undefined) throw new Error('the sampler took no sample');
    const windowEnd = during.find((x) => x.at >= windowEndAt) ?? last;
    const rssOf = (x: Sample, node: string): number | null => x.nodes[node]?.rss_mib ?? null;
    const peak = (node: string): number | null => maxOf([first, ...during].map((x) => rssOf(x, node)));
    const entryBytes = encodeCommand({ op: 'put', key: keyOf(0), value: Buffer.alloc(o.valueSize, 'x') }).byteLength;
    const leadersSeen = new Set<string>();
    for (const x of [first, ...during]) {
      for (const [node, n] of Object.entries(x.nodes)) if (n.role === 'leader') leadersSeen.add(`${node}@${n.term}`);
    }
    return {
      bound_bytes: o.boundBytes,
      bound_entries: Math.floor(o.boundBytes / entryBytes),
      entry_bytes: entryBytes,
      leader: leader.name,
      closed_loop: closed,
      open_loop: open,
      cpu,
      leader_memory: {
        rss_start_mib: rssOf(first, leader.name),
        rss_peak_mib: peak(leader.name),
        rss_end_mib: rssOf(windowEnd, leader.name),
        rss_after_drain_mib: rssOf(last, leader.name),
        hwm_mib: hwm[leader.name] ?? null,
      },
      follower_rss_peak_mib: Object.fromEntries(tracked.filter((t) => t.name !== leader.name).map((t) => [t.name, peak(t.name)])),
      follower_hwm_mib: Object.fromEntries(tracked.filter((t) => t.name !== leader.name).map((t) => [t.name, hwm[t.name] ?? null])),
      leader_uncommitted_max: maxOf(during.map((x) => x.nodes[leader.name]?.uncommitted ?? null)),
      leader_unapplied_max: maxOf(during.map((x) => x.nodes[leader.name]?.unapplied ?? null)),
      leader_status_max_ms: maxOf(during.map((x) => x.nodes[leader.name]?.status_ms ?? null)),
      leaders_seen: [...leadersSeen],
      window_end_s: round1((windowEndAt - startAt) / 1000),
      samples: [first, ...during].map((x) => ({ t_s: round1((x.at - startAt) / 1000), nodes: x.nodes })),
    };
  } finally {
    if (samples === null) await sampler.stop().catch(() => []);
    client.close();
  }
}

async function keepLogs(target: SpawnedTarget, dir: string, prefix: string, print: (line: string) => void): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [node, file] of target.logFiles()) {
    const to = join(dir, `${prefix}-${node}.log`);
    await copyFile(file, to).then(
      () => print(`  kept ${to}`),
      (error: unknown) => print(`  could not keep ${file} as ${to}: ${(error as Error).message}`),
    );
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function maxOf(xs: readonly (number | null)[]): number | null {
  let m: number | null = null;
  for (const x of xs) if (x !== null && (m === null || x > m)) m = x;
  return m;
}
