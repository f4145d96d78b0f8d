/**
 * Planned and unplanned leadership moves under the bench's write load (issue 13):
 *
 * - the blip of a TransferLeadership, and of a graceful stop (SIGTERM) of the
 *   leader: p99 and max latency and the errors of the writes sent in a window
 *   after the move, next to the same window just before it. The load is the
 *   bench's own (closed loop, each write sent to the leader, one attempt);
 * - client errors per failover (SIGKILL of the leader) with requests held
 *   while the leadership changes, and without (`--hold-without-leader-ms 0`,
 *   the behaviour before), each on a fresh cluster in the same run. Here each
 *   worker sends to whichever node it is on (round-robin start, next node
 *   after an error), one attempt, no leader tracking: the client that sees
 *   followers' refusals, as jepsen-lite's clients do. Errors of writes in
 *   flight to the killed leader are counted apart: no node can save those.
 */
import * as grpc from '@grpc/grpc-js';
import type { TransferLeadershipReply } from '../../src/node/cluster-proto.js';
import { ClusterGrpcClient } from '../../src/node/cluster-proto.js';
import { BenchClient, type Member, sleep } from './client.js';
import { waitCaughtUp } from './failover.js';
import { closedLoop, errorKind, keyOf, type LoadShape, now } from './load.js';
import { type LatencyStats, latencyStats, median, r1 } from './stats.js';
import { type BenchTarget, SpawnedTarget } from './target.js';

export interface LeadershipOptions {
  readonly valueSize: number;
  readonly keys: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
  /** Transfers and graceful stops measured, each (0: none). */
  readonly moveTrials: number;
  /** SIGKILL failovers per variant, with and without holding (0: none). */
  readonly holdTrials: number;
  /** Seconds of load before each move. */
  readonly settleS: number;
  /** Seconds after each move whose writes are measured (and as long before, for the baseline). */
  readonly windowS: number;
  /** For the two fresh clusters of the hold comparison. */
  readonly nodeArgs: readonly string[];
  readonly logLevel: string;
  /** Clusters started here, so that an interrupted run still stops them. */
  readonly onTarget: (target: BenchTarget | null) => void;
  readonly log: (line: string) => void;
}

/** The writes sent in one window: latency of those that succeeded, and the errors. */
export interface WindowFigures {
  readonly ok: number;
  readonly errors: number;
  readonly lat_ms: LatencyStats;
  readonly error_kinds?: Record<string, number>;
}

export interface MoveTrial {
  readonly kind: 'transfer' | 'graceful-stop';
  readonly trial: number;
  readonly from: string;
  readonly to: string | null;
  /** The TransferLeadership call, or SIGTERM until the process exited. */
  readonly action_ms: number;
  readonly before: WindowFigures;
  readonly during: WindowFigures;
}

export interface FailoverErrors {
  readonly trial: number;
  readonly killed: string;
  /** Sent after the kill, within the window, and failed: what holding is about. */
  readonly errors_after_kill: number;
  /** In flight to the killed leader when it died: lost whatever the nodes do. */
  readonly errors_in_flight_at_kill: number;
  readonly ok_after_kill: number;
  /** Kill → first success of a write sent after it. */
  readonly first_success_ms: number | null;
  readonly error_kinds: Record<string, number>;
}

export interface HoldVariant {
  readonly hold: 'default' | 'off';
  readonly node_args: readonly string[];
  readonly trials: FailoverErrors[];
  readonly median_errors_after_kill: number | null;
  readonly total_errors_after_kill: number;
  readonly median_first_success_ms: number | null;
}

export interface LeadershipSummary {
  readonly summary: 'leadership';
  readonly concurrency: number;
  readonly window_s: number;
  readonly moves: MoveTrial[];
  readonly transfer: MoveSummary | null;
  readonly graceful_stop: MoveSummary | null;
  readonly hold: HoldVariant[];
}

export interface MoveSummary {
  readonly trials: number;
  /** Over the trials: the worst p99 and max of the writes sent after the move, and all their errors. */
  readonly worst_p99_ms: number | null;
  readonly worst_max_ms: number | null;
  readonly errors: number;
  readonly baseline_median_p99_ms: number | null;
  readonly median_action_ms: number | null;
}

interface Sample {
  readonly t0: number;
  readonly t1: number;
  readonly ok: boolean;
  readonly error?: unknown;
}

export async function runLeadership(target: BenchTarget | null, o: LeadershipOptions): Promise<LeadershipSummary> {
  const moves: MoveTrial[] = [];
  if (o.moveTrials > 0 && target !== null && target.canKill) {
    for (let trial = 1; trial <= o.moveTrials; trial++) {
      const transfer = await moveTrial(target, o, 'transfer', trial);
      moves.push(transfer);
      o.log(describeMove(transfer));
      const stop = await moveTrial(target, o, 'graceful-stop', trial);
      moves.push(stop);
      o.log(describeMove(stop));
    }
  } else if (o.moveTrials > 0) {
    o.log('leadership moves skipped: a cluster given by --endpoints is not ours to stop and restart');
  }
  const hold: HoldVariant[] = [];
  if (o.holdTrials > 0) {
    // The behaviour before holding first, then the default, each on a fresh cluster with the same flags otherwise.
    for (const variant of ['off', 'default'] as const) hold.push(await holdVariant(o, variant));
  }
  return {
    summary: 'leadership',
    concurrency: o.concurrency,
    window_s: o.windowS,
    moves,
    transfer: summarize(moves.filter((m) => m.kind === 'transfer')),
    graceful_stop: summarize(moves.filter((m) => m.kind === 'graceful-stop')),
    hold,
  };
}

async function moveTrial(target: BenchTarget, o: LeadershipOptions, kind: MoveTrial['kind'], trial: number): Promise<MoveTrial> {
  const client = new BenchClient(target.endpoints, o.timeoutMs);
  let stop = false;
  try {
    const leader = await client.findLeaderWithin(15_000);
    if (leader === null) throw new Error(`no leader before the ${kind}`);
    const samples: Sample[] = [];
    const run = closedLoop(
      client,
      shape(o),
      (ok, t0, t1, error) => samples.push({ t0, t1, ok, error }),
      () => stop,
    );
    await sleep(o.settleS * 1000);

    const from = client.leader ?? leader;
    const at = now();
    let to: string | null = null;
    if (kind === 'transfer') {
      to = (await transferLeadership(from.endpoint, o.timeoutMs)).leader;
    } else {
      await target.stop(from.name);
    }
    const actionMs = r1(now() - at);
    const windowEnd = at + o.windowS * 1000;
    while (now() < windowEnd) await sleep(20);
    stop = true;
    await run;
    if (kind === 'graceful-stop') {
      to = (await client.findLeaderWithin(15_000))?.name ?? null;
      target.restart(from.name);
      await waitCaughtUp(client, 60_000);
    }
    return {
      kind,
      trial,
      from: from.name,
      to,
      action_ms: actionMs,
      before: figures(samples, at - o.windowS * 1000, at),
      during: figures(samples, at, windowEnd),
    };
  } finally {
    stop = true;
    client.close();
  }
}

async function holdVariant(o: LeadershipOptions, hold: HoldVariant['hold']): Promise<HoldVariant> {
  const nodeArgs = hold === 'off' ? [...o.nodeArgs, '--hold-without-leader-ms', '0'] : [...o.nodeArgs];
  o.log(
    `failover errors, holding ${hold === 'off' ? 'off (--hold-without-leader-ms 0)' : 'on (default)'}: fresh cluster, ` +
      `${o.holdTrials} SIGKILLs of the leader, put c=${o.concurrency} spread over the nodes`,
  );
  const target = await SpawnedTarget.start({ size: 3, nodeArgs, logLevel: o.logLevel, execArgv: [] }, (t) => o.onTarget(t));
  try {
    const trials: FailoverErrors[] = [];
    for (let trial = 1; trial <= o.holdTrials; trial++) {
      const r = await failoverTrial(target, o, trial);
      trials.push(r);
      o.log(
        `  trial ${trial}: killed ${r.killed}: errors after the kill ${r.errors_after_kill} (${r.ok_after_kill} ok), ` +
          `in flight at the kill ${r.errors_in_flight_at_kill}, first success ${r.first_success_ms} ms ${JSON.stringify(r.error_kinds)}`,
      );
    }
    const after = trials.map((t) => t.errors_after_kill);
    return {
      hold,
      node_args: nodeArgs,
      trials,
      median_errors_after_kill: median(after),
      total_errors_after_kill: after.reduce((a, b) => a + b, 0),
      median_first_success_ms: median(trials.flatMap((t) => (t.first_success_ms === null ? [] : [t.first_success_ms]))),
    };
  } finally {
    await target.destroy();
    o.onTarget(null);
  }
}

async function failoverTrial(target: BenchTarget, o: LeadershipOptions, trial: number): Promise<FailoverErrors> {
  const client = new BenchClient(target.endpoints, o.timeoutMs);
  let stop = false;
  try {
    const leader = await client.findLeaderWithin(15_000);
    if (leader === null) throw new Error('no leader before the kill');
    const samples: Sample[] = [];
    const run = spreadLoop(
      client,
      o,
      (ok, t0, t1, error) => samples.push({ t0, t1, ok, error }),
      () => stop,
    );
    await sleep(o.settleS * 1000);
    const victim = (await client.findLeaderWithin(15_000)) ?? leader;
    const killAt = now();
    await target.kill(victim.name);
    const windowEnd = killAt + o.windowS * 1000;
    while (now() < windowEnd) await sleep(20);
    stop = true;
    await run;
    target.restart(victim.name);
    await waitCaughtUp(client, 60_000);

    const after = samples.filter((s) => s.t0 >= killAt && s.t0 < windowEnd);
    const inFlight = samples.filter((s) => s.t0 < killAt && s.t1 >= killAt && !s.ok);
    const kinds: Record<string, number> = {};
    for (const s of after) if (!s.ok) kinds[errorKind(s.error)] = (kinds[errorKind(s.error)] ?? 0) + 1;
    const firstSuccess = after.filter((s) => s.ok).reduce<number | null>((first, s) => (first === null || s.t1 < first ? s.t1 : first), null);
    return {
      trial,
      killed: victim.name,
      errors_after_kill: after.filter((s) => !s.ok).length,
      errors_in_flight_at_kill: inFlight.length,
      ok_after_kill: after.filter((s) => s.ok).length,
      first_success_ms: firstSuccess === null ? null : r1(firstSuccess - killAt),
      error_kinds: kinds,
    };
  } finally {
    stop = true;
    client.close();
  }
}

/**
 * C workers, one write in flight each, each sent to the node the worker is
 * on: worker i starts on node i mod N and moves to the next node after an
 * error (and pauses 2 ms, as the leader-directed loop does).
 */
async function spreadLoop(
  client: BenchClient,
  o: LeadershipOptions,
  onResult: (ok: boolean, t0: number, t1: number, error?: unknown) => void,
  stop: () => boolean,
): Promise<void> {
  const value = Buffer.alloc(o.valueSize, 'x');
  const worker = async (i: number): Promise<void> => {
    let at = i % client.members.length;
    while (!stop()) {
      const member = client.members[at] as Member;
      const t0 = now();
      try {
        await client.put(member, keyOf(Math.floor(Math.random() * o.keys)), value);
        onResult(true, t0, now());
      } catch (error) {
        onResult(false, t0, now(), error);
        at = (at + 1) % client.members.length;
        await sleep(2);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, (_, i) => worker(i)));
}

function shape(o: LeadershipOptions): LoadShape {
  return { op: 'put', concurrency: o.concurrency, valueSize: o.valueSize, keys: o.keys };
}

/** TransferLeadership with no target (the leader picks its most caught-up voter), on the leader's endpoint. */
function transferLeadership(endpoint: string, timeoutMs: number): Promise<TransferLeadershipReply> {
  const client = new ClusterGrpcClient(endpoint, grpc.credentials.createInsecure());
  type Unary = (
    request: object,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply: TransferLeadershipReply) => void,
  ) => void;
  const call = (client as unknown as { transferLeadership: Unary }).transferLeadership;
  return new Promise((resolve, reject) => {
    call.call(client, { to: '' }, { deadline: Date.now() + timeoutMs }, (error, reply) => {
      client.close();
      if (error !== null) reject(new Error(`TransferLeadership on ${endpoint}: ${error.details}`));
      else resolve(reply);
    });
  });
}

/** The writes sent in [from, to): latencies of those that succeeded, and the errors by kind. */
function figures(samples: readonly Sample[], from: number, to: number): WindowFigures {
  const sent = samples.filter((s) => s.t0 >= from && s.t0 < to);
  const failed = sent.filter((s) => !s.ok);
  const kinds: Record<string, number> = {};
  for (const s of failed) kinds[errorKind(s.error)] = (kinds[errorKind(s.error)] ?? 0) + 1;
  return {
    ok: sent.length - failed.length,
    errors: failed.length,
    lat_ms: latencyStats(sent.filter((s) => s.ok).map((s) => s.t1 - s.t0)),
    ...(failed.length > 0 ? { error_kinds: kinds } : {}),
  };
}

function summarize(trials: readonly MoveTrial[]): MoveSummary | null {
  if (trials.length === 0) return null;
  const known = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
  const worst = (xs: (number | null)[]) => (known(xs).length === 0 ? null : Math.max(...known(xs)));
  return {
    trials: trials.length,
    worst_p99_ms: worst(trials.map((t) => t.during.lat_ms.p99)),
    worst_max_ms: worst(trials.map((t) => t.during.lat_ms.max)),
    errors: trials.reduce((n, t) => n + t.during.errors, 0),
    baseline_median_p99_ms: median(known(trials.map((t) => t.before.lat_ms.p99))),
    median_action_ms: median(trials.map((t) => t.action_ms)),
  };
}

export function describeMove(m: MoveTrial): string {
  const d = m.during;
  const b = m.before;
  return (
    `  ${m.kind} ${m.trial}: ${m.from} -> ${m.to ?? '?'} in ${m.action_ms} ms; writes sent after it: ` +
    `p99 ${d.lat_ms.p99} max ${d.lat_ms.max} ms, ${d.ok} ok, ${d.errors} errors${d.error_kinds ? ` ${JSON.stringify(d.error_kinds)}` : ''} ` +
    `(before: p99 ${b.lat_ms.p99} max ${b.lat_ms.max} ms, ${b.errors} errors)`
  );
}

export function describeLeadership(s: LeadershipSummary): string[] {
  const lines: string[] = [];
  const move = (name: string, m: MoveSummary | null) => {
    if (m === null) return;
    lines.push(
      `${name} (${m.trials} trials, put c=${s.concurrency}, writes sent within ${s.window_s} s): worst p99 ${m.worst_p99_ms} ms, ` +
        `worst max ${m.worst_max_ms} ms, ${m.errors} errors; baseline p99 (median) ${m.baseline_median_p99_ms} ms; move took ${m.median_action_ms} ms (median)`,
    );
  };
  move('transfer-leader', s.transfer);
  move('graceful stop of the leader', s.graceful_stop);
  for (const v of s.hold) {
    lines.push(
      `failover (SIGKILL), holding ${v.hold === 'off' ? 'off' : 'on'}: errors of writes sent after the kill per failover ` +
        `${JSON.stringify(v.trials.map((t) => t.errors_after_kill))} (median ${v.median_errors_after_kill}), in flight at the kill ` +
        `${JSON.stringify(v.trials.map((t) => t.errors_in_flight_at_kill))}, kill -> first success median ${v.median_first_success_ms} ms`,
    );
  }
  return lines;
}
