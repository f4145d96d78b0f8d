import { createHash, hash } from 'node:crypto';
import type { Entry } from '../raft/types.js';
import { type ConsumerPosition, ConsumerPositions } from './consumer-positions.js';
import { decodeCommand, type KvCommand, type KvWrite } from './kv-commands.js';
import {
  type ProducerRefusal,
  type ProducerSessionState,
  ProducerSessions,
  type ProducerStamp,
  type RememberedWrite,
  type StampVerdict,
  type WriteOutcome,
} from './producer-sessions.js';
import { HASH_MODULUS, hashHex } from './state-hash.js';

/** Why the state machine refused a command; every replica refuses alike and nothing changed. */
export type KvRefusal = ProducerRefusal | 'invalid-consumer' | 'position-backwards' | 'position-beyond-log';

export type KvResult =
  | WriteOutcome
  | { readonly op: 'commit-position'; readonly position: number }
  | { readonly op: 'delete-consumer'; readonly existed: boolean }
  | { readonly op: 'register-producer'; readonly producerId: number }
  /** A producer's write applied before (at write.index): nothing was applied now; the answer is the first one's. */
  | { readonly op: 'duplicate'; readonly write: RememberedWrite }
  | { readonly op: 'refused'; readonly reason: KvRefusal; readonly message: string }
  /** The entry was a leader's no-op or bytes that are not a command: every replica skips it alike. */
  | { readonly op: 'none' };

/** What applying an entry did to one key: the physical log's record of it. */
export interface KvChange {
  readonly key: Uint8Array;
  /** null: the key did not exist before. */
  readonly before: Uint8Array | null;
  /** null: the key was deleted. */
  readonly after: Uint8Array | null;
}

const MOD = HASH_MODULUS;
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
  /** Durable consumers, sorted by name. */
  readonly consumers: readonly ConsumerPosition[];
  /** Producer sessions, oldest first. */
  readonly producers: readonly ProducerSessionState[];
}

/** What a restored machine is built from: the parts of a KvStateCapture. */
export interface KvRestoredState {
  readonly appliedIndex: number;
  readonly recordCount: number;
  readonly recordChain: Uint8Array;
  readonly pairs: Iterable<readonly [key: Uint8Array, value: Uint8Array]>;
  readonly consumers?: Iterable<ConsumerPosition>;
  readonly producers?: Iterable<ProducerSessionState>;
}

/** Adds restored pairs, consumers and sessions one at a time; finish() sets the rest of the state and returns the machine. */
export interface KvRestoreBuilder {
  /** The value is copied. Throws KvRestoreError for a key added before. */
  add(key: Uint8Array, value: Uint8Array): void;
  /** Throws KvRestoreError for a name added before. */
  addConsumer(consumer: ConsumerPosition): void;
  /** Throws KvRestoreError for an id added before. */
  addProducer(session: ProducerSessionState): void;
  finish(tail: Omit<KvRestoredState, 'pairs' | 'consumers' | 'producers'>): KvStateMachine;
}

/** Restored state that no machine could hold (a duplicate key, a malformed chain). */
export class KvRestoreError extends Error {}

function validateTail(tail: Omit<KvRestoredState, 'pairs' | 'consumers' | 'producers'>): void {
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
 * applied index; durable consumers and producer sessions add sums of their
 * own (snapshot.proto defines it all).
 */
export class KvStateMachine {
  private readonly data = new Map<string, Stored>();
  private readonly consumerPositions = new ConsumerPositions();
  private readonly producerSessions = new ProducerSessions();
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
    for (const consumer of state.consumers ?? []) builder.addConsumer(consumer);
    for (const session of state.producers ?? []) builder.addProducer(session);
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
      addConsumer(consumer) {
        if (finished) throw new KvRestoreError('consumer added after the restore finished');
        try {
          machine.consumerPositions.restore(consumer);
        } catch (error) {
          throw new KvRestoreError((error as Error).message);
        }
      },
      addProducer(session) {
        if (finished) throw new KvRestoreError('producer session added after the restore finished');
        try {
          machine.producerSessions.restore(session);
        } catch (error) {
          throw new KvRestoreError((error as Error).message);
        }
      },
      finish(tail) {
        if (finished) throw new KvRestoreError('restore finished twice');
        validateTail(tail);
        finished = true;
        machine.producerSessions.finishRestore();
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

  /** The consumer's committed position, or null when it has none. */
  consumer(name: string): ConsumerPosition | null {
    return this.consumerPositions.get(name);
  }

  /** Every durable consumer, sorted by name. */
  consumers(): ConsumerPosition[] {
    return this.consumerPositions.list();
  }

  /** What applying a write with this stamp would do now, changing nothing. */
  peekProducer(stamp: ProducerStamp): StampVerdict {
    return this.producerSessions.peek(stamp);
  }

  get producerCount(): number {
    return this.producerSessions.size;
  }

  /**
   * Applies the next entry. With `changes`, what it did to keys is pushed
   * there, in order (nothing for a write that changed nothing).
   */
  apply(entry: Entry, changes?: KvChange[]): KvResult {
    if (entry.index !== this.applied + 1) {
      throw new Error(`state machine applied up to ${this.applied}; cannot apply index ${entry.index} out of order`);
    }
    this.applied = entry.index;
    if (entry.kind !== 'command') return { op: 'none' };
    const command = decodeCommand(entry.data);
    return command === null ? { op: 'none' } : this.execute(command, entry, changes);
  }

  /** Hex digest of the state at the applied index. */
  digest(): string {
    const hash = createHash('sha256');
    hash.update('raftlog-kv-v1');
    hash.update(u64(this.applied));
    hash.update(this.pairSum.toString(16).padStart(64, '0'));
    hash.update(u64(this.recordCount));
    hash.update(this.recordChain);
    // Only present when there is something: a state without consumers and
    // sessions keeps the digest it had before they existed.
    if (this.consumerPositions.size > 0) {
      hash.update('consumers');
      hash.update(u64(this.consumerPositions.size));
      hash.update(hashHex(this.consumerPositions.digestSum));
    }
    if (this.producerSessions.size > 0) {
      hash.update('producers');
      hash.update(u64(this.producerSessions.size));
      hash.update(hashHex(this.producerSessions.digestSum));
    }
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
      consumers: this.consumerPositions.list(),
      producers: this.producerSessions.capture(),
      *pairs() {
        for (const [k, stored] of entries) yield [Buffer.from(k, 'latin1'), stored.value] as const;
      },
    };
  }

  private execute(command: KvCommand, entry: Entry, changes: KvChange[] | undefined): KvResult {
    switch (command.op) {
      case 'commit-position': {
        const outcome = this.consumerPositions.commit(
          command.consumer,
          command.position,
          command.allowBackwards,
          entry.index,
          command.proposedAtMs ?? 0,
        );
        return outcome.ok
          ? { op: 'commit-position', position: outcome.position }
          : { op: 'refused', reason: outcome.reason, message: outcome.message };
      }
      case 'delete-consumer':
        return { op: 'delete-consumer', existed: this.consumerPositions.delete(command.consumer) };
      case 'register-producer':
        return { op: 'register-producer', producerId: this.producerSessions.register(entry.index).id };
      default:
        break;
    }
    if (command.producer === undefined) return this.write(command, entry.index, changes);
    const verdict = this.producerSessions.admit(command.producer, entry.index);
    switch (verdict.kind) {
      case 'refused':
        return { op: 'refused', reason: verdict.reason, message: verdict.message };
      case 'duplicate':
        return { op: 'duplicate', write: verdict.write };
      case 'apply': {
        const outcome = this.write(command, entry.index, changes);
        this.producerSessions.remember(command.producer.id, { sequence: command.producer.sequence, index: entry.index, term: entry.term, outcome });
        return outcome;
      }
    }
  }

  private write(command: KvWrite, index: number, changes: KvChange[] | undefined): WriteOutcome {
    switch (command.op) {
      case 'put': {
        const before = this.set(command.key, command.value);
        changes?.push({ key: ownCopy(command.key), before, after: this.get(command.key) });
        return { op: 'put' };
      }
      case 'delete': {
        const before = this.remove(command.key);
        if (before !== null) changes?.push({ key: ownCopy(command.key), before, after: null });
        return { op: 'delete', existed: before !== null };
      }
      case 'cas': {
        const current = this.get(command.key);
        const matches = command.expected === null ? current === null : current !== null && equalBytes(current, command.expected);
        if (!matches) return { op: 'cas', succeeded: false, current };
        this.set(command.key, command.value);
        const after = this.get(command.key);
        changes?.push({ key: ownCopy(command.key), before: current, after });
        return { op: 'cas', succeeded: true, current: after };
      }
      case 'append':
        this.recordChain = new Uint8Array(createHash('sha256').update(this.recordChain).update(u64(index)).update(command.record).digest());
        this.recordCount++;
        return { op: 'append' };
    }
  }

  /** Returns the value it replaced, or null. */
  private set(key: Uint8Array, value: Uint8Array): Uint8Array | null {
    const k = keyString(key);
    const old = this.data.get(k);
    const copy = new Uint8Array(value);
    const added = pairHash(key, copy);
    this.data.set(k, { value: copy, hash: added });
    this.pairSum = (this.pairSum + added - (old?.hash ?? 0n) + MOD) % MOD;
    return old?.value ?? null;
  }

  /** Returns the value it removed, or null when the key was absent. */
  private remove(key: Uint8Array): Uint8Array | null {
    const k = keyString(key);
    const old = this.data.get(k);
    if (old === undefined) return null;
    this.data.delete(k);
    this.pairSum = (this.pairSum - old.hash + MOD) % MOD;
    return old.value;
  }
}

/**
 * A decoded key is a view into its entry's bytes (and those often into a
 * shared 8 KiB pool buffer): a change kept for long must not pin them.
 */
function ownCopy(key: Uint8Array): Uint8Array {
  return new Uint8Array(key);
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
