import { createHash, hash } from 'node:crypto';
import type { Entry } from '../raft/types.js';
import { decodeCommand, type KvCommand } from './kv-commands.js';

export type KvResult =
  | { readonly op: 'put' }
  | { readonly op: 'delete'; readonly existed: boolean }
  | { readonly op: 'cas'; readonly succeeded: boolean; readonly current: Uint8Array | null }
  | { readonly op: 'append' }
  /** The entry was a leader's no-op or bytes that are not a command: every replica skips it alike. */
  | { readonly op: 'none' };

const MOD = 1n << 256n;
const CHAIN_BYTES = 32;

/**
 * The state at one applied index, taken in one synchronous step. Values are
 * never mutated in place (every write stores a fresh copy, the record chain
 * is replaced, not changed), so the references it holds stay exactly as they
 * were while the machine goes on applying entries.
 */
export interface KvStateCapture {
  readonly appliedIndex: number;
  /** The machine's digest at appliedIndex. */
  readonly digest: string;
  readonly pairCount: number;
  readonly recordCount: number;
  /** 32 bytes; do not modify. */
  readonly recordChain: Uint8Array;
  /** The key/value pairs; keys are converted to bytes one at a time, as iterated. Do not modify the values. */
  pairs(): IterableIterator<readonly [key: Uint8Array, value: Uint8Array]>;
}

/** What a restored machine is built from: the parts of a KvStateCapture. */
export interface KvRestoredState {
  readonly appliedIndex: number;
  readonly recordCount: number;
  readonly recordChain: Uint8Array;
  readonly pairs: Iterable<readonly [key: Uint8Array, value: Uint8Array]>;
}

/** Adds restored pairs one at a time; finish() sets the rest of the state and returns the machine. */
export interface KvRestoreBuilder {
  /** The value is copied. Throws KvRestoreError for a key added before. */
  add(key: Uint8Array, value: Uint8Array): void;
  finish(tail: Omit<KvRestoredState, 'pairs'>): KvStateMachine;
}

/** Restored state that no machine could hold (a duplicate key, a malformed chain). */
export class KvRestoreError extends Error {}

function validateTail(tail: Omit<KvRestoredState, 'pairs'>): void {
  if (!Number.isSafeInteger(tail.appliedIndex) || tail.appliedIndex < 0) {
    throw new KvRestoreError(`applied index ${tail.appliedIndex} is not a non-negative integer`);
  }
  if (!Number.isSafeInteger(tail.recordCount) || tail.recordCount < 0) {
    throw new KvRestoreError(`record count ${tail.recordCount} is not a non-negative integer`);
  }
  if (tail.recordChain.byteLength !== CHAIN_BYTES) {
    throw new KvRestoreError(`record chain of ${tail.recordChain.byteLength} bytes, expected ${CHAIN_BYTES}`);
  }
}

/** A value and its pair hash, kept so that overwriting or deleting the key need not hash the old pair again. */
interface Stored {
  readonly value: Uint8Array;
  readonly hash: bigint;
}

/**
 * The replicated key-value store. It changes only by applying log entries in
 * index order and reads nothing else (no clock, no randomness, no I/O), so
 * replicas that applied the same prefix of the log hold the same state, and
 * their digests at that index are equal.
 *
 * The digest is kept up to date in O(1) per entry: a sum (mod 2^256) of one
 * hash per key/value pair, which does not depend on the order keys were
 * written, plus a hash chain of appended records, hashed together with the
 * applied index.
 */
export class KvStateMachine {
  private readonly data = new Map<string, Stored>();
  private pairSum = 0n;
  private recordChain = new Uint8Array(32);
  private recordCount = 0;
  private applied = 0;

  /**
   * A machine holding the given state, as if it had applied the log up to
   * state.appliedIndex; its digest is recomputed from the pairs, so comparing
   * it with the digest recorded at capture checks the restored state end to
   * end. Values are copied.
   */
  static restore(state: KvRestoredState): KvStateMachine {
    validateTail(state);
    const builder = KvStateMachine.restoring();
    for (const [key, value] of state.pairs) builder.add(key, value);
    return builder.finish(state);
  }

  /**
   * Builds a restored machine pair by pair, for a reader that streams the
   * pairs in and should not hold them all a second time.
   */
  static restoring(): KvRestoreBuilder {
    const machine = new KvStateMachine();
    let finished = false;
    return {
      add(key, value) {
        if (finished) throw new KvRestoreError('pair added after the restore finished');
        if (machine.data.has(keyString(key))) {
          const hex = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
          throw new KvRestoreError(`key ${hex.length > 64 ? `${hex.slice(0, 64)}…` : hex} (hex) appears twice`);
        }
        machine.set(key, value);
      },
      finish(tail) {
        if (finished) throw new KvRestoreError('restore finished twice');
        validateTail(tail);
        finished = true;
        machine.applied = tail.appliedIndex;
        machine.recordCount = tail.recordCount;
        machine.recordChain = new Uint8Array(tail.recordChain);
        return machine;
      },
    };
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get size(): number {
    return this.data.size;
  }

  get(key: Uint8Array): Uint8Array | null {
    return this.data.get(keyString(key))?.value ?? null;
  }

  apply(entry: Entry): KvResult {
    if (entry.index !== this.applied + 1) {
      throw new Error(`state machine applied up to ${this.applied}; cannot apply index ${entry.index} out of order`);
    }
    this.applied = entry.index;
    if (entry.kind !== 'command') return { op: 'none' };
    const command = decodeCommand(entry.data);
    return command === null ? { op: 'none' } : this.execute(command, entry.index);
  }

  /** Hex digest of the state at the applied index. */
  digest(): string {
    const hash = createHash('sha256');
    hash.update('raftlog-kv-v1');
    hash.update(u64(this.applied));
    hash.update(this.pairSum.toString(16).padStart(64, '0'));
    hash.update(u64(this.recordCount));
    hash.update(this.recordChain);
    return hash.digest('hex');
  }

  /**
   * The state as of now, in O(number of keys) reference copies and no
   * hashing of the pairs: cheap enough to take between two applies, and
   * unaffected by any apply after it.
   */
  capture(): KvStateCapture {
    const entries = Array.from(this.data);
    return {
      appliedIndex: this.applied,
      digest: this.digest(),
      pairCount: entries.length,
      recordCount: this.recordCount,
      recordChain: this.recordChain,
      *pairs() {
        for (const [k, stored] of entries) yield [Buffer.from(k, 'latin1'), stored.value] as const;
      },
    };
  }

  private execute(command: KvCommand, index: number): KvResult {
    switch (command.op) {
      case 'put':
        this.set(command.key, command.value);
        return { op: 'put' };
      case 'delete':
        return { op: 'delete', existed: this.remove(command.key) };
      case 'cas': {
        const current = this.get(command.key);
        const matches = command.expected === null ? current === null : current !== null && equalBytes(current, command.expected);
        if (!matches) return { op: 'cas', succeeded: false, current };
        this.set(command.key, command.value);
        return { op: 'cas', succeeded: true, current: command.value };
      }
      case 'append':
        this.recordChain = new Uint8Array(
          createHash('sha256').update(this.recordChain).update(u64(index)).update(command.record).digest(),
        );
        this.recordCount++;
        return { op: 'append' };
    }
  }

  private set(key: Uint8Array, value: Uint8Array): void {
    const k = keyString(key);
    const old = this.data.get(k);
    const copy = new Uint8Array(value);
    const added = pairHash(key, copy);
    this.data.set(k, { value: copy, hash: added });
    this.pairSum = (this.pairSum + added - (old?.hash ?? 0n) + MOD) % MOD;
  }

  private remove(key: Uint8Array): boolean {
    const k = keyString(key);
    const old = this.data.get(k);
    if (old === undefined) return false;
    this.data.delete(k);
    this.pairSum = (this.pairSum - old.hash + MOD) % MOD;
    return true;
  }
}

/** latin1 maps each byte to one character and back: a cheap exact Map key for bytes. */
function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function pairHash(key: Uint8Array, value: Uint8Array): bigint {
  // The key's length keeps ("ab","c") and ("a","bc") apart.
  const bytes = Buffer.allocUnsafe(8 + key.byteLength + value.byteLength);
  bytes.writeBigUInt64BE(BigInt(key.byteLength), 0);
  bytes.set(key, 8);
  bytes.set(value, 8 + key.byteLength);
  return BigInt(`0x${hash('sha256', bytes, 'hex')}`);
}

function u64(n: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(n));
  return bytes;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}
