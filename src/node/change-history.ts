import type { WireLogEntryKind } from '../api/client-api.js';
import type { KvChange } from './kv-state-machine.js';

/** How much of the physical log a node keeps in memory for CHANGES subscribers. */
export const CHANGE_HISTORY_DEFAULTS = { entries: 100_000, bytes: 64 * 1024 * 1024 } as const;

export interface ChangedEntry {
  readonly index: number;
  readonly term: number;
  /** The kind of command that made the changes. */
  readonly kind: WireLogEntryKind;
  readonly changes: readonly KvChange[];
}

/**
 * What the last applied entries did to keys, for the CHANGES view. A change
 * can only be computed while applying (it needs the state just before), so
 * the node records it then and keeps a bounded window: the changes of every
 * applied index from `firstIndex` on are known (an index with no record
 * changed nothing). Values are shared with the state machine, never copied:
 * it never changes a stored value in place.
 */
export class ChangeHistory {
  private readonly entries: ChangedEntry[] = [];
  /** entries[head] is the oldest kept; dropping from the front is a cursor move, compacted now and then. */
  private head = 0;
  private bytes = 0;
  private first: number;
  private last: number;

  constructor(
    appliedIndex: number,
    private readonly limits: { readonly entries: number; readonly bytes: number } = CHANGE_HISTORY_DEFAULTS,
  ) {
    this.first = appliedIndex + 1;
    this.last = appliedIndex;
  }

  /** The first index whose changes are known. */
  get firstIndex(): number {
    return this.first;
  }

  /** The last index recorded (the applied index). */
  get lastIndex(): number {
    return this.last;
  }

  /** Records the changes of the next applied index (possibly none). */
  record(index: number, term: number, kind: WireLogEntryKind, changes: readonly KvChange[]): void {
    if (index !== this.last + 1) throw new Error(`change history recorded up to ${this.last}; cannot record index ${index}`);
    this.last = index;
    if (changes.length === 0) return;
    this.entries.push({ index, term, kind, changes });
    this.bytes += sizeOf(changes);
    while (this.entries.length - this.head > this.limits.entries || (this.bytes > this.limits.bytes && this.entries.length - this.head > 1)) {
      const dropped = this.entries[this.head] as ChangedEntry;
      this.entries[this.head] = undefined as unknown as ChangedEntry;
      this.head++;
      this.bytes -= sizeOf(dropped.changes);
      this.first = dropped.index + 1;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The state jumped (a snapshot was installed): nothing before appliedIndex + 1 is known any more. */
  reset(appliedIndex: number): void {
    this.entries.length = 0;
    this.head = 0;
    this.bytes = 0;
    this.first = appliedIndex + 1;
    this.last = appliedIndex;
  }

  /**
   * Changed entries with index from..through (both within the known range),
   * at most `max` of them; `through` is where the answer stops, so the
   * caller knows which indexes it covers (fewer than asked when max was hit).
   */
  read(from: number, through: number, max: number): { entries: ChangedEntry[]; through: number } {
    const entries: ChangedEntry[] = [];
    let at = this.search(from);
    while (at < this.entries.length) {
      const entry = this.entries[at] as ChangedEntry;
      if (entry.index > through) break;
      if (entries.length === max) return { entries, through: entry.index - 1 };
      entries.push(entry);
      at++;
    }
    return { entries, through };
  }

  /** Position of the first kept entry with index >= from. */
  private search(from: number): number {
    let low = this.head;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.entries[mid] as ChangedEntry).index < from) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

function sizeOf(changes: readonly KvChange[]): number {
  let bytes = 0;
  for (const change of changes) bytes += 64 + change.key.byteLength + (change.before?.byteLength ?? 0) + (change.after?.byteLength ?? 0);
  return bytes;
}
