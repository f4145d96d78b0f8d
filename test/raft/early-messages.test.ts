import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { RaftOutput } from '../../src/raft/types.js';
import { text } from '../support/instant-cluster.js';

const ids = ['n1', 'n2', 'n3'];

/** Takes one output, stores it as a caller would, and acknowledges it. */
function carryOut(core: RaftCore, storage: MemoryStorage): RaftOutput {
  const out = core.takeOutput();
  storage.save(out.hardState, out.entries);
  core.persisted(out);
  return out;
}

function electedLeader(): { leader: RaftCore; storage: MemoryStorage } {
  const storage = new MemoryStorage({ voters: ids });
  const leader = new RaftCore({ id: 'n1', random: new SeededRandom(3), preVote: false }, storage);
  while (leader.status().role !== 'candidate') leader.tick();
  const campaign = carryOut(leader, storage);
  // A candidate's vote requests report its new term and self-vote: they wait for the write.
  expect(campaign.hardState).toMatchObject({ term: 1, votedFor: 'n1' });
  expect(campaign.earlyMessages).toEqual([]);
  expect(campaign.messages.filter((m) => m.type === 'VoteRequest')).toHaveLength(2);
  leader.step({ type: 'VoteResponse', from: 'n2', to: 'n1', term: 1, preVote: false, granted: true });
  return { leader, storage };
}

describe('messages a leader may send before its own write completes (dissertation §10.2.1)', () => {
  it("a leader's appends of entries it has not stored yet are early messages", () => {
    const { leader, storage } = electedLeader();
    carryOut(leader, storage);
    for (const from of ['n2', 'n3']) {
      leader.step({ type: 'AppendResponse', from, to: 'n1', term: 1, success: true, matchIndex: 1, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 });
    }
    carryOut(leader, storage);
    leader.propose(text('x'));
    const out = leader.takeOutput();
    expect(out.entries.map((e) => e.index)).toEqual([2]);
    const appends = out.earlyMessages.filter((m) => m.type === 'AppendRequest');
    expect(appends.map((m) => m.to).sort()).toEqual(['n2', 'n3']);
    expect(out.messages.filter((m) => m.type === 'AppendRequest')).toEqual([]);
  });

  it("the leader's own unstored copy does not count: one follower's ack of a fresh entry commits nothing", () => {
    const { leader, storage } = electedLeader();
    carryOut(leader, storage);
    leader.step({ type: 'AppendResponse', from: 'n2', to: 'n1', term: 1, success: true, matchIndex: 1, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 });
    carryOut(leader, storage);
    leader.propose(text('x'));
    const out = leader.takeOutput(); // the write of index 2 is in flight
    leader.step({ type: 'AppendResponse', from: 'n2', to: 'n1', term: 1, success: true, matchIndex: 2, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 });
    expect(leader.status().commitIndex).toBe(1);
    storage.save(out.hardState, out.entries);
    leader.persisted(out);
    expect(leader.status().commitIndex).toBe(2);
  });

  it("a follower's acknowledgement and a vote always wait for the write", () => {
    const storage = new MemoryStorage({ voters: ids });
    const follower = new RaftCore({ id: 'n2', random: new SeededRandom(4), preVote: false }, storage);
    follower.step({ type: 'VoteRequest', from: 'n1', to: 'n2', term: 1, preVote: false, leadershipTransfer: false, lastLogIndex: 0, lastLogTerm: 0 });
    const vote = carryOut(follower, storage);
    expect(vote.earlyMessages).toEqual([]);
    expect(vote.messages).toEqual([expect.objectContaining({ type: 'VoteResponse', granted: true })]);
    follower.step({
      type: 'AppendRequest',
      from: 'n1',
      to: 'n2',
      term: 1,
      prevLogIndex: 0,
      prevLogTerm: 0,
      entries: [{ index: 1, term: 1, kind: 'noop', data: new Uint8Array() }],
      leaderCommit: 0,
    });
    const ack = follower.takeOutput();
    expect(ack.earlyMessages).toEqual([]);
    expect(ack.messages).toEqual([expect.objectContaining({ type: 'AppendResponse', success: true, matchIndex: 1 })]);
  });
});
