import type { RaftNode } from '../../src/node/raft-node.js';
import type { RaftStatus } from '../../src/raft/types.js';

/** What RaftNode.status() reports: the core's RaftStatus plus the state machine's applied index, whether it was removed, and its digest. */
export type NodeReport = ReturnType<RaftNode['status']>;

/**
 * The core's status of a node that is fine and unremarkable, for tests that
 * build one by hand: n2, following n1 in term 4, a voter of the three-voter
 * cluster n1..n3 (its initial configuration), its log 1..10 all committed and
 * applied, no snapshot. A test overrides what it is about.
 */
export function raftStatus(overrides: Partial<RaftStatus> = {}): RaftStatus {
  return {
    id: 'n2',
    role: 'follower',
    term: 4,
    leader: 'n1',
    votedFor: 'n1',
    commitIndex: 10,
    appliedIndex: 10,
    firstIndex: 1,
    lastIndex: 10,
    snapshotIndex: 0,
    voters: ['n1', 'n2', 'n3'],
    learners: [],
    config: { voters: ['n1', 'n2', 'n3'] },
    configIndex: 0,
    member: true,
    progress: null,
    transferringTo: null,
    ...overrides,
  };
}

/** raftStatus as RaftNode.status() reports it: not removed, with a state machine digest of 32 bytes 0xab. */
export function nodeReport(overrides: Partial<NodeReport> = {}): NodeReport {
  return { ...raftStatus(), removed: false, digest: 'ab'.repeat(32), ...overrides };
}
