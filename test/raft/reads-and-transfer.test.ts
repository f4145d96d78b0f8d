import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { Message, ReadReady } from '../../src/raft/types.js';
import { InstantCluster, text } from '../support/instant-cluster.js';

const ids = ['n1', 'n2', 'n3'];
const followerOf = (leaderId: string) => ids.find((id) => id !== leaderId) as string;

describe('ReadIndex', () => {
  it('a read on the leader is released at the commit index after a heartbeat round, and only once applied', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    leader.propose(text('a'));
    cluster.settle();
    cluster.recordMessages = true;
    expect(leader.readIndex('r1').accepted).toBe(true);
    cluster.settle();
    const reads = cluster.node(leader.id).readsReady;
    expect(reads).toEqual([{ requestId: 'r1', index: leader.status().commitIndex }]);
    expect(cluster.sent.some((m: Message) => m.type === 'Heartbeat' && m.readContext !== null)).toBe(true);
  });

  it('a leader cut off from the majority never releases the read', () => {
    const cluster = new InstantCluster(ids, { checkQuorum: false });
    const leader = cluster.waitForLeader();
    cluster.isolate(leader.id);
    leader.readIndex('r1');
    cluster.tick(50, [leader.id]);
    expect(cluster.node(leader.id).readsReady).toEqual([]);
  });

  it('a read asked before the new leader committed an entry of its term waits for that commit', () => {
    const storage = new MemoryStorage({ voters: ids });
    const leader = new RaftCore({ id: 'n1', random: new SeededRandom(5), preVote: false }, storage);
    const drain = () => {
      const messages: Message[] = [];
      const ready: ReadReady[] = [];
      while (leader.hasOutput()) {
        const out = leader.takeOutput();
        storage.save(out.hardState, out.entries);
        messages.push(...out.earlyMessages, ...out.messages);
        ready.push(...out.readsReady);
        leader.persisted(out);
      }
      return { messages, ready };
    };
    while (leader.status().role !== 'candidate') leader.tick();
    drain();
    leader.step({ type: 'VoteResponse', from: 'n2', to: 'n1', term: 1, preVote: false, granted: true });
    expect(leader.status().role).toBe('leader');
    drain();

    leader.readIndex('early');
    const beforeCommit = drain();
    expect(beforeCommit.ready).toEqual([]);
    expect(beforeCommit.messages.filter((m) => m.type === 'Heartbeat')).toEqual([]);

    // The no-op (index 1) commits: now the read's heartbeat round starts.
    leader.step({
      type: 'AppendResponse',
      from: 'n2',
      to: 'n1',
      term: 1,
      success: true,
      matchIndex: 1,
      rejectedIndex: 0,
      hintIndex: 0,
      hintTerm: 0,
    });
    const afterCommit = drain();
    const round = afterCommit.messages.find((m) => m.type === 'Heartbeat' && m.readContext !== null);
    expect(round).toBeDefined();
    expect(afterCommit.ready).toEqual([]);

    leader.step({
      type: 'HeartbeatResponse',
      from: 'n3',
      to: 'n1',
      term: 1,
      readContext: round?.type === 'Heartbeat' ? round.readContext : null,
    });
    expect(drain().ready).toEqual([{ requestId: 'early', index: 1 }]);
  });

  it('a follower gets the read index from the leader and releases it once it has applied that far', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    leader.propose(text('x'));
    cluster.settle();
    const follower = followerOf(leader.id);
    expect(cluster.core(follower).readIndex('f1').accepted).toBe(true);
    cluster.settle();
    const [read] = cluster.node(follower).readsReady;
    expect(read?.requestId).toBe('f1');
    expect(read?.index).toBe(leader.status().commitIndex);
    expect(cluster.core(follower).status().appliedIndex).toBeGreaterThanOrEqual(read?.index ?? Infinity);
  });

  it('a follower that knows no leader refuses the read with a reason', () => {
    const cluster = new InstantCluster(ids);
    const result = cluster.core('n1').readIndex('r');
    expect(result).toMatchObject({ accepted: false, reason: 'no-leader' });
  });

  it('pending reads fail when the leader steps down', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    cluster.isolate(leader.id);
    leader.readIndex('doomed');
    cluster.tick(25, [leader.id]);
    expect(leader.status().role).not.toBe('leader');
    expect(cluster.node(leader.id).readsFailed.map((r) => r.requestId)).toEqual(['doomed']);
  });
});

describe('leadership transfer', () => {
  it('hands leadership to a caught-up follower with TimeoutNow, without waiting for a timeout', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const target = followerOf(leader.id);
    const term = leader.status().term;
    expect(leader.transferLeadership(target).accepted).toBe(true);
    cluster.settle();
    expect(cluster.core(target).status()).toMatchObject({ role: 'leader', term: term + 1 });
    expect(leader.status()).toMatchObject({ role: 'follower', leader: target });
  });

  it('catches a lagging target up first, and refuses proposals while the transfer is under way', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const target = followerOf(leader.id);
    cluster.partition(leader.id, target);
    for (let i = 0; i < 5; i++) leader.propose(text(`p${i}`));
    cluster.settle();
    expect(leader.transferLeadership(target).accepted).toBe(true);
    expect(leader.propose(text('during'))).toMatchObject({ accepted: false, reason: 'transfer-in-progress' });
    cluster.heal();
    cluster.tick(3);
    expect(cluster.core(target).status().role).toBe('leader');
  });

  it('gives up after an election timeout if the target never catches up, and accepts proposals again', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const target = followerOf(leader.id);
    cluster.crash(target);
    leader.propose(text('behind'));
    cluster.settle();
    leader.transferLeadership(target);
    cluster.tick(
      12,
      ids.filter((id) => id !== target),
    );
    expect(leader.status()).toMatchObject({ role: 'leader', transferringTo: null });
    expect(leader.propose(text('after')).accepted).toBe(true);
  });

  it('rejects transfers on a follower and to unknown nodes', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    expect(cluster.core(followerOf(leader.id)).transferLeadership(leader.id)).toMatchObject({
      accepted: false,
      reason: 'not-leader',
    });
    expect(leader.transferLeadership('n9')).toMatchObject({ accepted: false, reason: 'unknown-node' });
    expect(leader.transferLeadership(leader.id)).toMatchObject({ accepted: false, reason: 'already-leader' });
  });
});

describe('reads forwarded by a follower', () => {
  const forwardOneRead = (cluster: InstantCluster, follower: string) => {
    cluster.recordMessages = true;
    cluster.core(follower).readIndex('r1');
    cluster.settle();
    const answer = cluster.sent.find((m) => m.type === 'ReadIndexResponse' && m.to === follower);
    expect(answer).toBeDefined();
    return answer as Message;
  };

  it('a duplicated answer from the leader releases the read only once', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const follower = followerOf(leader.id);
    const answer = forwardOneRead(cluster, follower);
    cluster.core(follower).step(answer);
    cluster.settle();
    expect(cluster.node(follower).readsReady.map((r) => r.requestId)).toEqual(['r1']);
  });

  it('after a restart, a late answer to the old life never releases a new read that reuses the id', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const follower = followerOf(leader.id);
    const lateAnswer = forwardOneRead(cluster, follower);
    cluster.crash(follower);
    cluster.restart(follower);
    cluster.tick(2);
    for (let i = 0; i < 3; i++) leader.propose(text(`w${i}`));
    cluster.settle();
    cluster.node(follower).readsReady = [];
    cluster.partition(leader.id, follower);
    cluster.core(follower).readIndex('r1');
    cluster.core(follower).step(lateAnswer);
    cluster.settle();
    expect(cluster.node(follower).readsReady).toEqual([]);
  });

  it('a read whose request to the leader is lost fails after two election timeouts, while the follower keeps its leader and term', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const follower = followerOf(leader.id);
    const { term } = leader.status();
    cluster.cutOneWay(follower, leader.id);
    cluster.core(follower).readIndex('lost');
    cluster.tick(15);
    expect(cluster.node(follower).readsFailed).toEqual([]);
    cluster.tick(10);
    const failed = cluster.node(follower).readsFailed;
    expect(failed.map((r) => r.requestId)).toEqual(['lost']);
    expect(failed[0]?.reason).toMatch(new RegExp(`no answer from leader ${leader.id} to a read in 20 ticks`));
    expect(cluster.core(follower).status()).toMatchObject({ leader: leader.id, term, role: 'follower' });
    // Healed, a read asked afterwards is answered: nothing of the lost one is left in the way.
    cluster.heal();
    cluster.core(follower).readIndex('after');
    cluster.settle();
    expect(cluster.node(follower).readsReady.map((r) => r.requestId)).toEqual(['after']);
  });

  it('fail when the follower loses its leader before the answer comes', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const follower = followerOf(leader.id);
    cluster.partition(leader.id, follower);
    cluster.core(follower).readIndex('lost');
    cluster.tick(60, [follower]);
    expect(cluster.node(follower).readsFailed.map((r) => r.requestId)).toEqual(['lost']);
  });
});

describe('leadership transfer and CheckQuorum', () => {
  it('repeated transfer requests do not keep an isolated leader in office', () => {
    const cluster = new InstantCluster(ids, { electionTicks: 10 });
    const leader = cluster.waitForLeader();
    const [a, b] = ids.filter((id) => id !== leader.id) as [string, string];
    cluster.isolate(leader.id);
    for (let t = 0; t < 40; t++) {
      if (t % 5 === 0) leader.transferLeadership(t % 10 === 0 ? a : b);
      cluster.tick(1, [leader.id]);
    }
    expect(leader.status().role).not.toBe('leader');
  });
});
