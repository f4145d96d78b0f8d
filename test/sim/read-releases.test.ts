/**
 * Regressions for a core bug the simulator found: a follower released every
 * request id in a ReadIndexResponse, including ones it was no longer waiting
 * for. A duplicated answer released a read twice (seed 0); after a restart, a
 * late answer to the old life released a new read that reused its id, at an
 * index older than writes already committed: a stale read (seed 395, with read
 * ids that start over in each life of a node). Both were found with
 * synchronous persistence, which they keep, so that they replay the runs that
 * exposed the bug.
 */
import { describe, expect, it } from 'vitest';
import { formatFailure } from './batch.js';
import { realCore } from './default-core.js';
import { runSimulation } from './simulation.js';

describe('reads released by a follower', () => {
  it('a duplicated ReadIndexResponse does not release a read a second time (seed 0)', () => {
    const result = runSimulation({ seed: 0, coreFactory: realCore, scenario: { asyncPersist: false } });
    expect(result.violation, result.violation === null ? '' : formatFailure(result)).toBeNull();
    expect(result.stats.readsReleased).toBeGreaterThan(0);
  });

  it('a restarted node whose read ids start over never serves a stale read (seed 395)', () => {
    const result = runSimulation({
      seed: 395,
      coreFactory: realCore,
      scenario: { readIds: 'per-node-life', asyncPersist: false },
    });
    expect(result.violation, result.violation === null ? '' : formatFailure(result)).toBeNull();
    expect(result.stats.readsReleased).toBeGreaterThan(0);
  });
});
