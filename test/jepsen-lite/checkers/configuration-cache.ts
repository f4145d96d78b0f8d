/**
 * The memo of the linearizability search: configurations (set of operations
 * already linearized, search state) it has already explored, or is exploring.
 *
 * A configuration is covered by a recorded one with the same state, the same
 * certain operations linearized, and a subset of the optional ones (those that
 * may be left out): whatever the first can still do, the second can too,
 * with the extra optional operations left out. So the search skips covered
 * configurations; two paths that reach the same configuration are the
 * simplest case.
 *
 * The caller lays the bitset out as a head (optional operations) and a tail
 * (certain ones, in call order), and keeps a Zobrist hash (XOR of a random
 * 64-bit word per member) of the tail only, so that all configurations that
 * may cover one another share a key. Recorded configurations with the same
 * key are chained; the table of keys is open-addressed over typed arrays, as
 * bad cases record millions of configurations.
 *
 * The tail is stored compressed: certain operations are linearized roughly in
 * call order, so the tail is a run of all-ones words, a few mixed words, then
 * zeros. It is kept as the length of the run plus the mixed words, or a
 * history of a few thousand operations would cost hundreds of bytes per entry.
 */

const MAX_LOAD = 0.5;
/** Past this many stored 32-bit words (256 MiB) the search gives up rather than exhaust memory. */
const MAX_STORED_WORDS = 2 ** 26;
const ALL_ONES = 0xffffffff;
const NO_ENTRY = -1;

export class ConfigurationCache {
  /** Per key: its newest entry. */
  private slots = new Int32Array(1024).fill(NO_ENTRY);
  private keys = 0;
  private hashLow = new Uint32Array(512);
  private hashHigh = new Uint32Array(512);
  private states = new Int32Array(512);
  /** Per entry: the next older entry with the same key. */
  private older = new Int32Array(512);
  /** Entry `e`'s words are `pool[offsets[e]] … pool[offsets[e + 1] - 1]`: the head words, then the encoded tail. */
  private offsets = new Int32Array(512);
  private pool = new Uint32Array(4096);
  private poolUsed = 0;
  private entries = 0;
  private readonly encoded: Uint32Array;
  private encodedLength = 0;

  constructor(
    private readonly words: number,
    private readonly headWords: number,
  ) {
    this.encoded = new Uint32Array(words + 1);
  }

  /** False once the memo has outgrown its memory limit. */
  get hasRoom(): boolean {
    return this.poolUsed <= MAX_STORED_WORDS;
  }

  /**
   * Records the configuration and returns true, or returns false if a
   * recorded one covers it. `low`/`high` is the Zobrist hash of the tail.
   */
  addUnlessCovered(set: Uint32Array, low: number, high: number, state: number): boolean {
    // Mixing the state in spreads configurations that differ only in state over different slots.
    const mixedLow = (low ^ Math.imul(state + 1, 0x9e3779b1)) >>> 0;
    const mixedHigh = (high ^ Math.imul(state + 1, 0x85ebca77)) >>> 0;
    let encoded = false;
    const mask = this.slots.length - 1;
    for (let slot = mixedLow & mask; ; slot = (slot + 1) & mask) {
      const newest = this.slots[slot]!;
      if (newest === NO_ENTRY) {
        if (!encoded) this.encode(set);
        this.slots[slot] = this.append(mixedLow, mixedHigh, state, NO_ENTRY);
        if (++this.keys > this.slots.length * MAX_LOAD) this.growSlots();
        return true;
      }
      if (this.hashLow[newest] !== mixedLow || this.hashHigh[newest] !== mixedHigh || this.states[newest] !== state) continue;
      if (!encoded) this.encode(set);
      encoded = true;
      if (!this.sameTail(newest)) continue;
      for (let entry = newest; entry !== NO_ENTRY; entry = this.older[entry]!) {
        if (this.headWithin(entry)) return false;
      }
      this.slots[slot] = this.append(mixedLow, mixedHigh, state, newest);
      return true;
    }
  }

  private encode(set: Uint32Array): void {
    const out = this.encoded;
    let length = 0;
    for (let w = 0; w < this.headWords; w++) out[length++] = set[w]!;
    let first = this.headWords;
    while (first < this.words && set[first] === ALL_ONES) first++;
    let last = this.words - 1;
    while (last >= first && set[last] === 0) last--;
    out[length++] = first;
    for (let w = first; w <= last; w++) out[length++] = set[w]!;
    this.encodedLength = length;
  }

  private sameTail(entry: number): boolean {
    const start = this.offsets[entry]!;
    if (this.offsets[entry + 1]! - start !== this.encodedLength) return false;
    for (let i = this.headWords; i < this.encodedLength; i++) if (this.pool[start + i] !== this.encoded[i]) return false;
    return true;
  }

  /** Whether the entry's optional operations are a subset of the ones being looked up. */
  private headWithin(entry: number): boolean {
    const start = this.offsets[entry]!;
    for (let w = 0; w < this.headWords; w++) if ((this.pool[start + w]! & ~this.encoded[w]!) !== 0) return false;
    return true;
  }

  private append(low: number, high: number, state: number, older: number): number {
    const entry = this.entries++;
    if (entry + 1 >= this.states.length) this.growEntries();
    if (this.poolUsed + this.encodedLength > this.pool.length) {
      this.pool = grown(this.pool, Math.max(this.pool.length * 2, this.poolUsed + this.encodedLength));
    }
    this.hashLow[entry] = low;
    this.hashHigh[entry] = high;
    this.states[entry] = state;
    this.older[entry] = older;
    this.pool.set(this.encoded.subarray(0, this.encodedLength), this.poolUsed);
    this.poolUsed += this.encodedLength;
    this.offsets[entry + 1] = this.poolUsed;
    return entry;
  }

  private growEntries(): void {
    const capacity = this.states.length * 2;
    this.hashLow = grown(this.hashLow, capacity);
    this.hashHigh = grown(this.hashHigh, capacity);
    this.states = grown(this.states, capacity);
    this.older = grown(this.older, capacity);
    this.offsets = grown(this.offsets, capacity);
  }

  private growSlots(): void {
    const slots = new Int32Array(this.slots.length * 2).fill(NO_ENTRY);
    const mask = slots.length - 1;
    for (const newest of this.slots) {
      if (newest === NO_ENTRY) continue;
      let slot = this.hashLow[newest]! & mask;
      while (slots[slot]! !== NO_ENTRY) slot = (slot + 1) & mask;
      slots[slot] = newest;
    }
    this.slots = slots;
  }
}

function grown<T extends Uint32Array | Int32Array>(array: T, length: number): T {
  const bigger = (array instanceof Int32Array ? new Int32Array(length) : new Uint32Array(length)) as T;
  bigger.set(array);
  return bigger;
}
