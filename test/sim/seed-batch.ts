import { describe, expect, it } from 'vitest';
import { formatFailure, runSeeds } from './batch.js';
import { realCore } from './default-core.js';

/**
 * Specifies the real core against seeds [first, first + count), in chunks so
 * that progress shows and each test stays well within its timeout. Seeds
 * alternate between 3 nodes (even) and 5 nodes (odd).
 */
export function describeSeedBatch(first: number, count: number, chunk: number): void {
  describe(`the real core under seeded faults, seeds ${first}..${first + count - 1}`, () => {
    for (let start = first; start < first + count; start += chunk) {
      const n = Math.min(chunk, first + count - start);
      it(`keeps every safety property and makes progress once faults stop (seeds ${start}..${start + n - 1})`, () => {
        const summary = runSeeds({ start, count: n, coreFactory: realCore });
        const failure = summary.failures[0];
        if (failure !== undefined) expect.fail(formatFailure(failure));
        expect(summary.seedsRun).toBe(n);
        // The runs must have exercised the cluster, not idled: elections, commits, crashes.
        expect(summary.totals.committed / n).toBeGreaterThan(20);
        expect(summary.totals.leadersElected / n).toBeGreaterThan(2);
        expect(summary.totals.crashes / n).toBeGreaterThan(2);
      });
    }
  });
}
