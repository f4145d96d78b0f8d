import type { ClusterConfig, Entry, HardState } from './types.js';

/**
 * What the core reads of the durable log. Reads are synchronous: the core is a
 * pure state machine and cannot wait. A disk-backed implementation keeps what
 * it serves in memory (or a cache) and writes through to disk; the core only
 * reads entries the caller has already persisted and acknowledged.
 *
 * Indexes: entries firstIndex()..lastIndex() are held. firstIndex() may be
 * greater than 1 once a prefix is compacted into a snapshot; term(firstIndex()-1)
 * must still answer (the snapshot's last term). An empty log has
 * lastIndex() === firstIndex() - 1.
 */
export interface RaftStorage {
  initialState(): { readonly hardState: HardState; readonly config: ClusterConfig };
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

/** Sums entry payloads up to maxBytes, keeping at least one entry. */
export function limitBytes<T extends { readonly data: Uint8Array }>(items: readonly T[], maxBytes: number): T[] {
  const out: T[] = [];
  let size = 0;
  for (const item of items) {
    size += item.data.byteLength;
    if (out.length > 0 && size > maxBytes) break;
    out.push(item);
  }
  return out;
}
