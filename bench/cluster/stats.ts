/** Latency statistics computed the way the etcd anchor computes them, so the two can be compared row by row. */

export interface LatencyStats {
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly p999: number | null;
  readonly max: number | null;
  readonly mean: number | null;
}

/** Rounded to µs: finer digits are noise and only make the JSON longer. */
const r3 = (x: number | null): number | null => (x === null ? null : Math.round(x * 1000) / 1000);
export const r1 = (x: number): number => Math.round(x * 10) / 10;

/**
 * Exact nearest-rank percentiles over every latency (ms): no histogram
 * buckets, so a p99.9 is one of the measured values, as in the anchor.
 */
export function latencyStats(latencies: ArrayLike<number>): LatencyStats {
  const a = Float64Array.from(latencies).sort(); // typed-array sort is numeric
  const n = a.length;
  const at = (q: number): number | null => (n === 0 ? null : (a[Math.min(n - 1, Math.max(0, Math.ceil((q / 100) * n) - 1))] ?? null));
  let sum = 0;
  for (const x of a) sum += x;
  return {
    p50: r3(at(50)),
    p90: r3(at(90)),
    p99: r3(at(99)),
    p999: r3(at(99.9)),
    max: r3(n === 0 ? null : (a[n - 1] ?? null)),
    mean: r3(n === 0 ? null : sum / n),
  };
}

export function median(xs: readonly number[]): number | null {
  const a = [...xs].sort((x, y) => x - y);
  if (a.length === 0) return null;
  const mid = a.length / 2;
  return a.length % 2 === 1 ? (a[(a.length - 1) / 2] as number) : ((a[mid - 1] as number) + (a[mid] as number)) / 2;
}
