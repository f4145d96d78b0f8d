/**
 * The pure bookkeeping behind the delivery benchmark: records that carry
 * their send time, the check that a subscriber's covered ranges join up,
 * sets of log indexes, and what the writers lost to the subscribers. No I/O,
 * so each rule can be fed a broken input in a test.
 */

/** Bytes at the front of a stamped record that hold its send time (a float64, performance.now() ms), as the NATS anchor does. */
export const STAMP_BYTES = 8;

/** A record of `size` bytes whose first 8 bytes say when it was sent. */
export function stampedRecord(size: number, sentAt: number): Buffer {
  if (size < STAMP_BYTES) throw new RangeError(`a stamped record needs at least ${STAMP_BYTES} bytes, asked for ${size}`);
  const record = Buffer.alloc(size, 'x');
  record.writeDoubleLE(sentAt, 0);
  return record;
}

/** The send time a stamped record carries; null for a record too short to carry one, or one that holds no time. */
export function sentTimeOf(record: Uint8Array): number | null {
  if (record.byteLength < STAMP_BYTES) return null;
  const t = Buffer.from(record.buffer, record.byteOffset, STAMP_BYTES).readDoubleLE(0);
  return Number.isFinite(t) ? t : null;
}

/** A reply as the coverage check sees it: the range it covers and the indexes of the entries it carries. */
export interface CoveredReply {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly entryIndexes: readonly number[];
}

export type CoverageProblem =
  /** Indexes after..next-1 (exclusive of after) were never covered: entries may have been skipped. */
  | { readonly kind: 'gap'; readonly after: number; readonly next: number }
  /** A reply started at or before an index already covered. */
  | { readonly kind: 'overlap'; readonly after: number; readonly next: number }
  /** A reply whose last index is below its first minus one (first > last + 1). */
  | { readonly kind: 'bad-range'; readonly first: number; readonly last: number }
  /** An entry outside the range its reply claims to cover. */
  | { readonly kind: 'entry-outside-range'; readonly index: number; readonly first: number; readonly last: number }
  /** Entries in a reply not in strictly increasing index order. */
  | { readonly kind: 'out-of-order'; readonly index: number; readonly previous: number }
  /** A covered index with no entry, on a stream without a filter: that entry was dropped. */
  | { readonly kind: 'missing-entry'; readonly index: number };

/** Problems kept in full; beyond this only counted, so a badly broken stream cannot fill memory. */
const KEPT_PROBLEMS = 20;

/**
 * Checks the Subscribe contract as one subscriber sees it: every reply covers
 * first..last, the next reply starts at last + 1, and entries lie inside
 * their reply's range in index order. Without a filter every covered index
 * must carry its entry. A resubscription continues the same check, so a
 * subscriber that moved to another node still proves it skipped nothing.
 */
export class CoverageCheck {
  /** The first index the subscriber was to receive; null before the first reply. */
  private startIndex: number | null;
  /** Last index covered so far (start - 1 before anything was covered). */
  private covered: number;
  private readonly kept: CoverageProblem[] = [];
  private count = 0;

  /** `expectStart`: the index the first reply must start at; null when the server picks it (from the tail). */
  constructor(
    expectStart: number | null = null,
    private readonly unfiltered = true,
  ) {
    this.startIndex = expectStart;
    this.covered = expectStart === null ? 0 : expectStart - 1;
  }

  get start(): number | null {
    return this.startIndex;
  }

  /** The last index covered, or null before the first reply. */
  get through(): number | null {
    return this.startIndex === null ? null : this.covered;
  }

  get problemCount(): number {
    return this.count;
  }

  get problems(): readonly CoverageProblem[] {
    return this.kept;
  }

  accept(reply: CoveredReply): void {
    const { firstIndex: first, lastIndex: last } = reply;
    if (first > last + 1) {
      this.problem({ kind: 'bad-range', first, last });
      return;
    }
    if (this.startIndex === null) {
      this.startIndex = first;
      this.covered = first - 1;
    } else if (first > this.covered + 1) {
      this.problem({ kind: 'gap', after: this.covered, next: first });
    } else if (first < this.covered + 1) {
      this.problem({ kind: 'overlap', after: this.covered, next: first });
    }
    let previous = first - 1;
    for (const index of reply.entryIndexes) {
      if (index < first || index > last) this.problem({ kind: 'entry-outside-range', index, first, last });
      else if (index <= previous) this.problem({ kind: 'out-of-order', index, previous });
      else if (this.unfiltered && index > previous + 1) {
        for (let missing = previous + 1; missing < index; missing++) this.problem({ kind: 'missing-entry', index: missing });
      }
      if (index > previous) previous = index;
    }
    if (this.unfiltered && previous < last) {
      for (let missing = previous + 1; missing <= last; missing++) this.problem({ kind: 'missing-entry', index: missing });
    }
    this.covered = Math.max(this.covered, last);
  }

  private problem(p: CoverageProblem): void {
    this.count++;
    if (this.kept.length < KEPT_PROBLEMS) this.kept.push(p);
  }
}

export function describeProblem(p: CoverageProblem): string {
  switch (p.kind) {
    case 'gap':
      return `gap: covered through ${p.after}, next reply starts at ${p.next}`;
    case 'overlap':
      return `overlap: covered through ${p.after}, next reply starts at ${p.next}`;
    case 'bad-range':
      return `bad range ${p.first}..${p.last}`;
    case 'entry-outside-range':
      return `entry ${p.index} outside its reply's range ${p.first}..${p.last}`;
    case 'out-of-order':
      return `entry ${p.index} after entry ${p.previous}`;
    case 'missing-entry':
      return `covered index ${p.index} has no entry`;
  }
}

/** A growable set of log indexes from a base on, one bit each: a run's acknowledged or received indexes. */
export class IndexSet {
  private bits = new Uint8Array(1 << 13);
  private base: number | null = null;
  private n = 0;
  private highest = 0;

  get size(): number {
    return this.n;
  }

  /** The highest index added; 0 when empty. */
  get max(): number {
    return this.highest;
  }

  add(index: number): void {
    if (!Number.isSafeInteger(index) || index < 1) throw new RangeError(`not a log index: ${index}`);
    if (this.base === null) this.base = index;
    if (index < this.base) this.rebase(index);
    const offset = index - this.base;
    if (offset >> 3 >= this.bits.length) this.grow(offset);
    const byte = offset >> 3;
    const bit = 1 << (offset & 7);
    if (((this.bits[byte] as number) & bit) !== 0) return;
    this.bits[byte] = (this.bits[byte] as number) | bit;
    this.n++;
    if (index > this.highest) this.highest = index;
  }

  has(index: number): boolean {
    if (this.base === null || index < this.base) return false;
    const offset = index - this.base;
    const byte = offset >> 3;
    return byte < this.bits.length && ((this.bits[byte] as number) & (1 << (offset & 7))) !== 0;
  }

  /** Every index in the set, ascending. */
  *[Symbol.iterator](): IterableIterator<number> {
    if (this.base === null) return;
    for (let byte = 0; byte < this.bits.length; byte++) {
      const b = this.bits[byte] as number;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) if ((b & (1 << bit)) !== 0) yield this.base + byte * 8 + bit;
    }
  }

  private grow(offset: number): void {
    let length = this.bits.length;
    while (offset >> 3 >= length) length *= 2;
    const bigger = new Uint8Array(length);
    bigger.set(this.bits);
    this.bits = bigger;
  }

  private rebase(index: number): void {
    const old = [...this];
    this.bits = new Uint8Array(this.bits.length);
    this.base = index - (index % 8);
    this.n = 0;
    this.highest = 0;
    for (const i of old) this.add(i);
  }
}

/** What one subscriber lacks of the acknowledged writes it was due: those at or after its start index. */
export function undelivered(acked: IndexSet, received: IndexSet, start: number | null): { missing: number; first: number[] } {
  const first: number[] = [];
  let missing = 0;
  for (const index of acked) {
    if (start !== null && index < start) continue;
    if (!received.has(index)) {
      missing++;
      if (first.length < 10) first.push(index);
    }
  }
  return { missing, first };
}

/** Acknowledged writes the subscriber could not get because they were committed before it started (a harness error if not 0). */
export function ackedBeforeStart(acked: IndexSet, start: number | null): number {
  if (start === null) return acked.size;
  let n = 0;
  for (const index of acked) {
    if (index >= start) break;
    n++;
  }
  return n;
}

/**
 * Percent of the writers' throughput lost with subscribers attached, against
 * the same load without them: 5 means 5 % fewer ops/s; negative when the
 * row with subscribers happened to be faster. Null without a usable baseline.
 */
export function writerCostPct(withSubscribers: number, without: number | null | undefined): number | null {
  if (without == null || without <= 0) return null;
  return Math.round((1 - withSubscribers / without) * 1000) / 10;
}

/** Entries a subscriber trailed by: the newest acknowledged index minus the last index it had covered (never negative). */
export function lagBehind(highestAcked: number, through: number | null): number {
  return Math.max(0, highestAcked - (through ?? 0));
}
