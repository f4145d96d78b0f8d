import type { CommitNoticeHold } from '../../src/node/commit-notice-hold.js';
import { decodeConfig } from '../../src/raft/membership.js';
import { MemoryStorage, type StoredSnapshot } from '../../src/raft/memory-storage.js';
import type { OutputRunner } from '../../src/raft/output-runner.js';
import type { Entry, NodeId, RaftOutput, SnapshotMeta } from '../../src/raft/types.js';
import { type CommitChecker, type LogTail, type LogView, throughCompaction } from './invariants.js';
import type { SimCore } from './sim-core.js';

/** An output whose durable write has started but not completed (asynchronous persistence). */
export interface PendingWrite {
  readonly output: RaftOutput;
  /** Tells this write's completion event from those of earlier writes. */
  readonly serial: number;
  readonly startedAt: number;
  /** When it completes; a disk stall can move this later (completion events for earlier times are then stale). */
  doneAt: number;
  /** Tells the node's output runner that the write is durable. */
  readonly done: () => void;
}

/**
 * One simulated server. Its MemoryStorage is its disk and survives crashes;
 * the core and the state machine (here: just the applied index) live in
 * memory and are lost. `life` counts (re)starts so that events scheduled for an
 * earlier life (its ticks, its restart) are recognised as stale.
 */
export class SimNode {
  /** Its disk: replaced only by wipeDisk() (the id comes back with a fresh data dir). */
  private disk: MemoryStorage;
  core: SimCore | null = null;
  life = 0;
  /** Last index applied to this life's state machine. */
  applied = 0;
  /** This life's state machine: a hash of everything applied, in order (see nextState). */
  state = 0;
  /** Snapshots that arrived from a leader and were stepped into the core, waiting for it to ask for their install. */
  readonly receivedSnapshots = new Map<string, StoredSnapshot>();
  /** Carries out this life's core output. */
  runner: OutputRunner | null = null;
  /**
   * Writes in progress, oldest first, with asynchronous persistence: outputs
   * taken from the core, not yet stored, their messages not yet sent. They
   * complete in order; a crash lets any prefix of them complete and loses the rest.
   */
  writes: PendingWrite[] = [];
  /** Serial of the last write started (across lives). */
  writeSerial = 0;
  /** The disk hangs until this time: no write completes earlier. The disk's, so it outlasts a crash. */
  diskStalledUntil = 0;
  /** A view of the durable log, for checks that compare a write with what it replaces. */
  readonly storedLog: LogView;
  /** A member of the cluster at some point: started at the beginning, or added later by a membership change. */
  joined: boolean;
  /** Its disk died (a 'replace' membership step): it never runs again, and the operator removes it. */
  retired = false;
  /** Started to be added, and not yet seen in the leader's configuration: the add may have been refused or overwritten. */
  awaitingAdd = false;
  /** How many times its disk was replaced by an empty one (see wipeDisk). */
  wipes = 0;
  /** This life's commit notices held back, by receiver (Scenario.commitNoticeDelay). */
  readonly noticeHolds = new Map<NodeId, CommitNoticeHold>();
  /** Senders whose messages to the current disk's processes have reached it (see ClusterDeps.reorderAcrossWipes). */
  readonly heardSinceWipe = new Set<NodeId>();

  constructor(
    readonly id: NodeId,
    voters: readonly NodeId[],
    readonly tickPeriod: number,
    commit: CommitChecker,
  ) {
    // A node not among the initial voters starts with an empty configuration: it waits to be added.
    this.joined = voters.includes(id);
    this.disk = new MemoryStorage({ voters: this.joined ? [...voters] : [] });
    // Reads whichever disk the node has now (wipeDisk replaces it).
    const stored: LogView = {
      termAt: (index: number): number | null => {
        const storage = this.disk;
        if (index === 0) return 0;
        if (index < storage.firstIndex() - 1 || index > storage.lastIndex()) return null;
        return storage.term(index);
      },
    };
    this.storedLog = throughCompaction(stored, () => this.disk.firstIndex(), commit);
  }

  get storage(): MemoryStorage {
    return this.disk;
  }

  /**
   * The operator wipes the data dir of a member removed earlier, to add it
   * again under the same id: empty log, empty hard state (term 0, no vote), no
   * snapshot, and no configuration, like a node that never joined. The process
   * must be down (it restarts over the new disk); a disk stall belonged to the old disk.
   */
  wipeDisk(): void {
    if (this.core !== null || this.writes.length > 0) throw new Error(`${this.id}'s disk is wiped while its process runs`);
    this.disk = new MemoryStorage({ voters: [] });
    this.diskStalledUntil = 0;
    this.wipes++;
    this.heardSinceWipe.clear();
  }

  /**
   * The end of the durable log: what this node would restart with. Read from
   * storage, never from the core: with asynchronous persistence the core holds
   * entries whose write has not completed (or has not even started), and a
   * conflicting append may have replaced in memory entries still on disk.
   */
  durableTail(): LogTail {
    const lastIndex = this.storage.lastIndex();
    return {
      node: this.id,
      lastIndex,
      lastTerm: this.storage.term(lastIndex),
      ...this.durableConfigMembers(),
      termAt: (index) => this.storedLog.termAt(index),
    };
  }

  /** The configuration this node would restart with: its durable log's latest config entry, else its snapshot's or initial one. */
  private durableConfigMembers(): { voters: readonly NodeId[]; members: readonly NodeId[] } {
    const storage = this.storage;
    let config = storage.snapshot()?.config ?? storage.initialState().config;
    const entries = storage.allEntries();
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i] as Entry;
      if (entry.kind === 'config') {
        config = decodeConfig(entry.data, `${this.id}, entry ${entry.index}`);
        break;
      }
    }
    return { voters: config.voters, members: [...config.voters, ...(config.learners ?? [])] };
  }

  get up(): boolean {
    return this.core !== null;
  }
}

/**
 * The simulated state machine: a 32-bit FNV-1a hash chain over every applied
 * entry. Deterministic, order-sensitive and cheap; two nodes that applied the
 * same log prefix hold the same state, and a snapshot carries it.
 */
export function nextState(state: number, entry: Entry): number {
  let h = (state ^ 0x811c9dc5) >>> 0;
  const mix = (byte: number): void => {
    h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  };
  for (let shift = 0; shift < 32; shift += 8) mix((entry.index >>> shift) & 0xff);
  mix(entry.kind === 'command' ? 1 : 2);
  for (const byte of entry.data) mix(byte);
  return h;
}

export function encodeState(state: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, state);
  return bytes;
}

export function decodeState(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
}

export function snapshotKey(meta: SnapshotMeta): string {
  return `${meta.index}/${meta.term}`;
}
