/**
 * raftlog's append rows, delivery rows and failover set against the NATS
 * JetStream anchor's, measured in the same run. JetStream acknowledges
 * before fsync, raftlog after it: every ratio carries that note.
 */
import { type DeliveryRowResult, roundSuffix } from './delivery.js';
import type { NotMeasured } from './etcd-anchor.js';
import type { FailoverSummary } from './failover.js';
import type { RowResult } from './load.js';
import { NATS_DURABILITY_NOTE, type NatsAck, type NatsFailover, type NatsRow } from './nats-anchor.js';

export interface NatsRowRatio {
  readonly row: string;
  /** raftlog ops/s ÷ NATS ops/s (writers): above 1, raftlog writes more. */
  readonly ops_ratio: number | null;
  /** raftlog write p99 ÷ NATS publish p99: below 1, raftlog's tail is shorter. */
  readonly p99_ratio: number | null;
}

export interface NatsDeliveryRatio extends NatsRowRatio {
  /** Mean delivered/s per subscriber, raftlog ÷ NATS. */
  readonly delivered_per_s_ratio: number | null;
  /** Send → delivery, raftlog ÷ NATS: below 1, raftlog delivers sooner. */
  readonly e2e_p50_ratio: number | null;
  readonly e2e_p99_ratio: number | null;
}

export interface NatsComparison {
  readonly dir: string;
  readonly endpoints: string[];
  readonly note: typeof NATS_DURABILITY_NOTE;
  /** How the anchor's consumers acknowledged each message. */
  readonly consumer_ack: NatsAck;
  /** In the order of raftlog's load rows, one each (only append rows are measured on NATS). */
  readonly rows: (NatsRow | NotMeasured)[];
  readonly ratios: NatsRowRatio[];
  /** In the order of raftlog's delivery rows. */
  readonly delivery: (NatsRow | NotMeasured)[];
  readonly delivery_ratios: NatsDeliveryRatio[];
  readonly failover: NatsFailover | NotMeasured;
  /** raftlog's median unavailability ÷ NATS's: below 1, raftlog fails over faster. */
  readonly failover_ratio: number | null;
}

export const loadRowName = (r: { readonly op: string; readonly concurrency: number }): string => `${r.op} c=${r.concurrency}`;
export const deliveryRowName = (r: { readonly concurrency: number; readonly subscribers: number }): string =>
  `deliver c=${r.concurrency} K=${r.subscribers}`;

export function ratio(raftlog: number | null | undefined, other: number | null | undefined): number | null {
  if (raftlog == null || other == null || other === 0) return null;
  return Math.round((raftlog / other) * 100) / 100;
}

export function isNatsMeasured<T extends object>(r: T | NotMeasured): r is T {
  return !('na' in r);
}

const mean = (xs: readonly number[] | undefined): number | null =>
  xs === undefined || xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;

type RaftlogFailover = FailoverSummary | { skipped: string } | null;
const medianUnavail = (f: RaftlogFailover): number | null => (f !== null && 'median_unavail_ms' in f ? f.median_unavail_ms : null);

export function compareWithNats(
  rows: readonly RowResult[],
  natsRows: readonly (NatsRow | NotMeasured)[],
  delivery: readonly DeliveryRowResult[],
  natsDelivery: readonly (NatsRow | NotMeasured)[],
  failover: RaftlogFailover,
  natsFailover: NatsFailover | NotMeasured,
): Pick<NatsComparison, 'ratios' | 'delivery_ratios' | 'failover_ratio'> {
  const measured = (r: NatsRow | NotMeasured | undefined): NatsRow | null => (r !== undefined && isNatsMeasured(r) ? r : null);
  const ratios = rows.map((r, i) => {
    const n = measured(natsRows[i]);
    return { row: loadRowName(r), ops_ratio: ratio(r.ops_per_s, n?.ops_per_s), p99_ratio: ratio(r.lat_ms.p99, n?.lat_ms.p99) };
  });
  const deliveryRatios = delivery.map((r, i) => {
    const n = measured(natsDelivery[i]);
    return {
      row: deliveryRowName(r),
      ops_ratio: ratio(r.ops_per_s, n?.ops_per_s),
      p99_ratio: ratio(r.lat_ms.p99, n?.lat_ms.p99),
      delivered_per_s_ratio: r.subscribers === 0 ? null : ratio(mean(r.delivered_per_s), mean(n?.delivered_per_s)),
      e2e_p50_ratio: r.subscribers === 0 ? null : ratio(r.e2e_ms.p50, n?.e2e_ms?.p50),
      e2e_p99_ratio: r.subscribers === 0 ? null : ratio(r.e2e_ms.p99, n?.e2e_ms?.p99),
    };
  });
  const natsMedian = isNatsMeasured(natsFailover) ? natsFailover.median_unavail_ms : null;
  return { ratios, delivery_ratios: deliveryRatios, failover_ratio: ratio(medianUnavail(failover), natsMedian) };
}

const show = (x: number | null | undefined): string => (x == null ? 'n/a' : String(x));
const list = (xs: readonly number[] | undefined): string => (xs === undefined ? 'n/a' : JSON.stringify(xs));

export function printNatsComparison(
  rows: readonly RowResult[],
  delivery: readonly DeliveryRowResult[],
  c: NatsComparison,
  failover: RaftlogFailover,
): void {
  console.error(`raftlog vs NATS JetStream: ${NATS_DURABILITY_NOTE}; raftlog acknowledges after fsync on a majority.`);
  const appendRows = rows.map((r, i) => [r, c.rows[i], c.ratios[i]] as const).filter(([r]) => r.op === 'append');
  if (appendRows.length > 0) {
    console.error('| row | raftlog appends/s | NATS publish/s | ratio | raftlog p50/p99 ms | NATS p50/p99 ms | p99 ratio |');
    console.error('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [r, n, q] of appendRows) {
      const m = n !== undefined && isNatsMeasured(n) ? n : null;
      console.error(
        `| ${loadRowName(r)} | ${r.ops_per_s} | ${show(m?.ops_per_s)} | ${show(q?.ops_ratio)} | ` +
          `${show(r.lat_ms.p50)} / ${show(r.lat_ms.p99)} | ${m ? `${show(m.lat_ms.p50)} / ${show(m.lat_ms.p99)}` : 'n/a'} | ${show(q?.p99_ratio)} |`,
      );
    }
  }
  if (delivery.length > 0) {
    console.error(
      `| row | raftlog writers/s | NATS publish/s | ratio | delivered/s each: raftlog | NATS (${c.consumer_ack} acks) | ` +
        'e2e p50/p99 ms: raftlog | NATS | e2e p99 ratio | lag at end: raftlog | NATS | undelivered: raftlog | NATS |',
    );
    console.error('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    delivery.forEach((r, i) => {
      const n = c.delivery[i];
      const m = n !== undefined && isNatsMeasured(n) ? n : null;
      const q = c.delivery_ratios[i];
      const k0 = r.subscribers === 0;
      console.error(
        `| ${deliveryRowName(r)}${roundSuffix(r)} | ${r.ops_per_s} | ${show(m?.ops_per_s)} | ${show(q?.ops_ratio)} | ` +
          `${k0 ? '-' : list(r.delivered_per_s)} | ${k0 ? '-' : list(m?.delivered_per_s)} | ` +
          `${k0 ? '-' : `${show(r.e2e_ms.p50)} / ${show(r.e2e_ms.p99)}`} | ${k0 ? '-' : `${show(m?.e2e_ms?.p50)} / ${show(m?.e2e_ms?.p99)}`} | ` +
          `${show(q?.e2e_p99_ratio)} | ${k0 ? '-' : list(r.lag_at_end)} | ${k0 ? '-' : list(m?.lag_at_end)} | ` +
          `${k0 ? '-' : list(r.undelivered_after_drain)} | ${k0 ? '-' : list(m?.undelivered_after_drain)} |`,
      );
    });
  }
  console.error('ratio = raftlog / NATS: ops/s above 1 and latency below 1 favour raftlog.');
  for (const [i, n] of c.rows.entries()) {
    const r = rows[i];
    if (r !== undefined && r.op === 'append' && !isNatsMeasured(n)) console.error(`NATS ${loadRowName(r)}: n/a (${n.na})`);
  }
  for (const [i, n] of c.delivery.entries()) {
    const r = delivery[i];
    if (r !== undefined && !isNatsMeasured(n)) console.error(`NATS ${deliveryRowName(r)}: n/a (${n.na})`);
  }
  if (!isNatsMeasured(c.failover)) console.error(`failover ratio: n/a (NATS: ${c.failover.na})`);
  else {
    console.error(
      `failover median unavailability: raftlog ${show(medianUnavail(failover))} ms, NATS stream leader ` +
        `${show(c.failover.median_unavail_ms)} ms, ratio ${show(c.failover_ratio)}`,
    );
  }
  console.error('');
}
