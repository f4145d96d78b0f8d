import { ConfigHistory } from './membership.js';
import { type RaftStorage, takeWithinBytes } from './storage.js';
import type { Entry, SnapshotMeta } from './types.js';

/**
 * A node's view of its log: what storage holds (persisted) plus entries that
 * were appended in memory and are waiting to be persisted ("unstable"). The
 * unstable entries win from `unstableOffset` onward: after a conflicting
 * suffix is replaced, storage still holds the old entries until the caller
 * writes the new ones, and they must not be read in the meantime.
 */
export class RaftLog {
  private unstable: Entry[] = [];
  /** Index of unstable[0]; everything below comes from storage. */
  private unstableOffset: number;
  /**
   * A snapshot from the leader that replaced this log and is not yet stored:
   * until it is, storage still holds the old log, which must not be read.
   */
  private unstableSnapshot: SnapshotMeta | null = null;
  /**
   * Writes in progress (etcd's offsetInProgress): unstable entries up to this
   * index, and the unstable snapshot if `snapshotInProgress`, were handed to
   * the caller in a write that has not completed yet. They stay unstable (the
   * core reads them from memory) but are not handed out again.
   */
  private inProgress: number;
  private snapshotInProgress = false;
  committed: number;
  applied: number;
  /** The configurations this log holds; the latest is in force (dissertation §4.1: in force once appended). */
  readonly configs: ConfigHistory;

  constructor(
    private readonly storage: RaftStorage,
    private readonly nodeId: string,
    committed: number,
    applied: number,
  ) {
    this.unstableOffset = storage.lastIndex() + 1;
    this.inProgress = storage.lastIndex();
    this.committed = committed;
    this.applied = applied;
    const snapshot = storage.snapshot();
    this.configs = new ConfigHistory(snapshot?.config ?? storage.initialState().config, snapshot?.index ?? 0, nodeId);
    const first = storage.firstIndex();
    if (storage.lastIndex() >= first) this.configs.append(storage.entries(first, storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER));
  }

  firstIndex(): number {
    return this.unstableSnapshot !== null ? this.unstableSnapshot.index + 1 : this.storage.firstIndex();
  }

  /** The latest snapshot: one waiting to be stored, or storage's. */
  snapshot(): SnapshotMeta | null {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }

  pendingSnapshot(): SnapshotMeta | null {
    return this.unstableSnapshot;
  }

  /**
   * Replaces the whole log with a snapshot from the leader (Raft paper §7:
   * this log holds no entry matching the snapshot's last one, so every entry
   * it holds is discarded). Everything up to the snapshot counts as committed
   * and, once the caller has installed it, applied.
   */
  restore(snapshot: SnapshotMeta): void {
    if (snapshot.index <= this.committed) {
      throw new Error(`node ${this.nodeId}: snapshot at ${snapshot.index} would roll back the commit index ${this.committed}`);
    }
    this.unstableSnapshot = snapshot;
    this.snapshotInProgress = false;
    this.unstable = [];
    this.unstableOffset = snapshot.index + 1;
    this.inProgress = snapshot.index;
    this.configs.restore(snapshot.config, snapshot.index);
    this.committed = snapshot.index;
    this.applied = snapshot.index;
  }

  /** The caller stored this snapshot: storage serves the log again. */
  snapshotStored(snapshot: SnapshotMeta): void {
    if (this.unstableSnapshot !== snapshot) return;
    this.unstableSnapshot = null;
    this.snapshotInProgress = false;
  }

  /** What the next write must store: the unstable snapshot and entries not yet handed out in a write. */
  snapshotToWrite(): SnapshotMeta | null {
    return this.snapshotInProgress ? null : this.unstableSnapshot;
  }

  entriesToWrite(): readonly Entry[] {
    const from = this.inProgress + 1 - this.unstableOffset;
    return from <= 0 ? this.unstable : this.unstable.slice(from);
  }

  /** Everything to write was handed out: the next write starts after it. */
  writeHandedOut(): void {
    this.inProgress = this.lastIndex();
    if (this.unstableSnapshot !== null) this.snapshotInProgress = true;
  }

  lastIndex(): number {
    return this.unstable.length > 0 ? this.unstableOffset + this.unstable.length - 1 : this.unstableOffset - 1;
  }

  lastTerm(): number {
    return this.termAt(this.lastIndex()) ?? 0;
  }

  /** The highest index that is both in storage and still part of this log. */
  stableIndex(): number {
    return this.unstableOffset - 1;
  }

  /** The term of the entry at `index`, or null when this log does not hold it (beyond the end, or compacted). */
  termAt(index: number): number | null {
    if (index >= this.unstableOffset) {
      const entry = this.unstable[index - this.unstableOffset];
      return entry === undefined ? null : entry.term;
    }
    if (this.unstableSnapshot !== null) return index === this.unstableSnapshot.index ? this.unstableSnapshot.term : null;
    if (index < this.storage.firstIndex() - 1) return null;
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.termAt(index) === term;
  }

  entryAt(index: number): Entry | null {
    if (index < this.firstIndex() || index > this.lastIndex()) return null;
    return this.slice(index, index + 1, Number.MAX_SAFE_INTEGER)[0] ?? null;
  }

  /** Entries in [from, to) within maxBytes (at least one if the range is not empty). */
  slice(from: number, to: number, maxBytes: number): Entry[] {
    if (from >= to) return [];
    if (from < this.firstIndex() || to > this.lastIndex() + 1) {
      throw new Error(`node ${this.nodeId}: entries [${from}, ${to}) requested, log holds ${this.firstIndex()}..${this.lastIndex()}`);
    }
    let result: Entry[] = [];
    if (from < this.unstableOffset) {
      result = this.storage.entries(from, Math.min(to, this.unstableOffset), maxBytes);
      const reachedEnd = result.length === Math.min(to, this.unstableOffset) - from;
      if (!reachedEnd || to <= this.unstableOffset) return result;
    }
    const start = Math.max(from, this.unstableOffset);
    return takeWithinBytes(start, to, maxBytes, (index) => this.unstable[index - this.unstableOffset] as Entry, result);
  }

  /** Appends after the last entry (a leader's own proposals). */
  appendNew(entries: readonly Entry[]): void {
    this.unstable.push(...entries);
    this.configs.append(entries);
  }

  /**
   * Appends entries received from a leader whose prevLogIndex/prevLogTerm
   * already matched: entries this log holds with the same term are skipped,
   * the first conflicting one and everything after it is replaced.
   */
  appendFromLeader(entries: readonly Entry[]): void {
    let firstNew = -1;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry;
      if (this.termAt(entry.index) !== entry.term) {
        firstNew = i;
        break;
      }
    }
    if (firstNew < 0) return;
    const conflictIndex = (entries[firstNew] as Entry).index;
    if (conflictIndex <= this.committed) {
      throw new Error(
        `node ${this.nodeId}: refusing to overwrite committed entry at index ${conflictIndex} (commit ${this.committed}); ` +
          'a leader sent a log that conflicts with committed entries',
      );
    }
    this.truncateAndAppend(entries.slice(firstNew));
  }

  private truncateAndAppend(entries: readonly Entry[]): void {
    const first = (entries[0] as Entry).index;
    this.configs.append(entries);
    // A write in progress holds the replaced entries: the replacements go out in a later write, which storage applies after it.
    if (first <= this.inProgress) this.inProgress = first - 1;
    if (first === this.unstableOffset + this.unstable.length) {
      this.unstable.push(...entries);
    } else if (first > this.unstableOffset) {
      this.unstable = this.unstable.slice(0, first - this.unstableOffset);
      this.unstable.push(...entries);
    } else {
      // The conflict reaches into storage: from here on the new entries win, and
      // the caller rewrites storage from `first` when it persists them.
      this.unstableOffset = first;
      this.unstable = [...entries];
    }
  }

  /**
   * The largest index at or below `index` whose term is at most `term`: every
   * entry above it certainly conflicts with a log whose entry at `index` has
   * `term`, so replication can skip them all (fast backtracking).
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i >= this.firstIndex()) {
      const t = this.termAt(i);
      if (t === null || t <= term) return i;
      i--;
    }
    return i;
  }

  /** The caller persisted entries up to (index, term): they are now read from storage. */
  stableTo(index: number, term: number): void {
    if (index < this.unstableOffset) return;
    const entry = this.unstable[index - this.unstableOffset];
    // A conflicting append since the batch was handed out replaced this entry; the new one is still unstable.
    if (entry === undefined || entry.term !== term) return;
    this.unstable = this.unstable.slice(index - this.unstableOffset + 1);
    this.unstableOffset = index + 1;
    this.inProgress = Math.max(this.inProgress, index);
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    if (index > this.lastIndex()) {
      throw new Error(
        `node ${this.nodeId}: told to commit index ${index}, but its log ends at ${this.lastIndex()}: ` +
          'a leader only does so when this node had acknowledged those entries (was the log corrupted, truncated, or lost?)',
      );
    }
    this.committed = index;
    return true;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }
}
