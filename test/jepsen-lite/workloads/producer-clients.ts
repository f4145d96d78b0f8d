/**
 * The append workload's clients with `--retries`: one RaftLogClient per
 * worker with exactlyOnce, so that a write whose outcome an attempt left open
 * is sent again with the same producer stamp until the call's deadline.
 *
 * A worker's client lists its own node first and the other members after,
 * without node ids and without leader discovery: the library then keeps
 * sending to the node that answered last, so a worker stays on its node
 * (forwarded to the leader from there, as the workload without retries is)
 * until that node fails it, and kills and partitions of that node hit it.
 */
import { RaftLogClient } from '../../../src/client/index.js';
import type { ProcessCluster } from '../../support/process-cluster.js';

/**
 * A call's deadline is this many times --op-timeout: the library gives each
 * attempt of a stamped write a third of the deadline (a second at least), so
 * a write cut off on one node still has attempts left on the others.
 */
export const RETRY_DEADLINE_FACTOR = 5;

export class ProducerClients {
  private readonly byWorker = new Map<number, { readonly endpoints: string; readonly client: RaftLogClient }>();

  constructor(
    private readonly cluster: ProcessCluster,
    /** Each call's deadline, retries included. */
    private readonly deadlineMs: number,
    private readonly writeTransport: 'unary' | 'calls' = 'calls',
  ) {}

  /**
   * Worker `index`'s client, its node first, then the other members. A new
   * one (a new producer session) when the members or their addresses
   * changed since (the membership nemesis); the old one is closed.
   */
  of(index: number, node: string, members: readonly string[]): RaftLogClient {
    const order = [node, ...members.filter((id) => id !== node)];
    const endpoints = order.map((id) => this.cluster.address(id));
    const key = endpoints.join(',');
    const held = this.byWorker.get(index);
    if (held?.endpoints === key) return held.client;
    held?.client.close();
    const client = new RaftLogClient({
      endpoints,
      exactlyOnce: true,
      writeTransport: this.writeTransport,
      deadlineMs: this.deadlineMs,
      connectTimeoutMs: 500,
      discoverLeader: false,
      // The workload chooses which nodes each client asks, and makes a new client when the membership changes.
      followMembership: false,
    });
    this.byWorker.set(index, { endpoints: key, client });
    return client;
  }

  /** The node listening at host:port, as the library names an answering endpoint; undefined when none does. */
  nodeAt(address: string): string | undefined {
    for (const [id, at] of this.cluster.addresses) if (at === address) return id;
    return undefined;
  }

  closeAll(): void {
    for (const { client } of this.byWorker.values()) client.close();
    this.byWorker.clear();
  }
}
