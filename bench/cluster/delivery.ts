/**
 * A delivery row: closed-loop appends (each record stamped with its send
 * time) while K subscribers read the log from the tail, as the NATS anchor's
 * `load.mjs --op consume` does it. The writers are measured as any row; the
 * subscribers report delivery rate, send → delivery latency, their lag when
 * the writers stop, and, after a drain of up to 10 s, every acknowledged
 * append they never received.
 */
import { BenchClient } from './client.js';
import { IndexSet, stampedRecord, writerCostPct } from './delivery-check.js';
import { type MeasuredLoad, measureClosedLoop, now, type WindowOptions } from './load.js';
import type { LatencyStats } from './stats.js';
import { type GroupReport, SubscriberGroup, type SubscriberReport } from './subscribers.js';

/** How long the subscribers get after the writers stop to receive every acknowledged append (as the NATS anchor). */
export const DRAIN_MS = 10_000;

export interface DeliveryRowOptions extends WindowOptions {
  readonly endpoints: readonly { endpoint: string; name?: string }[];
  readonly concurrency: number;
  readonly subscribers: number;
  /** Which pass over the delivery rows this is (0 first): costs are judged against the same round's K=0 row. */
  readonly round: number;
  /** Record size; the first 8 bytes carry the send time. */
  readonly valueSize: number;
  readonly timeoutMs: number;
}

export interface DeliveryRowResult extends MeasuredLoad, Omit<GroupReport, 'subscribers'> {
  readonly op: 'deliver';
  readonly concurrency: number;
  readonly subscribers: number;
  readonly round: number;
  readonly value_size: number;
  readonly leader: string;
  readonly duration_s: number;
  /** Where each subscriber started. */
  readonly subscriber_nodes: string[];
  readonly delivered_per_s_total: number;
  /** Appends acknowledged from the first reply to the last (warm-up included): what the subscribers were due. */
  readonly acked_total: number;
  readonly undelivered_total: number;
  readonly coverage_problems_total: number;
  /** Percent of ops/s lost against the same run's row without subscribers (filled in once that row is known). */
  writer_cost_pct: number | null;
  /** Send → delivery p99 ÷ the writers' own p99 in the row without subscribers. */
  e2e_p99_vs_write_p99: number | null;
}

export async function runDeliveryRow(o: DeliveryRowOptions): Promise<DeliveryRowResult> {
  const client = new BenchClient(o.endpoints, o.timeoutMs);
  let group: SubscriberGroup | null = null;
  try {
    const leader = await client.findLeaderWithin(15_000);
    if (leader === null) throw new Error('no leader found within 15 s');
    // Followers first: a follower learns of a commit one message later than the leader, the case worth seeing with one subscriber.
    const leaderAt = client.members.indexOf(leader);
    group = SubscriberGroup.open(o.endpoints, o.subscribers, leaderAt + 1);
    await group.waitReady(15_000);
    const subscribers = group;
    const acked = new IndexSet();
    let highestAtEnd = 0;
    const { measured, seconds } = await measureClosedLoop(
      client,
      { op: 'append', concurrency: o.concurrency, valueSize: o.valueSize, keys: 1, record: () => stampedRecord(o.valueSize, now()) },
      {
        ...o,
        onAnyResult: (ok, _t0, _t1, _error, index) => {
          if (ok && index !== undefined) acked.add(index);
        },
        onWindowStart: (t) => subscribers.startWindow(t),
        onWindowEnd: (t) => {
          highestAtEnd = acked.max;
          subscribers.endWindow(t);
        },
      },
    );
    // The workers have stopped and every reply is in: acked is final.
    const drain = await subscribers.drain(acked.max, DRAIN_MS);
    const report = subscribers.report(acked, highestAtEnd, seconds, drain);
    const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
    return {
      op: 'deliver',
      concurrency: o.concurrency,
      round: o.round,
      value_size: o.valueSize,
      leader: leader.name,
      duration_s: Math.round(seconds * 100) / 100,
      subscriber_nodes: subscribers.members.map((s) => s.nodes[0] ?? '?'),
      ...measured,
      ...report,
      subscribers: o.subscribers,
      delivered_per_s_total: sum(report.delivered_per_s),
      acked_total: acked.size,
      undelivered_total: sum(report.undelivered_after_drain),
      coverage_problems_total: sum(report.coverage_problems),
      writer_cost_pct: null,
      e2e_p99_vs_write_p99: null,
    };
  } finally {
    group?.close();
    client.close();
  }
}

/**
 * Sets each row's cost to the writers against the row without subscribers at
 * the same concurrency in the same round (or, failing that, the plain append
 * row at it): rows of one round ran minutes apart at most, so the pair sees
 * the same machine.
 */
export function settleWriterCosts(
  rows: DeliveryRowResult[],
  appendRows: readonly { op: string; concurrency: number; ops_per_s: number; lat_ms: LatencyStats }[],
): void {
  for (const row of rows) {
    const base =
      rows.find((r) => r.subscribers === 0 && r.concurrency === row.concurrency && r.round === row.round) ??
      appendRows.find((r) => r.op === 'append' && r.concurrency === row.concurrency);
    if (base === undefined || row.subscribers === 0) continue;
    row.writer_cost_pct = writerCostPct(row.ops_per_s, base.ops_per_s);
    const p99 = base.lat_ms.p99;
    row.e2e_p99_vs_write_p99 = row.e2e_ms.p99 === null || p99 === null || p99 === 0 ? null : Math.round((row.e2e_ms.p99 / p99) * 100) / 100;
  }
}

/** "5 % fewer than K=0", or "3 % more than K=0" when the row with subscribers happened to be faster. */
export function describeWriterCost(pct: number): string {
  return pct >= 0 ? `${pct} % fewer than K=0` : `${-pct} % more than K=0`;
}

/** " (round 2)" after a row's name from the second round on; nothing in the first. */
export function roundSuffix(r: { readonly round: number }): string {
  return r.round > 0 ? ` (round ${r.round + 1})` : '';
}

/** Delivered records per reply that carried any, over all subscribers: the batch the nodes send. */
function entriesPerReply(reports: readonly SubscriberReport[]): string {
  const replies = reports.reduce((sum, s) => sum + s.replies_with_entries, 0);
  const delivered = reports.reduce((sum, s) => sum + s.delivered, 0);
  return replies === 0 ? 'n/a' : (delivered / replies).toFixed(1);
}

export function describeDeliveryRow(r: DeliveryRowResult): string {
  const l = r.lat_ms;
  const e = r.e2e_ms;
  const writers =
    `deliver c=${r.concurrency} K=${r.subscribers}${roundSuffix(r)}: writers ${r.ops_per_s} appends/s` +
    `${r.writer_cost_pct === null ? '' : ` (${describeWriterCost(r.writer_cost_pct)})`}, write p50 ${l.p50} p99 ${l.p99} ms, errors ${r.errors}`;
  if (r.subscribers === 0) return writers;
  const coverage = r.coverage_problems_total === 0 ? 'covered ranges contiguous' : `${r.coverage_problems_total} COVERAGE PROBLEMS`;
  return (
    `${writers}; subscribers on [${r.subscriber_nodes.join(',')}] delivered ${JSON.stringify(r.delivered_per_s)}/s each` +
    ` in ${entriesPerReply(r.per_subscriber)} records per reply, ` +
    `e2e p50 ${e.p50} p90 ${e.p90} p99 ${e.p99} max ${e.max} ms, lag at end ${JSON.stringify(r.lag_at_end)}, ` +
    `undelivered after drain ${JSON.stringify(r.undelivered_after_drain)} of ${r.acked_total} acked (drain ${r.drain_ms} ms), ${coverage}`
  );
}
