/**
 * What the harness knows of the cluster's membership while a run goes on:
 * the configuration the leader last reported (MemberList), the ids a member
 * may have, and which nodes a nemesis is busy with. Every part of a run that
 * talks to "the nodes" (workload clients, the log tailer, the nemeses, the
 * final checks) asks the roster, so that a member added during the run is
 * used and a removed one is left alone.
 *
 * Ids live in slots n1..nM (node-slots.ts), one process at a time per slot.
 * A removed id never comes back (the leader refuses it), so every id is
 * started at most once: a new member takes a free slot's next id (n4, then
 * n4.2, n4.3, ...), with a data dir of its own that no process used before.
 * A slot is free when the id it hosts now is neither a member, nor running,
 * nor claimed; it offers that id when it was never started (n4 and n5 at
 * the start of a run), else the next one. A slot has `generations` ids in
 * all (every node's RAFTLOG_TEST_PEER_ROUTES lists them when it starts); one
 * that used them all offers none.
 */
import { type MemberList, RaftLogClient, RaftLogError } from '../../src/client/index.js';
import type { ProcessCluster } from '../support/process-cluster.js';
import { generationOf, idInSlot, slotOf } from './node-slots.js';

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
  /** Slot → the id it hosts now: the last one taken there, or the slot's first id. */
  private readonly current = new Map<string, string>();
  /** Every id started (or about to be) in this run, founders first, in the order taken. */
  private readonly used: string[] = [];

  constructor(
    private readonly cluster: ProcessCluster,
    /** The slots, in order (n1..nM): the founders' ids are the first ones. */
    readonly slots: readonly string[],
    founders: readonly string[],
    /** How many ids each slot has (n3, n3.2, ... n3.<generations>). */
    readonly generations: number,
  ) {
    this.config = { voters: [...founders], learners: [], committed: true, configIndex: 0, leader: null };
    for (const slot of slots) this.current.set(slot, slot);
    this.used.push(...founders);
  }

  /** Every id started in this run (founders, then the members added, in order): the end of a run looks at each. */
  get ids(): readonly string[] {
    return this.used;
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

  /** Whether `id` is the one its slot hosts now; an earlier id of the slot must not be started again. */
  isCurrent(id: string): boolean {
    return this.current.get(slotOf(id)) === id;
  }

  /** The id slot `slot` hosts now. */
  currentOf(slot: string): string {
    return this.current.get(slot) ?? slot;
  }

  /**
   * The ids a new member may take now, one per free slot (see the top
   * comment). Ids in `freed` count as unclaimed: a step offers the slot of
   * the node it has just removed.
   */
  spares(freed: readonly string[] = []): string[] {
    return this.freeSlots(freed)
      .map((slot) => this.offered(slot))
      .filter((id): id is string => id !== null);
  }

  /** Free slots that used all their ids. */
  exhaustedSlots(): string[] {
    return this.freeSlots([]).filter((slot) => this.offered(slot) === null);
  }

  /**
   * Claims spare `id` (exclusively) and makes it its slot's id from now on,
   * whether or not it ever joins: an id is started at most once. False when
   * it is no spare (any more) or the claim cannot be had. `freed` as for spares().
   */
  takeSpare(id: string, by: string, freed: readonly string[] = []): boolean {
    if (!this.spares(freed).includes(id) || !this.claim(id, by, true)) return false;
    this.current.set(slotOf(id), id);
    this.used.push(id);
    return true;
  }

  private freeSlots(freed: readonly string[]): string[] {
    return this.slots.filter((slot) => {
      const id = this.currentOf(slot);
      return !this.isMember(id) && !this.cluster.isRunning(id) && (freed.includes(id) || !this.claims.has(id));
    });
  }

  /** What a free slot offers: its id if never started, else the next one; null when it has none left. */
  private offered(slot: string): string | null {
    const id = this.currentOf(slot);
    if (!this.used.includes(id)) return id;
    const next = generationOf(id) + 1;
    return next <= this.generations ? idInSlot(slot, next) : null;
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
    const running = members.length > 0 ? members : this.used.filter((id) => this.cluster.isRunning(id));
    if (running.length === 0) throw new Error('no node is running to ask about the configuration');
    return new RaftLogClient({
      endpoints: running.map((id) => `${id}=${this.cluster.address(id)}`),
      deadlineMs,
      connectTimeoutMs: 500,
      discoverLeader: false,
      // The workload chooses which nodes each client asks, and makes a new client when the membership changes.
      followMembership: false,
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
