import type { RaftOptions } from '../../src/raft/config.js';
import { RaftCore } from '../../src/raft/core.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { OutputRunner } from '../../src/raft/output-runner.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { Entry, Message, NodeId, RaftOutput, ReadFailed, ReadReady, RoleChange } from '../../src/raft/types.js';

export interface InstantNode {
  readonly id: NodeId;
  core: RaftCore;
  runner: OutputRunner;
  readonly storage: MemoryStorage;
  /** Applied in this life of the node (a restart replays from the start). */
  applied: Entry[];
  readsReady: ReadReady[];
  readsFailed: ReadFailed[];
  roleChanges: RoleChange[];
  up: boolean;
}

export type ClusterOptions = Partial<Omit<RaftOptions, 'id' | 'random'>> & { seed?: number };

/**
 * Cores in one process whose messages arrive at once and in order, unless a
 * link is cut. Small and predictable: for unit tests and the core benchmark.
 * The seeded simulator (test/sim) is where faults are explored.
 */
export class InstantCluster {
  readonly nodes = new Map<NodeId, InstantNode>();
  private queue: Message[] = [];
  private readonly cut = new Set<string>();
  /** Every message that was sent, for assertions. */
  readonly sent: Message[] = [];
  recordMessages = false;

  constructor(
    readonly ids: readonly NodeId[],
    private readonly options: ClusterOptions = {},
  ) {
    for (const [i, id] of ids.entries()) {
      const storage = new MemoryStorage({ voters: ids });
      const core = this.makeCore(id, storage, i);
      const fields: Omit<InstantNode, 'runner'> = {
        id,
        core,
        storage,
        applied: [],
        readsReady: [],
        readsFailed: [],
        roleChanges: [],
        up: true,
      };
      this.nodes.set(id, Object.assign(fields, { runner: this.makeRunner(fields, core) }));
    }
  }

  private makeCore(id: NodeId, storage: MemoryStorage, salt: number): RaftCore {
    const { seed = 1, ...rest } = this.options;
    return new RaftCore({ ...rest, id, random: new SeededRandom(seed * 1000 + salt + storage.lastIndex()) }, storage);
  }

  node(id: NodeId): InstantNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  core(id: NodeId): RaftCore {
    return this.node(id).core;
  }

  /** Runs outputs and deliveries until nothing is left to do. */
  settle(maxRounds = 100_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const node of this.nodes.values()) {
        if (node.up && node.runner.run() > 0) busy = true;
      }
      const batch = this.queue;
      this.queue = [];
      for (const message of batch) {
        busy = true;
        const target = this.nodes.get(message.to);
        if (target === undefined || !target.up || this.cut.has(`${message.from}>${message.to}`)) continue;
        target.core.step(message);
      }
      if (!busy) return;
    }
    throw new Error('cluster did not settle');
  }

  /** Writes complete at once: every output is stored, sent, applied and reported persisted before the next is taken. */
  private makeRunner(node: Omit<InstantNode, 'runner'>, core: RaftCore): OutputRunner {
    return new OutputRunner(
      core,
      {
        write: (output: RaftOutput, done) => {
          node.storage.save(output.hardState, output.entries);
          done();
        },
        send: (messages: readonly Message[]) => {
          for (const message of messages) {
            this.queue.push(message);
            if (this.recordMessages) this.sent.push(message);
          }
        },
        apply: (entries) => node.applied.push(...entries),
        reads: (ready, failed) => {
          node.readsReady.push(...ready);
          node.readsFailed.push(...failed);
        },
        taken: (output) => {
          if (output.roleChange !== null) node.roleChanges.push(output.roleChange);
        },
      },
      { maxWritesInProgress: 1 },
    );
  }

  tick(ticks = 1, ids: readonly NodeId[] = this.ids): void {
    for (let t = 0; t < ticks; t++) {
      for (const id of ids) {
        const node = this.node(id);
        if (node.up) node.core.tick();
      }
      this.settle();
    }
  }

  leaders(): RaftCore[] {
    return [...this.nodes.values()].filter((n) => n.up && n.core.status().role === 'leader').map((n) => n.core);
  }

  /** Ticks until exactly one live leader exists and its no-op is applied everywhere reachable. */
  waitForLeader(maxTicks = 1000): RaftCore {
    for (let t = 0; t < maxTicks; t++) {
      const leaders = this.leaders();
      if (leaders.length === 1) {
        const leader = leaders[0] as RaftCore;
        const status = leader.status();
        if (status.commitIndex === status.lastIndex) return leader;
      }
      this.tick();
    }
    throw new Error(`no single leader after ${maxTicks} ticks`);
  }

  /** Cuts both directions between a and b. */
  partition(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }

  /** Cuts every link of id. */
  isolate(id: NodeId): void {
    for (const other of this.ids) if (other !== id) this.partition(id, other);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  crash(id: NodeId): void {
    this.node(id).up = false;
  }

  restart(id: NodeId): void {
    const node = this.node(id);
    node.core = this.makeCore(id, node.storage, this.ids.indexOf(id) + 7);
    node.runner = this.makeRunner(node, node.core);
    node.applied = [];
    node.up = true;
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const decode = (data: Uint8Array): string => new TextDecoder().decode(data);
