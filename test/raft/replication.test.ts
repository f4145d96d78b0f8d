import { describe, expect, it } from 'vitest';
import type { RaftCore } from '../../src/raft/core.js';
import type { AppendRequest, AppendResponse, Message } from '../../src/raft/types.js';
import { decode, InstantCluster, text } from '../support/instant-cluster.js';

const ids = ['n1', 'n2', 'n3'];
const commands = (cluster: InstantCluster, id: string) =>
  cluster
    .node(id)
    .applied.filter((e) => e.kind === 'command')
    .map((e) => decode(e.data));

describe('log replication', () => {
  it('proposals on the leader are applied by every node in the same order', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const expected: string[] = [];
    for (let i = 0; i < 50; i++) {
      expected.push(`cmd-${i}`);
      expect(leader.propose(text(`cmd-${i}`)).accepted).toBe(true);
      if (i % 7 === 0) cluster.settle();
    }
    cluster.settle();
    for (const id of ids) expect(commands(cluster, id)).toEqual(expected);
  });

  it('a follower rejects a proposal and names the leader', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const follower = cluster.core(ids.find((id) => id !== leader.id) as string);
    const result = follower.propose(text('x'));
    expect(result).toMatchObject({ accepted: false, reason: 'not-leader', leader: leader.id });
    if (!result.accepted) expect(result.message).toContain(follower.id);
  });

  it('a proposal over the size limit is rejected with the limit in the message', () => {
    const cluster = new InstantCluster(ids, { maxProposalBytes: 10 });
    const leader = cluster.waitForLeader();
    const result = leader.propose(new Uint8Array(11));
    expect(result).toMatchObject({ accepted: false, reason: 'too-large' });
    if (!result.accepted) expect(result.message).toContain('10 bytes');
  });

  it('one of three down: writes still commit; it catches up when it returns', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const down = ids.find((id) => id !== leader.id) as string;
    cluster.crash(down);
    for (let i = 0; i < 20; i++) leader.propose(text(`w${i}`));
    cluster.settle();
    expect(leader.status().commitIndex).toBe(leader.status().lastIndex);
    cluster.restart(down);
    cluster.tick(5);
    expect(commands(cluster, down)).toEqual(commands(cluster, leader.id));
  });

  it('two of three down: nothing commits', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const before = leader.status().commitIndex;
    for (const id of ids) if (id !== leader.id) cluster.crash(id);
    leader.propose(text('lonely'));
    cluster.tick(5, [leader.id]);
    expect(leader.status().commitIndex).toBe(before);
  });

  it('append messages carry many entries, capped by maxMessageBytes', () => {
    const cluster = new InstantCluster(ids, { maxMessageBytes: 1000 });
    const leader = cluster.waitForLeader();
    cluster.recordMessages = true;
    for (let i = 0; i < 40; i++) leader.propose(new Uint8Array(100));
    cluster.settle();
    const appends = cluster.sent.filter((m): m is AppendRequest => m.type === 'AppendRequest' && m.entries.length > 0);
    const sizes = appends.map((m) => m.entries.reduce((s, e) => s + e.data.byteLength, 0));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1000);
    expect(Math.max(...appends.map((m) => m.entries.length))).toBe(10);
  });

  it('a commit reaches caught-up followers in a commit-only append, which they do not answer; they still apply it', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    cluster.settle();
    cluster.recordMessages = true;
    expect(leader.propose(text('one')).accepted).toBe(true);
    cluster.settle();
    const followers = ids.filter((id) => id !== leader.id);
    const commitOnly = cluster.sent.filter((m): m is AppendRequest => m.type === 'AppendRequest' && m.commitOnly === true);
    expect(commitOnly.map((m) => m.to).sort()).toEqual(followers);
    expect(commitOnly.every((m) => m.entries.length === 0 && m.leaderCommit === leader.status().lastIndex)).toBe(true);
    // One answer per follower: to the append that carried the entry, none to the commit.
    const answers = cluster.sent.filter((m) => m.type === 'AppendResponse');
    expect(answers.map((m) => m.from).sort()).toEqual(followers);
    for (const id of followers) expect(commands(cluster, id)).toEqual(['one']);
  });

  it("a follower whose answer to an append was lost is not left behind: the append the next heartbeat's answer triggers is answered", () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    cluster.settle();
    const [quiet] = ids.filter((id) => id !== leader.id) as [string];
    // The fault: the quiet follower's answers to the leader are lost while it takes an entry and the commit of it.
    cluster.cutOneWay(quiet, leader.id);
    leader.propose(text('one'));
    cluster.settle();
    const matchOf = () => leader.status().progress?.find((p) => p.id === quiet)?.matchIndex;
    expect(matchOf()).toBeLessThan(leader.status().lastIndex);
    cluster.heal();
    cluster.tick(3);
    cluster.settle();
    expect(matchOf()).toBe(leader.status().lastIndex);
  });

  it('a follower that cannot match a commit-only append (its log lost the entries) answers with a rejection', () => {
    const cluster = new InstantCluster(['n1']);
    const follower = cluster.core('n1');
    const request: AppendRequest = {
      type: 'AppendRequest',
      from: 'n9',
      to: 'n1',
      term: 5,
      prevLogIndex: 40,
      prevLogTerm: 4,
      entries: [],
      leaderCommit: 40,
      commitOnly: true,
    };
    follower.step(request);
    expect(follower.takeOutput().messages).toEqual([
      expect.objectContaining({ type: 'AppendResponse', to: 'n9', success: false, rejectedIndex: 40 }),
    ]);
  });

  it('pipelining stops at maxInflightMessages to a follower that does not answer', () => {
    const cluster = new InstantCluster(ids, { maxInflightMessages: 4, maxMessageBytes: 1 });
    const leader = cluster.waitForLeader();
    const silent = ids.find((id) => id !== leader.id) as string;
    cluster.cutOneWay(silent, leader.id);
    cluster.recordMessages = true;
    for (let i = 0; i < 30; i++) {
      leader.propose(new Uint8Array(1));
      cluster.settle();
    }
    const toSilent = cluster.sent.filter((m) => m.type === 'AppendRequest' && m.to === silent && m.entries.length > 0);
    expect(toSilent.length).toBe(4);
  });

  it('a follower with a long divergent suffix is repaired with few round trips (fast backtracking)', () => {
    const cluster = new InstantCluster(ids);
    const first = cluster.waitForLeader();
    const [a, b] = ids.filter((id) => id !== first.id) as [string, string];
    // The old leader, cut off, accumulates 100 entries nobody else has.
    cluster.isolate(first.id);
    for (let i = 0; i < 100; i++) first.propose(text(`stale-${i}`));
    cluster.settle();
    // The others move on with 50 entries of a newer term...
    cluster.tick(60, [a, b]);
    const second = cluster.leaders().find((l) => l.id !== first.id) as RaftCore;
    for (let i = 0; i < 50; i++) second.propose(text(`fresh-${i}`));
    cluster.settle();
    // ...and hand leadership over, so the newest leader starts probing the stale node at its log's end.
    const third = second.id === a ? b : a;
    expect(second.transferLeadership(third).accepted).toBe(true);
    cluster.settle();
    expect(cluster.core(third).status().role).toBe('leader');
    expect(cluster.core(third).lastIndex()).toBeGreaterThan(50);

    cluster.recordMessages = true;
    cluster.heal();
    cluster.tick(3);
    const rejections = cluster.sent.filter((m: Message): m is AppendResponse => m.type === 'AppendResponse' && m.from === first.id && !m.success);
    expect(rejections.length).toBeGreaterThan(0);
    expect(rejections.length).toBeLessThanOrEqual(3);
    expect(commands(cluster, first.id).filter((c) => c.startsWith('stale'))).toEqual([]);
    expect(cluster.core(first.id).status().lastIndex).toBe(cluster.core(third).status().lastIndex);
  });

  it('a restarted node replays from storage what it stored as committed, and the rest once the leader tells it the commit index', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    for (let i = 0; i < 5; i++) {
      // One at a time: each append also carries the commit index of the entries before it, and is stored with it.
      leader.propose(text(`r${i}`));
      cluster.settle();
    }
    cluster.tick(2);
    cluster.settle();
    const follower = ids.find((id) => id !== leader.id) as string;
    const before = commands(cluster, follower);
    expect(before).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    cluster.crash(follower);
    cluster.restart(follower);
    cluster.settle();
    // The commit index that only a commit-only append or a heartbeat brought was never written on its own.
    expect(commands(cluster, follower)).toEqual(['r0', 'r1', 'r2', 'r3']);
    cluster.tick(2);
    cluster.settle();
    expect(commands(cluster, follower)).toEqual(before);
  });
});

describe('flow control', () => {
  it('a probe answered at the already-known match index switches the follower to replicate at once', () => {
    const cluster = new InstantCluster(ids);
    const leader = cluster.waitForLeader();
    const follower = ids.find((id) => id !== leader.id) as string;
    const { term, lastIndex } = leader.status();
    // A late rejection (as after reordering) drops the follower to probe although its log matches.
    leader.step({
      type: 'AppendResponse',
      from: follower,
      to: leader.id,
      term,
      success: false,
      matchIndex: 0,
      rejectedIndex: lastIndex + 3,
      hintIndex: lastIndex,
      hintTerm: term,
    });
    expect(leader.status().progress?.find((p) => p.id === follower)?.state).toBe('probe');
    cluster.settle();
    expect(leader.status().progress?.find((p) => p.id === follower)?.state).toBe('replicate');
    // So the next proposal goes out at once, without waiting for a heartbeat.
    cluster.recordMessages = true;
    leader.propose(text('next'));
    cluster.settle();
    expect(cluster.sent.filter((m) => m.type === 'AppendRequest' && m.to === follower && m.entries.length === 1)).toHaveLength(1);
  });
});

describe('in-flight window', () => {
  it('heartbeats free a slot only when the pipeline has stalled for a whole heartbeat interval', () => {
    const cluster = new InstantCluster(ids, { maxInflightMessages: 1 });
    const leader = cluster.waitForLeader();
    const follower = ids.find((id) => id !== leader.id) as string;
    const { term } = leader.status();
    cluster.cutOneWay(follower, leader.id);
    cluster.recordMessages = true;
    leader.propose(text('a'));
    leader.propose(text('b'));
    cluster.settle();
    leader.propose(text('c'));
    cluster.settle();
    const appendsWithEntries = () => cluster.sent.filter((m) => m.type === 'AppendRequest' && m.to === follower && m.entries.length > 0).length;
    expect(appendsWithEntries()).toBe(1);
    const heartbeatAnswer = () => {
      leader.step({ type: 'HeartbeatResponse', from: follower, to: leader.id, term, readContext: null });
      cluster.settle();
    };
    heartbeatAnswer(); // acknowledgements came since the last heartbeat (the election's): not stalled yet
    expect(appendsWithEntries()).toBe(1);
    heartbeatAnswer(); // a whole interval without an acknowledgement: assume loss, let one more go
    expect(appendsWithEntries()).toBe(2);
  });
});
