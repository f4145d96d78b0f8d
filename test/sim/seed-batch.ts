import { describe, expect, it } from 'vitest';
import { type BatchSummary, formatFailure } from './batch.js';
import type { Scenario } from './scenario.js';
import { runSeedsInProcesses } from './seed-processes.js';

export interface SeedBatchOptions {
  /** Replaces parts of every seed's scenario (e.g. forces asynchronous persistence on). */
  readonly scenario?: Partial<Scenario>;
  /** Names the batch in the test titles. */
  readonly label?: string;
  /** Further requirements on each chunk's summary. */
  readonly expectChunk?: (summary: BatchSummary) => void;
}

/**
 * Specifies the real core against seeds [first, first + count), in chunks so
 * that progress shows and each test stays well within its timeout. Seeds
 * alternate between 3 nodes (even) and 5 nodes (odd); persistence is
 * asynchronous in the seeds that choose it, unless `options.scenario` says.
 * The seeds of a chunk share the machine's cores (seed-processes.ts).
 */
export function describeSeedBatch(first: number, count: number, chunk: number, options: SeedBatchOptions = {}): void {
  const label = options.label === undefined ? '' : `, ${options.label}`;
  describe(`the real core under seeded faults${label}, seeds ${first}..${first + count - 1}`, () => {
    for (let start = first; start < first + count; start += chunk) {
      const n = Math.min(chunk, first + count - start);
      it(`keeps every safety property and makes progress once faults stop (seeds ${start}..${start + n - 1})`, async () => {
        const summary = await runSeedsInProcesses({
          start,
          count: n,
          ...(options.scenario !== undefined ? { scenario: options.scenario } : {}),
        });
        const failure = summary.failures[0];
        if (failure !== undefined) expect.fail(formatFailure(failure));
        expect(summary.seedsRun).toBe(n);
        // The runs must have exercised the cluster, not idled: elections, commits, crashes.
        expect(summary.totals.committed / n).toBeGreaterThan(20);
        expect(summary.totals.leadersElected / n).toBeGreaterThan(2);
        expect(summary.totals.crashes / n).toBeGreaterThan(2);
        // Snapshots, compaction and InstallSnapshot (with transfers lost) happened, not just could have.
        const { stats } = summary.totals;
        expect(stats.snapshotsTaken).toBeGreaterThan(0);
        expect(stats.snapshotsInstalled).toBeGreaterThan(0);
        expect(stats.snapshotsLost).toBeGreaterThan(0);
        expect(stats.restartsFromSnapshot).toBeGreaterThan(0);
        // Membership changed under the faults too: learners added, promoted, members (leaders among them) removed.
        expect(stats.configChangesAccepted).toBeGreaterThan(0);
        expect(stats.leadersRemoved).toBeGreaterThan(0);
        // Removed members came back under their old ids with fresh disks, some while a stale voter still listed them.
        expect(stats.freshDiskRejoins).toBeGreaterThan(0);
        expect(stats.rejoinsWithStaleVoter).toBeGreaterThan(0);
        expect(stats.removedIdsRefused).toBeGreaterThan(0);
        expect(stats.votersStranded).toBeGreaterThan(0);
        // Senders held commit notices back by the nodes' peer-link rule, and appends or newer notices took their place.
        expect(stats.noticesHeld).toBeGreaterThan(0);
        expect(stats.noticesFolded).toBeGreaterThan(0);
        options.expectChunk?.(summary);
      });
    }
  });
}
