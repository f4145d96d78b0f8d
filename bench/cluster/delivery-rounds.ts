/**
 * Delivery rows repeated in rounds (`--delivery-rounds N`): one row's cost to
 * the writers is the difference of two 10 s runs on a shared, noisy machine,
 * and on this VM the same tree's throughput moves by more than the 10 % the
 * goal allows. Each round runs every K once (in reverse order every other
 * round, so neither K always runs first); the goals are judged on the median
 * over rounds, and every round's figure is printed beside it.
 */
import type { DeliveryRowResult } from './delivery.js';
import { deliveryRowName } from './nats-compare.js';
import { median } from './stats.js';

/** The rows of one concurrency and subscriber count, one per round, with their positions in the run's delivery list. */
export interface DeliveryGroup {
  readonly name: string;
  readonly concurrency: number;
  readonly subscribers: number;
  readonly rows: readonly DeliveryRowResult[];
  /** Index of each row in the run's delivery list (where the NATS figures of that row are). */
  readonly at: readonly number[];
}

export function groupDeliveryRows(delivery: readonly DeliveryRowResult[]): DeliveryGroup[] {
  const groups = new Map<string, { concurrency: number; subscribers: number; rows: DeliveryRowResult[]; at: number[] }>();
  for (const [i, r] of delivery.entries()) {
    const name = deliveryRowName(r);
    const g = groups.get(name) ?? { concurrency: r.concurrency, subscribers: r.subscribers, rows: [], at: [] };
    g.rows.push(r);
    g.at.push(i);
    groups.set(name, g);
  }
  return [...groups].map(([name, g]) => ({ name, ...g }));
}

/** The median of the figures that were measured (null: none was), rounded to two decimals. */
export function medianOf(xs: readonly (number | null | undefined)[]): number | null {
  const m = median(xs.filter((x): x is number => x != null));
  return m === null ? null : Math.round(m * 100) / 100;
}

/** "4.2 %" for one round; "median 4.2 % over 5 rounds [3.1, 8, -2, 4.2, 6]" for several. */
export function describeOverRounds(values: readonly (number | null | undefined)[], unit: string): string {
  const m = medianOf(values);
  const show = (x: number | null | undefined): string => (x == null ? 'n/a' : String(x));
  if (values.length === 1) return `${show(m)}${unit}`;
  return `median ${show(m)}${unit} over ${values.length} rounds [${values.map(show).join(', ')}]`;
}

/** One line per subscriber count: writers/s, cost, e2e p99 and the NATS ratio in every round, and their medians. */
export function printRoundsTable(groups: readonly DeliveryGroup[], e2eP99RatioAt: (i: number) => number | null): void {
  if (!groups.some((g) => g.rows.length > 1)) return;
  console.error('| row | rounds | writers/s | vs K=0 % | e2e p99 ms | e2e p99 / write p99 (K=0) | e2e p99 raftlog/NATS |');
  console.error('| --- | --- | --- | --- | --- | --- | --- |');
  for (const g of groups) {
    const k0 = g.subscribers === 0;
    const cell = (xs: readonly (number | null | undefined)[]): string => describeOverRounds(xs, '');
    console.error(
      `| ${g.name} | ${g.rows.length} | ${cell(g.rows.map((r) => r.ops_per_s))} | ${k0 ? '-' : cell(g.rows.map((r) => r.writer_cost_pct))} | ` +
        `${k0 ? '-' : cell(g.rows.map((r) => r.e2e_ms.p99))} | ${k0 ? '-' : cell(g.rows.map((r) => r.e2e_p99_vs_write_p99))} | ` +
        `${k0 ? '-' : cell(g.at.map(e2eP99RatioAt))} |`,
    );
  }
  console.error('');
}
