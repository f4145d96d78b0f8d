/** raftlog's rows and failover set against the etcd anchor's, measured in the same run. */
import type { EtcdFailover, EtcdRow, EtcdRowNotMeasured, NotMeasured } from './etcd-anchor.js';
import type { FailoverSummary } from './failover.js';
import type { RowResult } from './load.js';

export interface RowRatio {
  readonly row: string;
  /** raftlog ops/s ÷ etcd ops/s: above 1, raftlog serves more. */
  readonly ops_ratio: number | null;
  /** raftlog p99 ÷ etcd p99: below 1, raftlog's tail is shorter. */
  readonly p99_ratio: number | null;
}

export interface EtcdComparison {
  readonly dir: string;
  readonly endpoints: string[];
  /** In the order of raftlog's rows, one each. */
  readonly rows: (EtcdRow | EtcdRowNotMeasured)[];
  readonly ratios: RowRatio[];
  readonly failover: EtcdFailover | NotMeasured;
  /** raftlog's median unavailability ÷ etcd's: below 1, raftlog fails over faster. */
  readonly failover_ratio: number | null;
}

const rowName = (r: { readonly op: string; readonly concurrency: number }): string => `${r.op} c=${r.concurrency}`;

function ratio(raftlog: number | null | undefined, etcd: number | null | undefined): number | null {
  if (raftlog == null || etcd == null || etcd === 0) return null;
  return Math.round((raftlog / etcd) * 100) / 100;
}

type RaftlogFailover = FailoverSummary | { skipped: string } | null;

const medianUnavail = (f: RaftlogFailover): number | null => (f !== null && 'median_unavail_ms' in f ? f.median_unavail_ms : null);

export function isMeasured(r: EtcdRow | EtcdRowNotMeasured): r is EtcdRow;
export function isMeasured(r: EtcdFailover | NotMeasured): r is EtcdFailover;
export function isMeasured(r: object): boolean {
  return !('na' in r);
}

export function compare(
  raftlogRows: readonly RowResult[],
  etcdRows: readonly (EtcdRow | EtcdRowNotMeasured)[],
  raftlogFailover: RaftlogFailover,
  etcdFailover: EtcdFailover | NotMeasured,
): Pick<EtcdComparison, 'ratios' | 'failover_ratio'> {
  const ratios = raftlogRows.map((r, i) => {
    const e = etcdRows[i];
    const measured = e !== undefined && isMeasured(e) ? e : null;
    return { row: rowName(r), ops_ratio: ratio(r.ops_per_s, measured?.ops_per_s), p99_ratio: ratio(r.lat_ms.p99, measured?.lat_ms.p99) };
  });
  const etcdMedian = isMeasured(etcdFailover) ? etcdFailover.median_unavail_ms : null;
  return { ratios, failover_ratio: ratio(medianUnavail(raftlogFailover), etcdMedian) };
}

const show = (x: number | null | undefined): string => (x == null ? 'n/a' : String(x));

export function printComparison(raftlogRows: readonly RowResult[], c: EtcdComparison, raftlogFailover: RaftlogFailover): void {
  console.error('| row | raftlog ops/s | etcd ops/s | ratio | raftlog p50/p99 ms | etcd p50/p99 ms | p99 ratio |');
  console.error('| --- | --- | --- | --- | --- | --- | --- |');
  raftlogRows.forEach((r, i) => {
    const e = c.rows[i];
    const measured = e !== undefined && isMeasured(e) ? e : null;
    const q = c.ratios[i];
    console.error(
      `| ${rowName(r)} | ${r.ops_per_s} | ${show(measured?.ops_per_s)} | ${show(q?.ops_ratio)} | ` +
        `${show(r.lat_ms.p50)} / ${show(r.lat_ms.p99)} | ${measured ? `${show(measured.lat_ms.p50)} / ${show(measured.lat_ms.p99)}` : 'n/a'} | ` +
        `${show(q?.p99_ratio)} |`,
    );
  });
  console.error('ratio = raftlog / etcd: ops/s above 1 and p99 below 1 favour raftlog.');
  for (const e of c.rows) if (!isMeasured(e)) console.error(`etcd ${rowName(e)}: n/a (${e.na})`);
  if (!isMeasured(c.failover)) console.error(`failover ratio: n/a (etcd: ${c.failover.na})`);
  else {
    console.error(
      `failover median unavailability: raftlog ${show(medianUnavail(raftlogFailover))} ms, etcd ${show(c.failover.median_unavail_ms)} ms, ` +
        `ratio ${show(c.failover_ratio)}`,
    );
  }
  console.error('');
}
