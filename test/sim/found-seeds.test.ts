import { describe, expect, it } from 'vitest';
import { formatFailure, runSeeds } from './batch.js';
import { realCore } from './default-core.js';

/**
 * Seeds outside the CI batch on which the simulator once found a bug, kept so
 * the bug stays fixed (`npm run sim -- --seed N --trace` shows the run).
 */
const FOUND: ReadonlyArray<{ seed: number; found: string }> = [
  {
    seed: 32131,
    found:
      'no progress after the faults: commit-only appends to followers with appends in flight were not answered, so long ' +
      'network delays made full pipelines look stalled and the leader kept restarting them',
  },
];

describe('seeds on which the simulator found a bug', () => {
  for (const { seed, found } of FOUND) {
    it(`seed ${seed} keeps every safety property and makes progress (found: ${found})`, () => {
      const summary = runSeeds({ start: seed, count: 1, coreFactory: realCore });
      const failure = summary.failures[0];
      if (failure !== undefined) expect.fail(formatFailure(failure));
      expect(summary.seedsRun).toBe(1);
    });
  }
});
