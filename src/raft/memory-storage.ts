import { type RaftStorage, StorageRangeError, takeWithinBytes } from './storage.js';
import type { ClusterConfig, Entry, HardState, SnapshotMeta } from './types.js';

/**
 * Storage held in memory: the tests' and the simulator's stand-in for disk.
 * "Persisting" an output batch means calling save(); anything not saved is
 * what a crash loses.
 */
export class MemoryStorage implements RaftStorage {
  private hardState: HardState = { term: 0, votedFor: null, commit: 0 };
  private log: Entry[] = [];
  /** Index and term of the entry just before log[0] (the last compacted entry; 0/0 for none). */
  private offsetIndex = 0;
  private offsetTerm = 0;
  private latestSnapshot: StoredSnapshot | null = null;

  constructor(private config: ClusterConfig) {}

  initialState(): { hardState: HardState; config: ClusterConfig } {
    return { hardState: this.hardState, config: this.config };
  }

  snapshot(): SnapshotMeta | null {
    return this.latestSnapshot?.meta ?? null;
  }

  /** The latest snapshot with the caller's state, for the caller to restore from or send. */
  snapshotWithData(): StoredSnapshot | null {
    return this.latestSnapshot;
  }

  /**
   * Keeps a snapshot the caller took of its own state machine at an index it
   * has applied (and so holds, committed, in this log).
   */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    if (this.latestSnapshot !== null && meta.index <= this.latestSnapshot.meta.index) {
      throw new StorageRangeError(`snapshot at ${meta.index} is not newer than the stored one at ${this.latestSnapshot.meta.index}`);
    }
    if (meta.index < this.offsetIndex || meta.index > this.lastIndex()) {
      throw new StorageRangeError(`snapshot at ${meta.index} is outside the stored range ${this.offsetIndex}..${this.lastIndex()}`);
    }
    const term = this.term(meta.index);
    if (term !== meta.term) {
      throw new StorageRangeError(`snapshot at ${meta.index} says term ${meta.term}, the log holds term ${term} there`);
    }
    this.latestSnapshot = { meta, data };
  }

  /** Deletes every entry up to and including `index`, which the latest snapshot must cover. */
  compact(index: number): void {
    if (index <= this.offsetIndex) return;
    const covered = this.latestSnapshot?.meta.index ?? 0;
    if (index > covered) {
      throw new StorageRangeError(`cannot compact up to ${index}: the latest snapshot only covers up to ${covered}`);
    }
    if (index > this.lastIndex()) {
      throw new StorageRangeError(`cannot compact up to ${index}: the log ends at ${this.lastIndex()}`);
    }
    const term = this.term(index);
    this.log = this.log.slice(index - this.offsetIndex);
    this.offsetIndex = index;
    this.offsetTerm = term;
  }

  firstIndex(): number {
    return this.offsetIndex + 1;
  }

  lastIndex(): number {
    return this.offsetIndex + this.log.length;
  }

  term(index: number): number {
    if (index === this.offsetIndex) return this.offsetTerm;
    const entry = this.log[index - this.offsetIndex - 1];
    if (entry === undefined) {
      throw new StorageRangeError(`term(${index}) is outside the stored range ${this.offsetIndex}..${this.lastIndex()}`);
    }
    return entry.term;
  }

  entries(from: number, to: number, maxBytes: number): Entry[] {
    if (from < this.firstIndex() || to > this.lastIndex() + 1 || from > to) {
      throw new StorageRangeError(`entries [${from}, ${to}) are outside the stored range ${this.firstIndex()}..${this.lastIndex()}`);
    }
    return takeWithinBytes(from, to, maxBytes, (index) => this.log[index - this.offsetIndex - 1] as Entry);
  }

  /**
   * Applies one output batch's durable part, as one atomic write: a snapshot
   * from the leader (with the caller's state) replaces the whole log, then
   * the entries are appended.
   */
  save(hardState: HardState | null, entries: readonly Entry[], snapshot: StoredSnapshot | null = null): void {
    if (snapshot !== null) this.install(snapshot);
    if (entries.length > 0) this.append(entries);
    if (hardState !== null) this.hardState = hardState;
  }

  private install(snapshot: StoredSnapshot): void {
    const { meta } = snapshot;
    if (this.latestSnapshot !== null && meta.index <= this.latestSnapshot.meta.index) {
      throw new StorageRangeError(`snapshot at ${meta.index} is not newer than the stored one at ${this.latestSnapshot.meta.index}`);
    }
    this.latestSnapshot = snapshot;
    this.log = [];
    this.offsetIndex = meta.index;
    this.offsetTerm = meta.term;
    this.config = meta.config;
  }

  /** Replaces the log from entries[0].index onward. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index < this.firstIndex() || first.index > this.lastIndex() + 1) {
      throw new StorageRangeError(
        `append at ${first.index} would leave a gap or rewrite compacted entries (held ${this.firstIndex()}..${this.lastIndex()})`,
      );
    }
    this.log.length = first.index - this.offsetIndex - 1;
    for (const entry of entries) this.log.push(entry);
  }

  /** Everything held, for tests and invariant checks. */
  allEntries(): readonly Entry[] {
    return this.log;
  }

  currentHardState(): HardState {
    return this.hardState;
  }
}

/** A snapshot as a MemoryStorage keeps it: the core's view and the caller's state, opaque here. */
export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}
