import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { VoteRequest } from '../../src/raft/types.js';
import { InstantCluster } from '../support/instant-cluster.js';

/*
 * Seen in a 20-minute soak (seed 78): voters n4 n3 n2 became n4 n3 n1 n5 and
 * then n3 n1 n5, committed each time without n3, which was down or cut off and
 * never heard of them. n4, removed, came back as a new node with an empty
 * data dir, waiting to be added. n3 then campaigned in its stale
 * configuration n4 n3 n2: its own vote and the empty n4's made a majority,
 * and n3 led the old configuration, rolling back committed writes (five keys
 * not linearizable).
 */
const staleCandidate = (preVote: boolean): VoteRequest => ({
  type: 'VoteRequest',
  from: 'n3',
  to: 'n4',
  term: 41,
  preVote,
  lastLogIndex: 19_755,
  lastLogTerm: 38,
  leadershipTransfer: false,
});

function answer(core: RaftCore, request: VoteRequest) {
  core.step(request);
  return core.takeOutput().messages.find((message) => message.type === 'VoteResponse');
}

describe('a vote request to a node whose data dir is empty', () => {
  it('a node that knows no configuration (waiting to be added) grants neither a pre-vote nor a vote, however long the candidate log is', () => {
    const joiner = new RaftCore({ id: 'n4', random: new SeededRandom(1), preVote: true }, new MemoryStorage({ voters: [] }));
    expect(answer(joiner, staleCandidate(true))).toMatchObject({ to: 'n3', granted: false });
    expect(answer(joiner, staleCandidate(false))).toMatchObject({ to: 'n3', granted: false });
    expect(joiner.status().votedFor).toBeNull();
  });

  it('a founding member, empty too but started with its configuration, still votes (a new cluster must elect its first leader)', () => {
    const founder = new RaftCore({ id: 'n4', random: new SeededRandom(1) }, new MemoryStorage({ voters: ['n2', 'n3', 'n4'] }));
    expect(answer(founder, staleCandidate(false))).toMatchObject({ to: 'n3', granted: true });
  });
});

describe('promoting a learner', () => {
  it('is refused until the learner holds the configuration entry that lists it, so that no voter knows no configuration', () => {
    const cluster = new InstantCluster(['n1']);
    const leader = cluster.waitForLeader();
    const added = leader.proposeConfigChange({ type: 'add-learner', id: 'n2', address: 'n2:7000' });
    expect(added.accepted).toBe(true);
    cluster.settle();
    const configIndex = added.accepted ? added.index : 0;
    const term = leader.status().term;
    // The learner answers, caught up to just before its own addition (the entry was lost on the way, say).
    const answer = (matchIndex: number) => {
      leader.step({ type: 'AppendResponse', from: 'n2', to: 'n1', term, success: true, matchIndex, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 });
      cluster.settle();
    };
    answer(configIndex - 1);
    expect(leader.proposeConfigChange({ type: 'promote', id: 'n2' })).toMatchObject({
      accepted: false,
      reason: 'learner-behind',
      message: expect.stringMatching(/does not hold the configuration that lists it yet \(it holds up to \d+, the configuration is at \d+\)/),
    });
    answer(configIndex);
    expect(leader.proposeConfigChange({ type: 'promote', id: 'n2' }).accepted).toBe(true);
  });
});
