/** Closed-loop load (Put or Append, or Get for comparison), measured as the etcd anchor's load.mjs measures it. */
import { performance } from 'node:perf_hooks';
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { BenchClient, type Member, sleep } from './client.js';
import { type CpuUsage, cpuDelta, cpuSnapshot, type Tracked } from './cpu.js';
import { type LatencyStats, latencyStats } from './stats.js';

export const now = (): number => performance.now();

/**
 * put: a write through Raft. append: a record appended to the log (a write
 * through Raft that touches no key). get: a linearizable read (ReadIndex).
 * get-local: the leader's state as it is, no Raft at all: the cost of the
 * gRPC path alone, the ceiling of what this load generator can drive.
 */
export const LOAD_OPS = ['put', 'append', 'get', 'get-local'] as const;
export type LoadOp = (typeof LOAD_OPS)[number];

export interface LoadShape {
  /** Default put. */
  readonly op?: LoadOp;
  readonly concurrency: number;
  readonly valueSize: number;
  readonly keys: number;
  /** Makes each append's record (called as it is sent); default: valueSize bytes, the same every time. */
  readonly record?: () => Buffer;
}

/** Called once per request; times are performance.now() ms; `index` is a write's log index. */
export type OnResult = (ok: boolean, t0: number, t1: number, error?: unknown, index?: number) => void;

/** The anchor's key format, so both stores index keys of the same length. */
export const keyOf = (i: number): Buffer => Buffer.from('k' + String(i).padStart(8, '0'));

/**
 * C workers, each with exactly one request in flight: send, wait for the reply,
 * send the next. Every request goes to the leader; after any error the worker
 * forgets the leader (so the next request waits for discovery) and pauses
 * 2 ms, which keeps a dead leader from turning into a hot error loop.
 */
export async function closedLoop(client: BenchClient, shape: LoadShape, onResult: OnResult, stop: () => boolean): Promise<void> {
  const value = Buffer.alloc(shape.valueSize, 'x');
  const op = shape.op ?? 'put';
  const worker = async (): Promise<void> => {
    while (!stop()) {
      const member: Member | null = client.leader ?? (await client.findLeader(stop));
      if (member === null) break;
      const key = keyOf(Math.floor(Math.random() * shape.keys));
      const record = op === 'append' && shape.record !== undefined ? shape.record() : value;
      const t0 = now();
      try {
        let index: number | undefined;
        if (op === 'put') index = (await client.put(member, key, value)).position.index;
        else if (op === 'append') index = (await client.append(member, record)).position.index;
        else await client.get(member, key, op === 'get' ? 'READ_CONSISTENCY_LINEARIZABLE' : 'READ_CONSISTENCY_LOCAL');
        onResult(true, t0, now(), undefined, index);
      } catch (error) {
        onResult(false, t0, now(), error);
        if (client.leader === member) client.leader = null;
        await sleep(2);
      }
    }
  };
  await Promise.all(Array.from({ length: shape.concurrency }, () => worker()));
}

/**
 * Groups errors for the report: the gRPC code plus the message with numbers
 * masked, so "write at index 105 ..." and "... index 106" count as one kind.
 */
export function errorKind(error: unknown): string {
  const e = error as Partial<ServiceError> | null;
  const code = typeof e?.code === 'number' ? `${grpcStatus[e.code] ?? e.code}: ` : '';
  return code + (e?.details || e?.message || String(error)).replace(/\d+/g, 'N');
}

/** What the replies that arrived inside a measured window add up to: the fields every result shares. */
export interface MeasuredLoad {
  readonly ops: number;
  readonly ops_per_s: number;
  readonly errors: number;
  readonly lat_ms: LatencyStats;
  readonly cpu: CpuUsage;
  readonly error_kinds?: Record<string, number>;
}

export interface WindowOptions {
  readonly warmupS: number;
  readonly durationS: number;
  /** Processes to bill CPU to, read at the start of the window (nodes may have restarted since). */
  readonly tracked: () => Tracked[];
}

/** For callers that measure more than the writers (the delivery rows): every result, and the window's edges. */
export interface WindowHooks {
  /** Every result, warm-up and after the window included. */
  readonly onAnyResult?: OnResult;
  readonly onWindowStart?: (t: number) => void;
  /** At the window's end, while the workers still run. */
  readonly onWindowEnd?: (t: number) => void;
}

/**
 * Runs the closed loop, lets it warm up, then counts the replies that arrive
 * within `durationS` (as the anchor does, whenever they were sent), and the
 * window's real length. The workers are stopped before it returns, on errors too.
 */
export async function measureClosedLoop(
  client: BenchClient,
  shape: LoadShape,
  o: WindowOptions & WindowHooks,
): Promise<{ readonly measured: MeasuredLoad; readonly seconds: number }> {
  let stopping = false;
  let measuring = false;
  let ops = 0;
  let errors = 0;
  let tEnd = Infinity;
  const latencies: number[] = [];
  const errorKinds: Record<string, number> = {};
  const onResult: OnResult = (ok, t0, t1, error, index) => {
    o.onAnyResult?.(ok, t0, t1, error, index);
    if (!measuring || t1 > tEnd) return;
    if (ok) {
      ops++;
      latencies.push(t1 - t0);
    } else {
      errors++;
      const k = errorKind(error);
      errorKinds[k] = (errorKinds[k] ?? 0) + 1;
    }
  };
  const run = closedLoop(client, shape, onResult, () => stopping);
  try {
    await sleep(o.warmupS * 1000);
    const cpu0 = cpuSnapshot(o.tracked());
    measuring = true;
    const tStart = now();
    o.onWindowStart?.(tStart);
    await sleep(o.durationS * 1000);
    tEnd = now();
    o.onWindowEnd?.(tEnd);
    const cpu = cpuDelta(cpu0, cpuSnapshot(o.tracked()));
    const seconds = (tEnd - tStart) / 1000;
    const measured: MeasuredLoad = {
      ops,
      ops_per_s: Math.round(ops / seconds),
      errors,
      lat_ms: latencyStats(latencies),
      cpu,
      ...(errors > 0 ? { error_kinds: errorKinds } : {}),
    };
    return { measured, seconds };
  } finally {
    stopping = true;
    await run;
  }
}

export interface RowResult extends MeasuredLoad {
  readonly op: LoadOp;
  readonly leader: string;
  readonly concurrency: number;
  readonly value_size: number;
  readonly keys: number;
  readonly duration_s: number;
}

export interface RowOptions extends LoadShape, WindowOptions {
  readonly endpoints: readonly { endpoint: string; name?: string }[];
  readonly timeoutMs: number;
}

/** One row: fresh connections, find the leader, warm up, then count a window of --duration seconds. */
export async function runLoadRow(o: RowOptions): Promise<RowResult> {
  const client = new BenchClient(o.endpoints, o.timeoutMs);
  try {
    const leader = await client.findLeaderWithin(15_000);
    if (leader === null) throw new Error('no leader found within 15 s');
    const { measured, seconds } = await measureClosedLoop(client, o, o);
    return {
      op: o.op ?? 'put',
      leader: leader.name,
      concurrency: o.concurrency,
      value_size: o.valueSize,
      keys: o.keys,
      duration_s: Math.round(seconds * 100) / 100,
      ...measured,
    };
  } finally {
    client.close();
  }
}

export function describeCpu(cpu: CpuUsage, leader?: string): string {
  const nodes = Object.entries(cpu.node_pct)
    .map(([name, pct]) => `${name}${name === leader ? '(L)' : ''} ${pct}%`)
    .join(', ');
  return (
    `cpu loadgen ${cpu.loadgen_pct}% nodes [${nodes}] kernel ${cpu.kernel_threads_pct}% irq ${cpu.irq_pct}% ` +
    `other ${cpu.other_pct}% [${cpu.other_top.join(' ')}] unattributed ${cpu.unattributed_pct}% pids+${cpu.pids_created} ` +
    `machine ${cpu.machine_busy_pct}%`
  );
}

export function describeRow(r: RowResult): string {
  const l = r.lat_ms;
  return (
    `${r.op} c=${r.concurrency}: ${r.ops_per_s} ops/s, p50 ${l.p50} p90 ${l.p90} p99 ${l.p99} p99.9 ${l.p999} ` +
    `max ${l.max} mean ${l.mean} ms, errors ${r.errors}, ${describeCpu(r.cpu, r.leader)}`
  );
}
