import type { ClusterConfig, Entry, HardState, SnapshotMeta } from './types.js';

/**
 * What the core reads of the durable log. Reads are synchronous: the core is a
 * pure state machine and cannot wait. A disk-backed implementation keeps what
 * it serves in memory (or a cache) and writes through to disk; the core only
 * reads entries the caller has already reported persisted.
 *
 * Indexes: entries firstIndex()..lastIndex() are held. firstIndex() may be
 * greater than 1 once a prefix is compacted; term(firstIndex()-1) must still
 * answer. An empty log has lastIndex() === firstIndex() - 1.
 *
 * Snapshots: the caller takes snapshots of its state machine and compacts the
 * log on its own schedule, straight on its storage (never an entry it has not
 * applied, never past its latest snapshot), so that snapshot() always covers
 * every compacted entry: snapshot().index >= firstIndex() - 1. Installing a
 * snapshot received from the leader goes through the core's output instead.
 */
export interface RaftStorage {
  initialState(): { readonly hardState: HardState; readonly config: ClusterConfig };
  /** The latest snapshot, or null while nothing was ever compacted. */
  snapshot(): SnapshotMeta | null;
  firstIndex(): number;
  lastIndex(): number;
  /** The term of the entry at `index`, for firstIndex()-1 <= index <= lastIndex(). Index 0 has term 0. */
  term(index: number): number;
  /**
   * Entries in [from, to), at most `maxBytes` of data but always at least one
   * when the range is not empty. Throws when the range is not held.
   */
  entries(from: number, to: number, maxBytes: number): Entry[];
}

export class StorageRangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageRangeError';
  }
}

/**
 * Appends to `out` the entries at indexes [from, to), read with `entryAt`,
 * while their data fits in maxBytes (counting what `out` already holds); the
 * first entry is taken whatever its size, so a batch is never empty. Reads
 * only the entries it takes.
 */
export function takeWithinBytes(from: number, to: number, maxBytes: number, entryAt: (index: number) => Entry, out: Entry[] = []): Entry[] {
  let size = 0;
  for (const entry of out) size += entry.data.byteLength;
  for (let index = from; index < to; index++) {
    const entry = entryAt(index);
    size += entry.data.byteLength;
    if (out.length > 0 && size > maxBytes) break;
    out.push(entry);
  }
  return out;
}
