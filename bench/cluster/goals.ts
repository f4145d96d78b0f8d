/**
 * Issue 12's goals for the log as a product, judged on one run's figures:
 * ten subscribers cost the writers under 10 %; delivery p99 no worse than
 * JetStream's and under twice raftlog's own write p99; every subscriber gets
 * every acknowledged append; failover under 0.5 s with subscribers attached.
 */
import type { DeliveryRowResult } from './delivery.js';
import type { FailoverSummary } from './failover.js';
import type { NatsComparison } from './nats-compare.js';

export interface Goal {
  readonly goal: string;
  /** The row or measure it was judged on. */
  readonly row: string;
  /** The figure behind the verdict, with its unit. */
  readonly value: string;
  /** null: not measurable in this run (e.g. no baseline row). */
  readonly met: boolean | null;
}

const FAILOVER_LIMIT_MS = 500;
const WRITER_COST_LIMIT_PCT = 10;

export function judgeGoals(
  delivery: readonly DeliveryRowResult[],
  failover: FailoverSummary | { skipped: string } | null,
  nats: NatsComparison | null,
): Goal[] {
  const goals: Goal[] = [];
  for (const [i, r] of delivery.entries()) {
    if (r.subscribers === 0) continue;
    const row = `deliver c=${r.concurrency} K=${r.subscribers}`;
    if (r.subscribers >= 10) {
      goals.push({
        goal: `${r.subscribers} subscribers cost the writers under ${WRITER_COST_LIMIT_PCT} %`,
        row,
        value: r.writer_cost_pct === null ? 'no K=0 or append row at this concurrency' : `${r.writer_cost_pct} %`,
        met: r.writer_cost_pct === null ? null : r.writer_cost_pct < WRITER_COST_LIMIT_PCT,
      });
    }
    const q = nats?.delivery_ratios[i]?.e2e_p99_ratio ?? null;
    goals.push({
      goal: "delivery p99 no worse than JetStream's",
      row,
      value: q === null ? 'no NATS figure' : `raftlog/NATS e2e p99 ${q}`,
      met: q === null ? null : q <= 1,
    });
    goals.push({
      goal: "delivery p99 under 2x the writers' own p99 (K=0 row)",
      row,
      value: r.e2e_p99_vs_write_p99 === null ? 'no K=0 or append row at this concurrency' : `${r.e2e_p99_vs_write_p99}x`,
      met: r.e2e_p99_vs_write_p99 === null ? null : r.e2e_p99_vs_write_p99 < 2,
    });
    goals.push({
      goal: 'every subscriber gets every acknowledged append, ranges contiguous',
      row,
      value: `undelivered ${r.undelivered_total}, coverage problems ${r.coverage_problems_total}`,
      met: r.undelivered_total === 0 && r.coverage_problems_total === 0,
    });
  }
  if (failover !== null && 'summary' in failover && failover.subscribers > 0) {
    const m = failover.median_unavail_ms;
    goals.push({
      goal: `failover under ${FAILOVER_LIMIT_MS} ms with subscribers attached`,
      row: `failover (${failover.trials} trials, ${failover.subscribers} subscriber(s))`,
      value: m === null ? 'no trial recovered' : `median ${m} ms`,
      met: m === null ? false : m < FAILOVER_LIMIT_MS,
    });
    goals.push({
      goal: 'the failover subscriber loses nothing',
      row: 'failover',
      value: `undelivered ${failover.subscriber_undelivered}, coverage problems ${failover.subscriber_coverage_problems}`,
      met: failover.subscriber_undelivered === 0 && failover.subscriber_coverage_problems === 0,
    });
  }
  return goals;
}
