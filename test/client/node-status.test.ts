/**
 * Status from a node's real client service to the real client, without a node
 * process: the node is a stand-in whose status() is what RaftNode reports (the
 * core's RaftStatus plus the state machine's applied index and digest), so
 * every field is checked to arrive, including where the log starts after
 * compaction and the latest snapshot's index, and the members with their
 * roles (and, from the leader, their match indexes).
 */
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftLogClient } from '../../src/client/index.js';
import { raftLogServiceDefinition } from '../../src/node/client-proto.js';
import { createClientService } from '../../src/node/client-service.js';
import type { RaftNode } from '../../src/node/raft-node.js';

type NodeReport = ReturnType<RaftNode['status']>;
type MembershipReport = ReturnType<RaftNode['membership']>;

/** Where the members listen, as a node's address book has it. */
const ADDRESS_BOOK: Record<string, string> = { n1: '10.0.0.1:7001', n2: '10.0.0.2:7001', n3: '10.0.0.3:7001' };

/** The membership a node with this status reports: its configuration, committed, and the leader's progress if it leads. */
function membershipOf(report: NodeReport): MembershipReport {
  return {
    config: report.config,
    configIndex: report.configIndex,
    committed: report.configIndex <= report.commitIndex,
    leader: report.leader,
    progress: report.progress?.map(({ id, matchIndex }) => ({ id, matchIndex })) ?? null,
  };
}

let servers: grpc.Server[] = [];
let clients: RaftLogClient[] = [];

afterEach(() => {
  for (const client of clients) client.close();
  for (const server of servers) server.forceShutdown();
  clients = [];
  servers = [];
});

/** The client service of a node that reports `report`, on a free port; returns host:port. */
async function serveNodeReporting(report: NodeReport): Promise<string> {
  const node = {
    id: report.id,
    status: () => report,
    membership: () => membershipOf(report),
    addressOf: (id: string) => ADDRESS_BOOK[id],
  } as unknown as RaftNode;
  const server = new grpc.Server();
  servers.push(server);
  server.addService(raftLogServiceDefinition, createClientService(() => node, pino({ level: 'silent' })));
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
  });
  return `127.0.0.1:${port}`;
}

function client(endpoint: string): RaftLogClient {
  const made = new RaftLogClient({ endpoints: [endpoint], deadlineMs: 10_000 });
  clients.push(made);
  return made;
}

const follower: NodeReport = {
  id: 'n2',
  role: 'follower',
  term: 4,
  leader: 'n1',
  votedFor: 'n1',
  commitIndex: 12_040,
  appliedIndex: 12_031,
  removed: false,
  firstIndex: 5_001,
  lastIndex: 12_045,
  snapshotIndex: 10_000,
  voters: ['n1', 'n2', 'n3'],
  learners: [],
  config: { voters: ['n1', 'n2', 'n3'] },
  configIndex: 0,
  member: true,
  progress: null,
  transferringTo: null,
  digest: 'ab'.repeat(32),
};

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
