import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { RaftLogClient } from '../../src/client/index.js';
import { raftLogServiceDefinition } from '../../src/node/client-proto.js';
import { createClientService } from '../../src/node/client-service.js';
import { membershipView } from '../../src/node/node-membership.js';
import type { RaftNode } from '../../src/node/raft-node.js';
import type { NodeReport } from './node-status-fixtures.js';

/**
 * A node's real client service, served in-process in front of a node a test
 * made by hand, and real clients of it: what crosses the wire, without a node
 * process. close() after each test stops every server and client it made.
 */
export class ClientServiceHarness {
  private servers: grpc.Server[] = [];
  private clients: RaftLogClient[] = [];

  /** Serves the client service of `node` on a free loopback port; returns host:port. */
  async serve(node: RaftNode): Promise<string> {
    const server = new grpc.Server();
    this.servers.push(server);
    server.addService(
      raftLogServiceDefinition,
      createClientService(() => node, pino({ level: 'silent' })),
    );
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
    });
    return `127.0.0.1:${port}`;
  }

  /**
   * Serves a stand-in node whose status() is `report` and whose membership()
   * is what RaftNode derives from such a status; `addresses` is its address
   * book (a member missing from it has no known address).
   */
  serveNodeReporting(report: NodeReport, addresses: Readonly<Record<string, string>> = {}): Promise<string> {
    const node = {
      id: report.id,
      status: () => report,
      brief: () => report,
      membership: () => membershipView(report),
      addressOf: (id: string) => addresses[id],
    } as unknown as RaftNode;
    return this.serve(node);
  }

  /** A client of `endpoint` alone, closed by close(). */
  client(endpoint: string): RaftLogClient {
    const made = new RaftLogClient({ endpoints: [endpoint], deadlineMs: 10_000 });
    this.clients.push(made);
    return made;
  }

  close(): void {
    for (const client of this.clients.splice(0)) client.close();
    for (const server of this.servers.splice(0)) server.forceShutdown();
  }
}
