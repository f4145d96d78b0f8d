import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { VoteRequest } from '../../src/raft/types.js';
import { InstantCluster } from '../support/instant-cluster.js';

const ids = ['n1', 'n2', 'n3'];

describe('leader election', () => {
  it('a fresh 3-node cluster elects exactly one leader, which commits a no-op of its term everywhere', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const { term } = leader.status();
    expect(cluster.leaders()).toHaveLength(1);
    for (const id of ids) {
      const node = cluster.node(id);
      expect(node.core.status().leader).toBe(leader.id);
      expect(node.applied.map((e) => [e.kind, e.term])).toEqual([['noop', term]]);
    }
  });

  it('a single-node cluster elects itself and commits without peers', () => {
    const cluster = new InstantCluster(['solo']);
    const leader = cluster.waitForLeader();
    expect(leader.id).toBe('solo');
    const result = leader.propose(new Uint8Array([1]));
    expect(result.accepted).toBe(true);
    cluster.settle();
    expect(cluster.node('solo').applied.map((e) => e.kind)).toEqual(['noop', 'command']);
  });

  it('a vote is in the same output as the hard state that records it, so it is persisted before it is sent', () => {
    const storage = new MemoryStorage({ voters: ids });
    const voter = new RaftCore({ id: 'n2', random: new SeededRandom(1) }, storage);
    const request: VoteRequest = {
      type: 'VoteRequest',
      from: 'n1',
      to: 'n2',
      term: 1,
      preVote: false,
      lastLogIndex: 0,
      lastLogTerm: 0,
      leadershipTransfer: false,
    };
    voter.step(request);
    const output = voter.takeOutput();
    expect(output.hardState).toMatchObject({ term: 1, votedFor: 'n1' });
    expect(output.messages).toEqual([expect.objectContaining({ type: 'VoteResponse', granted: true, to: 'n1' })]);
  });

  it('a node votes at most once per term, also after a restart from its persisted state', () => {
    const storage = new MemoryStorage({ voters: ids });
    const request = (from: string): VoteRequest => ({
      type: 'VoteRequest',
      from,
      to: 'n2',
      term: 1,
      preVote: false,
      lastLogIndex: 0,
      lastLogTerm: 0,
      leadershipTransfer: false,
    });
    const first = new RaftCore({ id: 'n2', random: new SeededRandom(1) }, storage);
    first.step(request('n1'));
    const output = first.takeOutput();
    storage.save(output.hardState, output.entries);
    first.persisted(output);

    const restarted = new RaftCore({ id: 'n2', random: new SeededRandom(2) }, storage);
    restarted.step(request('n3'));
    const reply = restarted.takeOutput().messages[0];
    expect(reply).toMatchObject({ type: 'VoteResponse', to: 'n3', granted: false });
  });

  it('refuses a vote to a candidate whose log is behind', () => {
    const cluster = new InstantCluster(ids);
    cluster.waitForLeader();
    const storage = cluster.node('n2').storage;
    const voter = new RaftCore({ id: 'n2', random: new SeededRandom(3) }, storage);
    voter.step({
      type: 'VoteRequest',
      from: 'n3',
      to: 'n2',
      term: 99,
      preVote: false,
      lastLogIndex: 0,
      lastLogTerm: 0,
      leadershipTransfer: false,
    });
    expect(voter.takeOutput().messages[0]).toMatchObject({ type: 'VoteResponse', granted: false, term: 99 });
  });
});

describe('PreVote', () => {
  it('a partitioned follower keeps its term while it cannot win, and does not depose the leader when it returns', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const term = leader.status().term;
    const follower = ids.find((id) => id !== leader.id) as string;
    cluster.isolate(follower);
    cluster.tick(200);
    expect(cluster.core(follower).status().term).toBe(term);
    expect(cluster.core(follower).status().role).toBe('pre-candidate');
    cluster.heal();
    cluster.tick(30);
    expect(leader.status()).toMatchObject({ role: 'leader', term });
    expect(cluster.core(follower).status()).toMatchObject({ role: 'follower', leader: leader.id, term });
  });

  it('without PreVote, the same partitioned follower inflates its term', () => {
    const cluster = new InstantCluster(ids, { preVote: false, checkQuorum: false });
    const leader = cluster.waitForLeader();
    const follower = ids.find((id) => id !== leader.id) as string;
    cluster.isolate(follower);
    cluster.tick(200);
    expect(cluster.core(follower).status().term).toBeGreaterThan(leader.status().term + 3);
  });
});

describe('CheckQuorum', () => {
  it('a leader cut off from the majority steps down within two election timeouts, and the majority elects a new one', () => {
    const cluster = new InstantCluster(ids, { electionTicks: 10 });
    const leader = cluster.waitForLeader();
    cluster.isolate(leader.id);
    cluster.tick(20);
    expect(leader.status().role).not.toBe('leader');
    const others = ids.filter((id) => id !== leader.id);
    cluster.tick(60, others);
    const newLeaders = others.map((id) => cluster.core(id).status()).filter((s) => s.role === 'leader');
    expect(newLeaders).toHaveLength(1);
  });

  it('with CheckQuorum off, the isolated leader keeps believing it leads', () => {
    const cluster = new InstantCluster(ids, { checkQuorum: false });
    const leader = cluster.waitForLeader();
    cluster.isolate(leader.id);
    cluster.tick(100);
    expect(leader.status().role).toBe('leader');
  });

  it('followers that hear from a live leader ignore a disruptive vote request (leader lease)', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const [a, b] = ids.filter((id) => id !== leader.id) as [string, string];
    const term = leader.status().term;
    cluster.core(a).step({
      type: 'VoteRequest',
      from: b,
      to: a,
      term: term + 5,
      preVote: false,
      lastLogIndex: 100,
      lastLogTerm: term,
      leadershipTransfer: false,
    });
    expect(cluster.core(a).status().term).toBe(term);
    expect(cluster.core(a).hasOutput()).toBe(false);
  });
});
