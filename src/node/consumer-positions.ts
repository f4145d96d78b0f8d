import { addHash, hashOf, subtractHash } from './state-hash.js';

/** Consumer names: 1..200 bytes of UTF-8. */
export const MAX_CONSUMER_NAME_BYTES = 200;

/** A durable consumer as the state machine holds it. */
export interface ConsumerPosition {
  readonly name: string;
  /** The last log index the consumer has processed. */
  readonly position: number;
  /** The proposing leader's clock when the position was last committed (ms since the epoch; 0 if unknown). */
  readonly committedAtMs: number;
  /** Index of the entry that last committed the position. */
  readonly commitEntryIndex: number;
}

export type PositionCommit =
  | { readonly ok: true; readonly position: number }
  | { readonly ok: false; readonly reason: 'invalid-consumer' | 'position-backwards' | 'position-beyond-log'; readonly message: string };

/** Why a name cannot be a consumer's, or null when it can. */
export function consumerNameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return 'consumer name must not be empty';
  if (bytes > MAX_CONSUMER_NAME_BYTES) return `consumer name of ${bytes} bytes exceeds the limit of ${MAX_CONSUMER_NAME_BYTES}`;
  return null;
}

/**
 * The durable consumers of the replicated state: a position per name,
 * changed only by applying log entries. Records are replaced, never changed
 * in place, so a capture of them stays as it was.
 */
export class ConsumerPositions {
  private readonly byName = new Map<string, { readonly consumer: ConsumerPosition; readonly hash: bigint }>();
  private sum = 0n;

  get size(): number {
    return this.byName.size;
  }

  /** Sum (mod 2^256) of one hash per consumer. */
  get digestSum(): bigint {
    return this.sum;
  }

  get(name: string): ConsumerPosition | null {
    return this.byName.get(name)?.consumer ?? null;
  }

  /** Every consumer, sorted by name. */
  list(): ConsumerPosition[] {
    return [...this.byName.values()].map((stored) => stored.consumer).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Applies a CommitPosition carried by the entry at entryIndex. Deterministic:
   * every replica refuses or accepts alike.
   */
  commit(name: string, position: number, allowBackwards: boolean, entryIndex: number, atMs: number): PositionCommit {
    const problem = consumerNameProblem(name);
    if (problem !== null) return { ok: false, reason: 'invalid-consumer', message: problem };
    if (position >= entryIndex) {
      return {
        ok: false,
        reason: 'position-beyond-log',
        message: `consumer ${name}: position ${position} is beyond the log (the commit itself is entry ${entryIndex})`,
      };
    }
    const current = this.byName.get(name);
    if (current !== undefined && position < current.consumer.position && !allowBackwards) {
      return {
        ok: false,
        reason: 'position-backwards',
        message: `consumer ${name} is at ${current.consumer.position}; committing ${position} would move it backwards (allow it explicitly to re-read)`,
      };
    }
    this.put({ name, position, committedAtMs: atMs, commitEntryIndex: entryIndex });
    return { ok: true, position };
  }

  delete(name: string): boolean {
    const current = this.byName.get(name);
    if (current === undefined) return false;
    this.byName.delete(name);
    this.sum = subtractHash(this.sum, current.hash);
    return true;
  }

  /** For a restore: adds a consumer read from a snapshot. Throws on a name seen before. */
  restore(consumer: ConsumerPosition): void {
    if (this.byName.has(consumer.name)) throw new Error(`consumer ${JSON.stringify(consumer.name)} appears twice`);
    this.put(consumer);
  }

  private put(consumer: ConsumerPosition): void {
    const hash = hashOf('consumer', consumer.name, consumer.position, consumer.committedAtMs, consumer.commitEntryIndex);
    const old = this.byName.get(consumer.name);
    if (old !== undefined) this.sum = subtractHash(this.sum, old.hash);
    this.byName.set(consumer.name, { consumer, hash });
    this.sum = addHash(this.sum, hash);
  }
}
