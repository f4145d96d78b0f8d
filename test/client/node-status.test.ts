/**
 * Status from a node's real client service to the real client, without a node
 * process: the node is a stand-in whose status() is what RaftNode reports (the
 * core's RaftStatus plus the state machine's applied index and digest), so
 * every field is checked to arrive, including where the log starts after
 * compaction and the latest snapshot's index.
 */
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftLogClient } from '../../src/client/index.js';
import { raftLogServiceDefinition } from '../../src/node/client-proto.js';
import { createClientService } from '../../src/node/client-service.js';
import type { RaftNode } from '../../src/node/raft-node.js';

type NodeReport = ReturnType<RaftNode['status']>;

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
  const node = { id: report.id, status: () => report } as unknown as RaftNode;
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
  firstIndex: 5_001,
  lastIndex: 12_045,
  snapshotIndex: 10_000,
  voters: ['n1', 'n2', 'n3'],
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
    });
  });

  // Proto3 leaves zeros off the wire: they must come back as 0, not as missing.
  it('reports 0 as the snapshot of a fresh node that has none, and its empty log as starting at 1', async () => {
    const endpoint = await serveNodeReporting({ ...follower, commitIndex: 0, appliedIndex: 0, firstIndex: 1, lastIndex: 0, snapshotIndex: 0 });
    expect(await client(endpoint).status()).toMatchObject({ firstLogIndex: 1, lastLogIndex: 0, snapshotIndex: 0 });
  });
});
