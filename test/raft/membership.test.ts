/**
 * Membership corner cases of the core as specifications; the seeded simulator
 * (test/sim) explores changes under every fault at random.
 */
import { describe, expect, it } from 'vitest';
import type { RaftCore } from '../../src/raft/core.js';
import { applyChange, decodeConfig, encodeConfig } from '../../src/raft/membership.js';
import type { ClusterConfig } from '../../src/raft/types.js';
import { InstantCluster, text } from '../support/instant-cluster.js';

const four = ['n1', 'n2', 'n3', 'n4'];

/** Ticks until a leader other than `not` leads with everything it holds committed. */
function leaderOtherThan(cluster: InstantCluster, not: string, maxTicks = 2_000): RaftCore {
  for (let t = 0; t < maxTicks; t++) {
    const leader = cluster.leaders().find((core) => core.status().role === 'leader' && core.status().id !== not);
    if (leader !== undefined && leader.status().commitIndex === leader.status().lastIndex) return leader;
    cluster.tick();
  }
  throw new Error(`no leader other than ${not} after ${maxTicks} ticks`);
}

describe('membership changes in the core', () => {
  it('a leader cut off right after proposing its own removal, and one more voter lost for good: the removed one is elected again, commits its removal and hands over', () => {
    const cluster = new InstantCluster(four);
    const old = cluster.waitForLeader();
    const [dead, ...rest] = four.filter((id) => id !== old.status().id) as [string, string, string];

    // The removal is appended on the leader only: it is the one log that holds it.
    cluster.isolate(old.status().id);
    expect(old.proposeConfigChange({ type: 'remove', id: old.status().id }).accepted).toBe(true);
    cluster.settle();
    // Cut off, it steps down (check-quorum) while the others' clocks stand still: nobody else campaigns yet.
    cluster.tick(40, [old.status().id]);
    expect(old.status().role).not.toBe('leader');
    // The fault: another voter dies for good, and the old leader's link comes back.
    cluster.crash(dead);
    cluster.heal();

    // The two left can only elect with the old leader's vote, which goes to no log shorter than its own;
    // so it must campaign, though its latest configuration (uncommitted) excludes it.
    const leader = leaderOtherThan(cluster, old.status().id);
    expect(rest).toContain(leader.status().id);
    expect(leader.status().config.voters).not.toContain(old.status().id);
    expect(leader.status().commitIndex).toBeGreaterThanOrEqual(leader.status().configIndex);
    expect(leader.propose(text('after')).accepted).toBe(true);
    cluster.settle();
    expect(leader.status().commitIndex).toBe(leader.status().lastIndex);
  });

  it('a leader that removed itself hands over once the removal commits, and never campaigns again', () => {
    const cluster = new InstantCluster(four);
    const old = cluster.waitForLeader();
    const id = old.status().id;
    expect(old.proposeConfigChange({ type: 'remove', id }).accepted).toBe(true);
    const next = leaderOtherThan(cluster, id);
    expect(next.status().config.voters).not.toContain(id);
    expect(old.status().role).toBe('follower');
    expect(old.status().commitIndex).toBeGreaterThanOrEqual(old.status().configIndex);
    // Cut off for many election timeouts: a voter would campaign, and its term would grow.
    cluster.isolate(id);
    const term = old.status().term;
    cluster.tick(200, [id]);
    expect(old.status().term).toBe(term);
    expect(old.status().role).toBe('follower');
  });
});

describe('backlog bound', () => {
  it('a leader that cannot commit refuses proposals past maxUncommittedBytes, then takes them again once its backlog commits', () => {
    const cluster = new InstantCluster(['n1', 'n2', 'n3'], { maxUncommittedBytes: 250, checkQuorum: false });
    const leader = cluster.waitForLeader();
    const followers = ['n1', 'n2', 'n3'].filter((id) => id !== leader.status().id);
    for (const id of followers) cluster.crash(id);
    const hundred = text('x'.repeat(100));
    expect(leader.propose(hundred).accepted).toBe(true);
    expect(leader.propose(hundred).accepted).toBe(true);
    const refused = leader.propose(hundred);
    expect(refused).toMatchObject({ accepted: false, reason: 'backlog-full' });
    expect(refused.accepted ? '' : refused.message).toContain('200 bytes of proposals await commit (limit 250');
    const lastIndex = leader.status().lastIndex;

    for (const id of followers) cluster.restart(id);
    cluster.tick(5);
    expect(leader.status().commitIndex).toBe(lastIndex);
    expect(leader.propose(hundred).accepted).toBe(true);
    expect(leader.propose(hundred).accepted).toBe(true);
  });

  it('one proposal larger than the bound is taken when nothing waits', () => {
    const cluster = new InstantCluster(['n1', 'n2', 'n3'], { maxUncommittedBytes: 10 });
    const leader = cluster.waitForLeader();
    expect(leader.propose(text('y'.repeat(100))).accepted).toBe(true);
    expect(leader.propose(text('z')).accepted).toBe(false);
  });
});

describe('removed ids', () => {
  const three: ClusterConfig = { voters: ['n1', 'n2', 'n3'], addresses: { n1: 'h:1', n2: 'h:2', n3: 'h:3' } };

  it('a removal records the id, and the changes after it keep the record', () => {
    const removed = applyChange(three, { type: 'remove', id: 'n3' });
    expect(removed).toEqual({ voters: ['n1', 'n2'], learners: [], addresses: { n1: 'h:1', n2: 'h:2' }, removed: ['n3'] });
    const added = applyChange(removed as ClusterConfig, { type: 'add-learner', id: 'n4', address: 'h:4' });
    expect(added).toMatchObject({ learners: ['n4'], removed: ['n3'] });
    const promoted = applyChange(added as ClusterConfig, { type: 'promote', id: 'n4' });
    expect(promoted).toMatchObject({ voters: ['n1', 'n2', 'n4'], removed: ['n3'] });
    expect(applyChange(promoted as ClusterConfig, { type: 'remove', id: 'n1' })).toMatchObject({ removed: ['n3', 'n1'] });
  });

  it('adding a removed id back is refused, with the reason and what to do instead; its old address is free for a new id', () => {
    const removed = applyChange(three, { type: 'remove', id: 'n3' }) as ClusterConfig;
    expect(applyChange(removed, { type: 'add-learner', id: 'n3', address: 'h:3' })).toBe(
      'n3 was removed from this cluster, and a removed id never becomes a member again (its old process or disk could still speak for it): add the replacement under a new id',
    );
    expect(applyChange(removed, { type: 'add-learner', id: 'n5', address: 'h:3' })).toMatchObject({ learners: ['n5'] });
  });

  it('the configuration entry carries them, and one written before any removal has no such field and decodes as none', () => {
    const removed = applyChange(three, { type: 'remove', id: 'n3' }) as ClusterConfig;
    expect(decodeConfig(encodeConfig(removed), 'test')).toEqual(removed);
    const before = new TextDecoder().decode(encodeConfig(three));
    expect(before).not.toContain('removed');
    expect(decodeConfig(new TextEncoder().encode(before), 'test').removed).toBeUndefined();
    expect(() => decodeConfig(new TextEncoder().encode('{"voters":["n1"],"removed":[1]}'), 'entry 9')).toThrow(
      "entry 9: config entry's removed ids are not a list of ids",
    );
  });
});
