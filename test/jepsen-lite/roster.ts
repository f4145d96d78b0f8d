/**
 * What the harness knows of the cluster's membership while a run goes on:
 * the configuration the leader last reported (MemberList), the ids a member
 * may have (n1..nN), and which nodes a nemesis is busy with. Every part of a
 * run that talks to "the nodes" (workload clients, the log tailer, the
 * nemeses, the final checks) asks the roster, so that a member added during
 * the run is used and a removed one is left alone.
 */
import { type MemberList, RaftLogClient, RaftLogError } from '../../src/client/index.js';
import type { ProcessCluster } from '../support/process-cluster.js';

/** A cluster configuration as the leader reported it. */
export interface Configuration {
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  /** False while the change that set it is not committed yet. */
  readonly committed: boolean;
  /** Index of the entry that set it; 0 for the founding configuration. */
  readonly configIndex: number;
  readonly leader: string | null;
}

export const describeConfiguration = (config: Configuration): string =>
  `voters ${config.voters.join(' ') || 'none'}${config.learners.length > 0 ? `, learners ${config.learners.join(' ')}` : ''}`;

export class Roster {
  private config: Configuration;
  /** Node id → the nemeses (kinds) working on it. */
  private readonly claims = new Map<string, { readonly exclusive: boolean; readonly by: Set<string> }>();

  constructor(
    private readonly cluster: ProcessCluster,
    /** Every id a member may have, in order. */
    readonly ids: readonly string[],
    founders: readonly string[],
  ) {
    this.config = { voters: [...founders], learners: [], committed: true, configIndex: 0, leader: null };
  }

  get configuration(): Configuration {
    return this.config;
  }

  /** Voters and learners of the last configuration read. */
  members(): string[] {
    return [...this.config.voters, ...this.config.learners];
  }

  isMember(id: string): boolean {
    return this.config.voters.includes(id) || this.config.learners.includes(id);
  }

  runningMembers(): string[] {
    return this.members().filter((id) => this.cluster.isRunning(id));
  }

  /** Ids that are neither members nor running nor claimed: free to join as new members. */
  spares(): string[] {
    return this.ids.filter((id) => !this.isMember(id) && !this.cluster.isRunning(id) && !this.claims.has(id));
  }

  /**
   * Takes a node for a nemesis; false when that cannot be. An exclusive
   * claim (a membership change) needs the node free and keeps every other
   * nemesis off it; the others (a kill, a pause) may overlap each other,
   * as they always could.
   */
  claim(id: string, by: string, exclusive = false): boolean {
    const held = this.claims.get(id);
    if (held === undefined) {
      this.claims.set(id, { exclusive, by: new Set([by]) });
      return true;
    }
    if (exclusive || held.exclusive || held.by.has(by)) return false;
    held.by.add(by);
    return true;
  }

  release(id: string, by: string): void {
    const held = this.claims.get(id);
    held?.by.delete(by);
    if (held?.by.size === 0) this.claims.delete(id);
  }

  isClaimed(id: string): boolean {
    return this.claims.has(id);
  }

  /** Whether `by` holds a claim on `id`. */
  isClaimedBy(id: string, by: string): boolean {
    return this.claims.get(id)?.by.has(by) === true;
  }

  /**
   * A client of the running members (any of them forwards to the leader), or
   * of every running node when none of those is: the configuration last read
   * may be stale.
   */
  client(deadlineMs: number): RaftLogClient {
    const members = this.runningMembers();
    const running = members.length > 0 ? members : this.ids.filter((id) => this.cluster.isRunning(id));
    if (running.length === 0) throw new Error('no node is running to ask about the configuration');
    return new RaftLogClient({
      endpoints: running.map((id) => `${id}=${this.cluster.address(id)}`),
      deadlineMs,
      connectTimeoutMs: 500,
      discoverLeader: false,
    });
  }

  /** Asks the leader for the configuration (MemberList), remembers it and returns it; throws when no leader answers in time. */
  async read(deadlineMs = 3_000): Promise<Configuration> {
    const client = this.client(deadlineMs);
    try {
      this.config = toConfiguration(await client.memberList());
      return this.config;
    } finally {
      client.close();
    }
  }

  /**
   * Reads until the configuration is committed (a change may be under way),
   * within `timeoutMs`; null when no leader gave a committed one in time.
   */
  async readCommitted(timeoutMs: number, stopped: () => boolean = () => false): Promise<Configuration | null> {
    const deadline = Date.now() + timeoutMs;
    do {
      try {
        const config = await this.read(Math.max(500, Math.min(3_000, deadline - Date.now())));
        if (config.committed) return config;
      } catch (error) {
        if (!(error instanceof RaftLogError) && !/no node is running/.test((error as Error).message)) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    } while (Date.now() < deadline && !stopped());
    return null;
  }
}

function toConfiguration(list: MemberList): Configuration {
  return {
    voters: list.members.filter((m) => m.role === 'voter').map((m) => m.id),
    learners: list.members.filter((m) => m.role !== 'voter').map((m) => m.id),
    committed: list.committed,
    configIndex: list.configIndex,
    leader: list.leader,
  };
}
