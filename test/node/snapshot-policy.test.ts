import { describe, expect, it } from 'vitest';
import { AUTO_SNAPSHOTS, type SnapshotPolicy, snapshotDue } from '../../src/node/node-snapshots.js';

const MiB = 1024 * 1024;
const auto: SnapshotPolicy = { everyEntries: 'auto', retainEntries: 5_000 };
const every = (n: number): SnapshotPolicy => ({ everyEntries: n, retainEntries: 5_000 });

describe('when a node takes its next snapshot', () => {
  it('--snapshot-entries N: once N entries were applied since the last one, whatever their bytes', () => {
    expect(snapshotDue(every(40), { entries: 39, bytes: 10 * MiB }, 1)).toBe(false);
    expect(snapshotDue(every(40), { entries: 40, bytes: 1 }, 10 * MiB)).toBe(true);
  });

  it('--snapshot-entries 0: never', () => {
    expect(snapshotDue(every(0), { entries: 10_000_000, bytes: 10_000 * MiB }, 0)).toBe(false);
  });

  describe('auto (the default)', () => {
    it('the first snapshot comes at 10,000 entries, as there is no snapshot to measure the log against', () => {
      expect(AUTO_SNAPSHOTS.minEntries).toBe(10_000);
      expect(snapshotDue(auto, { entries: 9_999, bytes: 64 * MiB }, 0)).toBe(false);
      expect(snapshotDue(auto, { entries: 10_000, bytes: 1 }, 0)).toBe(true);
    });

    it('after a 1 MiB snapshot, not before the log since it holds 4 MiB: snapshots cost at most a quarter of the log writes', () => {
      expect(snapshotDue(auto, { entries: 30_000, bytes: 4 * MiB - 1 }, MiB)).toBe(false);
      expect(snapshotDue(auto, { entries: 30_000, bytes: 4 * MiB }, MiB)).toBe(true);
    });

    it('a small state still waits for 10,000 entries', () => {
      expect(snapshotDue(auto, { entries: 9_999, bytes: MiB }, 100)).toBe(false);
    });

    it('a large state does not let the log (held in memory) grow past 100,000 entries or 64 MiB', () => {
      const large = 1024 * MiB;
      expect(snapshotDue(auto, { entries: 99_999, bytes: 64 * MiB - 1 }, large)).toBe(false);
      expect(snapshotDue(auto, { entries: 100_000, bytes: MiB }, large)).toBe(true);
      expect(snapshotDue(auto, { entries: 20_000, bytes: 64 * MiB }, large)).toBe(true);
    });
  });
});
