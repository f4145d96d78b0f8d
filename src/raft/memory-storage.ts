import { StorageRangeError, takeWithinBytes, type RaftStorage } from './storage.js';
import type { ClusterConfig, Entry, HardState } from './types.js';

/**
 * Storage held in memory: the tests' and the simulator's stand-in for disk.
 * "Persisting" an output batch means calling save(); anything not saved is
 * what a crash loses.
 */
export class MemoryStorage implements RaftStorage {
  private hardState: HardState = { term: 0, votedFor: null, commit: 0 };
  private log: Entry[] = [];
  /** Index and term of the entry just before log[0] (a snapshot's last entry; 0/0 for none). */
  private offsetIndex = 0;
  private offsetTerm = 0;

  constructor(private readonly config: ClusterConfig) {}

  initialState(): { hardState: HardState; config: ClusterConfig } {
    return { hardState: this.hardState, config: this.config };
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
      throw new StorageRangeError(
        `term(${index}) is outside the stored range ${this.offsetIndex}..${this.lastIndex()}`,
      );
    }
    return entry.term;
  }

  entries(from: number, to: number, maxBytes: number): Entry[] {
    if (from < this.firstIndex() || to > this.lastIndex() + 1 || from > to) {
      throw new StorageRangeError(
        `entries [${from}, ${to}) are outside the stored range ${this.firstIndex()}..${this.lastIndex()}`,
      );
    }
    return takeWithinBytes(from, to, maxBytes, (index) => this.log[index - this.offsetIndex - 1] as Entry);
  }

  /** Applies one output batch's durable part, as one atomic write. */
  save(hardState: HardState | null, entries: readonly Entry[]): void {
    if (entries.length > 0) this.append(entries);
    if (hardState !== null) this.hardState = hardState;
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
