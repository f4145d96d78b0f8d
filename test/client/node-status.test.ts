/**
 * Status from a node's real client service to the real client, without a node
 * process: the node is a stand-in whose status() is what RaftNode reports (the
 * core's RaftStatus plus the state machine's applied index and digest), so
 * every field is checked to arrive, including where the log starts after
 * compaction and the latest snapshot's index, and the members with their
 * roles (and, from the leader, their match indexes).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClientServiceHarness } from '../support/client-service-harness.js';
import { type NodeReport, nodeReport } from '../support/node-status-fixtures.js';

/** Where the members listen, as a node's address book has it. */
const ADDRESS_BOOK: Record<string, string> = { n1: '10.0.0.1:7001', n2: '10.0.0.2:7001', n3: '10.0.0.3:7001' };

const wire = new ClientServiceHarness();
afterEach(() => wire.close());

/** The client service of a node that reports `report`, on a free port; returns host:port. */
const serveNodeReporting = (report: NodeReport): Promise<string> => wire.serveNodeReporting(report, ADDRESS_BOOK);
const client = (endpoint: string) => wire.client(endpoint);

/** n2, following n1 in term 4, whose log was compacted into a snapshot at 10_000: it holds 5_001..12_045. */
const follower = nodeReport({
  commitIndex: 12_040,
  appliedIndex: 12_031,
  firstIndex: 5_001,
  lastIndex: 12_045,
  snapshotIndex: 10_000,
  digest: 'ab'.repeat(32),
});

describe('Status of a node that compacted its log', () => {
  it('reaches the client with every index, the first one the log holds and the latest snapshot included', async () => {
    const endpoint = await serveNodeReporting(follower);
    expect(await client(endpoint).status()).toEqual({
      endpoint,
      node: 'n2',
      role: 'follower',
      term: 4,
      leader: 'n1',
      commitIndex: 12_040,
      appliedIndex: 12_031,
      lastLogIndex: 12_045,
      firstLogIndex: 5_001,
      snapshotIndex: 10_000,
      members: ['n1', 'n2', 'n3'],
      digest: 'ab'.repeat(32),
      memberStatus: [
        { id: 'n1', address: '10.0.0.1:7001', role: 'voter', matchIndex: 0 },
        { id: 'n2', address: '10.0.0.2:7001', role: 'voter', matchIndex: 0 },
        { id: 'n3', address: '10.0.0.3:7001', role: 'voter', matchIndex: 0 },
      ],
      progress: [],
    });
  });

  // Proto3 leaves zeros off the wire: they must come back as 0, not as missing.
  it('reports 0 as the snapshot of a fresh node that has none, and its empty log as starting at 1', async () => {
    const endpoint = await serveNodeReporting({ ...follower, commitIndex: 0, appliedIndex: 0, firstIndex: 1, lastIndex: 0, snapshotIndex: 0 });
    expect(await client(endpoint).status()).toMatchObject({ firstLogIndex: 1, lastLogIndex: 0, snapshotIndex: 0 });
  });
});

describe('Status of the members while a learner catches up', () => {
  const config = {
    voters: ['n1', 'n2', 'n3'],
    learners: ['n4'],
    addresses: { n1: '10.0.0.1:7001', n2: '10.0.0.2:7001', n3: '10.0.0.3:7001', n4: '10.0.0.4:7001' },
  };
  const progress = (id: string, matchIndex: number) => ({
    id,
    matchIndex,
    nextIndex: matchIndex + 1,
    state: 'replicate' as const,
    pendingSnapshot: 0,
    inflight: 0,
    recentlyActive: true,
  });

  it("the leader lists voters, then the learner, with each one's match index and its own last index", async () => {
    const leader: NodeReport = {
      ...follower,
      id: 'n1',
      role: 'leader',
      leader: 'n1',
      voters: config.voters,
      learners: config.learners,
      config,
      configIndex: 12_041,
      progress: [progress('n2', 12_045), progress('n3', 12_040), progress('n4', 9_000)],
    };
    const status = await client(await serveNodeReporting(leader)).status();
    expect(status.members).toEqual(['n1', 'n2', 'n3']);
    expect(status.memberStatus).toEqual([
      { id: 'n1', address: '10.0.0.1:7001', role: 'voter', matchIndex: 12_045 },
      { id: 'n2', address: '10.0.0.2:7001', role: 'voter', matchIndex: 12_045 },
      { id: 'n3', address: '10.0.0.3:7001', role: 'voter', matchIndex: 12_040 },
      { id: 'n4', address: '10.0.0.4:7001', role: 'learner', matchIndex: 9_000 },
    ]);
  });

  it('a follower lists the same roles, and no match indexes: only the leader knows them', async () => {
    const status = await client(await serveNodeReporting({ ...follower, learners: ['n4'], config, configIndex: 12_041 })).status();
    expect(status.memberStatus.map(({ id, role, matchIndex }) => [id, role, matchIndex])).toEqual([
      ['n1', 'voter', 0],
      ['n2', 'voter', 0],
      ['n3', 'voter', 0],
      ['n4', 'learner', 0],
    ]);
  });
});
