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

  it('on a node that knows no configuration (an empty data dir waiting to be added), from a leader that counts it as a voter: meant for an earlier process of its id, not answered, and nothing of it taken', () => {
    // Seen in a soak: n5 removed, wiped and started again; a heartbeat n3 had queued for the old n5 reached the new one.
    // Seen in the simulator (seed 951): a leader cut off from the rest, its configuration older than n5's removal,
    // met the new n5 alone; n5's answer to its heartbeat made a majority with the leader's own, and the leader
    // served a read from before entries the real majority had committed.
    const core = new RaftCore({ id: 'n5', random: new SeededRandom(1) }, new MemoryStorage({ voters: [] }));
    expect(() => core.step({ ...heartbeat(37354), readContext: 7 })).not.toThrow();
    core.step({ ...heartbeat(0), readContext: 8 });
    core.step({ type: 'AppendRequest', from: 'n3', to: 'n5', term: 463, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 });
    expect(core.takeOutput().messages).toEqual([]);
    expect(core.status()).toMatchObject({ commitIndex: 0, term: 0, leader: null });
  });

  it('on a node that knows no configuration, from a leader that adds it as a learner: answered when the commit index is within the log (0 at first)', () => {
    const core = new RaftCore({ id: 'n5', random: new SeededRandom(1) }, new MemoryStorage({ voters: [] }));
    core.step({ ...heartbeat(0), readContext: 7, toLearner: true });
    expect(core.takeOutput().messages).toEqual([{ type: 'HeartbeatResponse', from: 'n5', to: 'n3', term: 463, readContext: 7 }]);
    expect(core.status()).toMatchObject({ term: 463, leader: 'n3' });
  });

  it('on a node that knows no configuration, a learner heartbeat past the end of its log is not answered either (a late one meant for an earlier process of its id, removed as a learner)', () => {
    const core = new RaftCore({ id: 'n5', random: new SeededRandom(1) }, new MemoryStorage({ voters: [] }));
    expect(() => core.step({ ...heartbeat(37354), readContext: 7, toLearner: true })).not.toThrow();
    expect(core.takeOutput().messages).toEqual([]);
    expect(core.status()).toMatchObject({ commitIndex: 0 });
  });
});
