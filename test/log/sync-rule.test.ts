/**
 * save()'s sync rule: only a write that moves nothing but the commit index
 * goes to LevelDB without fsync (a restarted node relearns its commit index
 * from the leader); anything Raft needs durable is fsync'd.
 */
import { describe, expect, it } from 'vitest';
import { changesOnlyCommit, type SnapshotFileRef } from '../../src/log/level-storage.js';
import type { HardState } from '../../src/raft/types.js';
import { entry } from './log-fixtures.js';

const stored: HardState = { term: 4, votedFor: 'n2', commit: 10 };
const snapshot: SnapshotFileRef = {
  meta: { index: 12, term: 4, config: { voters: ['n1', 'n2', 'n3'] } },
  file: 'snap-12.snap',
  bytes: 1,
  sha256: '00',
};

describe('changesOnlyCommit', () => {
  it('holds for a write of a hard state that differs from the stored one in its commit index alone', () => {
    expect(changesOnlyCommit(stored, { ...stored, commit: 12 }, [], null)).toBe(true);
  });

  it.each<[string, HardState | null, boolean, SnapshotFileRef | null]>([
    ['a new term', { term: 5, votedFor: null, commit: 12 }, false, null],
    ['a new vote', { term: 4, votedFor: 'n3', commit: 10 }, false, null],
    ['entries', { ...stored, commit: 12 }, true, null],
    ['a snapshot', { ...stored, commit: 12 }, false, snapshot],
    ['entries without a hard state', null, true, null],
  ])("fails for a write with %s: it is fsync'd", (_, hardState, withEntries, ref) => {
    expect(changesOnlyCommit(stored, hardState, withEntries ? [entry(11, 4)] : [], ref)).toBe(false);
  });
});
