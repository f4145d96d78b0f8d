import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { SeededRandom } from '../../src/raft/random.js';

const heartbeat = (leaderCommit: number) => ({ type: 'Heartbeat' as const, from: 'n3', to: 'n5', term: 463, leaderCommit, readContext: null });

describe('a heartbeat that claims a commit index past the end of the log', () => {
  it('on a member (it knows a configuration): its log lost acknowledged entries, and the core refuses to go on, naming the lost log', () => {
    const core = new RaftCore({ id: 'n5', random: new SeededRandom(1) }, new MemoryStorage({ voters: ['n3', 'n5', 'n1'] }));
    expect(() => core.step(heartbeat(37354))).toThrow(
      /told to commit index 37354, but its log ends at 0: .*was the log corrupted, truncated, or lost\?/,
    );
  });

  it('on a node that knows no configuration (an empty data dir waiting to be added): a message meant for an earlier process of its id, taken without a commit beyond the log', () => {
    // Seen in a soak: n5 removed, wiped and added again; a heartbeat n3 had queued for the old n5 reached the new one.
    const core = new RaftCore({ id: 'n5', random: new SeededRandom(1) }, new MemoryStorage({ voters: [] }));
    expect(() => core.step(heartbeat(37354))).not.toThrow();
    expect(core.status()).toMatchObject({ commitIndex: 0, term: 463, leader: 'n3' });
  });
});
