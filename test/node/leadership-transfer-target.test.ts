/**
 * Which voter a leader hands over to when none is named, and how a graceful
 * stop moves on to the next best: mostCaughtUpVoter and transferLeadership
 * against a fake leader whose status the test sets. A target tried already
 * (it did not take over within an election timeout) is passed over for the
 * best voter not tried yet.
 */
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { mostCaughtUpVoter, TargetDidNotTakeOver, type TransferHost, transferLeadership } from '../../src/node/leadership-transfer.js';
import type { LeadershipView } from '../../src/node/leadership-watch.js';
import type { FollowerProgress, NodeId, RaftStatus } from '../../src/raft/types.js';

const follower = (id: NodeId, matchIndex: number, recentlyActive = true): FollowerProgress => ({
  id,
  matchIndex,
  nextIndex: matchIndex + 1,
  state: 'replicate',
  pendingSnapshot: 0,
  inflight: 0,
  recentlyActive,
});

/** n1 leads term 5 of voters n1..n4 with these followers. */
function leading(progress: FollowerProgress[]): RaftStatus {
  const voters = ['n1', 'n2', 'n3', 'n4'];
  return {
    id: 'n1',
    role: 'leader',
    term: 5,
    leader: 'n1',
    votedFor: 'n1',
    commitIndex: 10,
    appliedIndex: 10,
    firstIndex: 1,
    lastIndex: 10,
    snapshotIndex: 0,
    voters,
    learners: [],
    config: { voters },
    configIndex: 0,
    member: true,
    progress: [follower('n1', 10), ...progress],
    transferringTo: null,
  };
}

describe('mostCaughtUpVoter', () => {
  const status = leading([follower('n2', 9), follower('n3', 10), follower('n4', 10, false)]);

  it('picks the voter heard from lately with the longest log', () => {
    expect(mostCaughtUpVoter(status)).toBe('n3');
  });

  it('passes over the voters tried already, down to one not heard from lately, then none', () => {
    expect(mostCaughtUpVoter(status, new Set(['n3']))).toBe('n2');
    expect(mostCaughtUpVoter(status, new Set(['n3', 'n2']))).toBe('n4');
    expect(mostCaughtUpVoter(status, new Set(['n3', 'n2', 'n4']))).toBeNull();
  });
});

/** A leader whose targets never take over: the core gives up on each at once. */
function stubbornLeader(): TransferHost & { readonly targets: NodeId[] } {
  const status = leading([follower('n2', 9), follower('n3', 10), follower('n4', 8)]);
  const view: LeadershipView = { role: 'leader', term: 5, leader: 'n1', transferringTo: null };
  const targets: NodeId[] = [];
  return {
    id: 'n1',
    logger: pino({ level: 'silent' }),
    electionTimeoutMs: 200,
    targets,
    stopped: () => false,
    status: () => status,
    leadershipView: () => view,
    awaitLeadership: async (_until, ready) => (ready(view) ? view : null),
    startTransfer: (to) => {
      targets.push(to);
      return { accepted: true };
    },
  };
}

describe('transferLeadership without a target', () => {
  it('tries the best voter not tried yet, and says which one did not take over', async () => {
    const host = stubbornLeader();
    const tried = new Set<NodeId>();
    for (let attempt = 0; attempt < 3; attempt++) {
      const error = await transferLeadership(host, null, Date.now() + 1_000, tried).catch((failure: unknown) => failure);
      expect(error).toBeInstanceOf(TargetDidNotTakeOver);
      expect((error as TargetDidNotTakeOver).code).toBe(grpc.status.ABORTED);
      tried.add((error as TargetDidNotTakeOver).target);
    }
    expect(host.targets).toEqual(['n3', 'n2', 'n4']);
  });
});
