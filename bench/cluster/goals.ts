/**
 * Issue 12's goals for the log as a product, judged on one run's figures:
 * ten subscribers cost the writers under 10 %; delivery p99 no worse than
 * JetStream's and under twice raftlog's own write p99; every subscriber gets
 * every acknowledged append; failover under 0.5 s with subscribers attached.
 * With delivery rows repeated in rounds, a figure's verdict is its median over
 * the rounds (each round's figure against the same round's baseline), and
 * delivery must be complete in every round.
 */
import type { DeliveryRowResult } from './delivery.js';
import { describeOverRounds, groupDeliveryRows, medianOf } from './delivery-rounds.js';
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
  for (const g of groupDeliveryRows(delivery)) {
    if (g.subscribers === 0) continue;
    const row = g.name;
    const costs = g.rows.map((r) => r.writer_cost_pct);
    const cost = medianOf(costs);
    if (g.subscribers >= 10) {
      goals.push({
        goal: `${g.subscribers} subscribers cost the writers under ${WRITER_COST_LIMIT_PCT} %`,
        row,
        value: cost === null ? 'no K=0 or append row at this concurrency' : describeOverRounds(costs, ' %'),
        met: cost === null ? null : cost < WRITER_COST_LIMIT_PCT,
      });
    }
    const natsRatios = g.at.map((i) => nats?.delivery_ratios[i]?.e2e_p99_ratio ?? null);
    const q = medianOf(natsRatios);
    goals.push({
      goal: "delivery p99 no worse than JetStream's",
      row,
      value: q === null ? 'no NATS figure' : `raftlog/NATS e2e p99 ${describeOverRounds(natsRatios, '')}`,
      met: q === null ? null : q <= 1,
    });
    const own = g.rows.map((r) => r.e2e_p99_vs_write_p99);
    const v = medianOf(own);
    goals.push({
      goal: "delivery p99 under 2x the writers' own p99 (K=0 row)",
      row,
      value: v === null ? 'no K=0 or append row at this concurrency' : describeOverRounds(own, 'x'),
      met: v === null ? null : v < 2,
    });
    const undelivered = g.rows.reduce((n, r) => n + r.undelivered_total, 0);
    const problems = g.rows.reduce((n, r) => n + r.coverage_problems_total, 0);
    goals.push({
      goal: 'every subscriber gets every acknowledged append, ranges contiguous',
      row,
      value: `undelivered ${undelivered}, coverage problems ${problems}${g.rows.length > 1 ? ` (all ${g.rows.length} rounds)` : ''}`,
      met: undelivered === 0 && problems === 0,
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
