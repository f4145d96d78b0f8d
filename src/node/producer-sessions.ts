import { addHash, hashOf, subtractHash } from './state-hash.js';

/**
 * Exactly-once writes (Kafka's idempotent producer; the Raft dissertation's
 * client sessions, §6.3). A producer registers a session (its id is the
 * index of the registering entry, so ids are never reused), then stamps each
 * write with a sequence number; the state machine applies each (id,
 * sequence) once and remembers the outcome until the producer says it has
 * the answer (acknowledged_below), so a retry gets the first answer.
 *
 * Every limit is a constant of the state machine: replicas must expire and
 * refuse alike, so none of them can be a per-node setting.
 */
export const MAX_PRODUCER_SESSIONS = 10_000;
/** Outcomes one session may hold unacknowledged; past it, new writes are refused. */
export const MAX_UNACKNOWLEDGED_WRITES = 1_000;
/**
 * Bytes of remembered outcomes one session may hold (a failed
 * compare-and-swap remembers the value it found, up to 1 MiB); past it, new
 * writes are refused. It also keeps a session within one snapshot frame.
 */
export const MAX_REMEMBERED_BYTES = 8 * 1024 * 1024;
/** What a remembered outcome counts for besides the value it holds. */
const REMEMBERED_WRITE_BYTES = 64;

export interface ProducerStamp {
  readonly id: number;
  readonly sequence: number;
  readonly acknowledgedBelow: number;
}

/** What a retry of a write is told: the first application's outcome. */
export type WriteOutcome =
  | { readonly op: 'put' }
  | { readonly op: 'delete'; readonly existed: boolean }
  | { readonly op: 'cas'; readonly succeeded: boolean; readonly current: Uint8Array | null }
  | { readonly op: 'append' };

export interface RememberedWrite {
  readonly sequence: number;
  /** Where the write was applied. */
  readonly index: number;
  readonly term: number;
  readonly outcome: WriteOutcome;
}

/** A session as a snapshot holds it. */
export interface ProducerSessionState {
  readonly id: number;
  /** Index of the last entry stamped with this session: sessions are forgotten oldest first. */
  readonly lastIndex: number;
  readonly acknowledgedBelow: number;
  /** In ascending sequence order. */
  readonly writes: readonly RememberedWrite[];
}

export type ProducerRefusal = 'unknown-producer' | 'stale-sequence' | 'invalid-sequence' | 'too-many-unacknowledged';

export type StampVerdict =
  | { readonly kind: 'apply' }
  | { readonly kind: 'duplicate'; readonly write: RememberedWrite }
  | { readonly kind: 'refused'; readonly reason: ProducerRefusal; readonly message: string };

interface Session {
  readonly id: number;
  lastIndex: number;
  acknowledgedBelow: number;
  /** What the remembered outcomes hold, counted as rememberedBytes() does. */
  bytes: number;
  headerHash: bigint;
  readonly writes: Map<number, { readonly write: RememberedWrite; readonly hash: bigint }>;
}

export class ProducerSessions {
  /** In order of their last stamped entry, oldest first (Map keeps insertion order). */
  private readonly sessions = new Map<number, Session>();
  private sum = 0n;

  get size(): number {
    return this.sessions.size;
  }

  /** Sum (mod 2^256) of one hash per session and per remembered write. */
  get digestSum(): bigint {
    return this.sum;
  }

  /** Opens the session whose id is entryIndex; returns the id of the session forgotten to make room, if any. */
  register(entryIndex: number): { id: number; forgotten: number | null } {
    let forgotten: number | null = null;
    if (this.sessions.size >= MAX_PRODUCER_SESSIONS) {
      const oldest = this.sessions.values().next().value as Session;
      this.forget(oldest);
      forgotten = oldest.id;
    }
    this.insert({ id: entryIndex, lastIndex: entryIndex, acknowledgedBelow: 1, writes: [] });
    return { id: entryIndex, forgotten };
  }

  /**
   * Decides a stamped write carried by the entry at entryIndex, before it is
   * applied, and records what the stamp tells whatever the verdict: the
   * session's last use and the producer's acknowledgement.
   */
  admit(stamp: ProducerStamp, entryIndex: number): StampVerdict {
    const session = this.sessions.get(stamp.id);
    const invalid = session === undefined ? null : invalidStamp(stamp);
    if (session !== undefined && invalid === null) this.touch(session, entryIndex, stamp.acknowledgedBelow);
    return invalid ?? decide(session, stamp);
  }

  /** What admit() would decide now, changing nothing (a leader's check before it proposes). */
  peek(stamp: ProducerStamp): StampVerdict {
    const session = this.sessions.get(stamp.id);
    return (session === undefined ? null : invalidStamp(stamp)) ?? decide(session, stamp);
  }

  /**
   * After an admitted write was applied: remembers its outcome for retries.
   * A successful compare-and-swap's value after is the value the write
   * carried (a retry carries it again), so it is not kept twice.
   */
  remember(id: number, applied: RememberedWrite): void {
    const session = this.sessions.get(id);
    if (session === undefined) throw new Error(`producer ${id}: outcome of write ${applied.sequence} for a session that does not exist`);
    const { outcome } = applied;
    const write =
      outcome.op === 'cas' && outcome.succeeded && outcome.current !== null ? { ...applied, outcome: { ...outcome, current: null } } : applied;
    const hash = writeHash(id, write);
    session.writes.set(write.sequence, { write, hash });
    session.bytes += rememberedBytes(write);
    this.sum = addHash(this.sum, hash);
  }

  /** Every session, oldest first, as plain data that later applies do not change. */
  capture(): ProducerSessionState[] {
    return [...this.sessions.values()].map((session) => ({
      id: session.id,
      lastIndex: session.lastIndex,
      acknowledgedBelow: session.acknowledgedBelow,
      writes: [...session.writes.values()].map((stored) => stored.write).sort((a, b) => a.sequence - b.sequence),
    }));
  }

  /**
   * For a restore: adds a session read from a snapshot. Sessions may come in
   * any order; call finishRestore() after the last one.
   */
  restore(state: ProducerSessionState): void {
    if (this.sessions.has(state.id)) throw new Error(`producer ${state.id} appears twice`);
    this.insert(state);
  }

  /** Puts restored sessions back in the order they would be forgotten. */
  finishRestore(): void {
    const ordered = [...this.sessions.values()].sort((a, b) => a.lastIndex - b.lastIndex);
    this.sessions.clear();
    for (const session of ordered) this.sessions.set(session.id, session);
  }

  private insert(state: ProducerSessionState): void {
    const session: Session = {
      id: state.id,
      lastIndex: state.lastIndex,
      acknowledgedBelow: state.acknowledgedBelow,
      bytes: 0,
      headerHash: headerHash(state.id, state.lastIndex, state.acknowledgedBelow),
      writes: new Map(),
    };
    this.sessions.set(session.id, session);
    this.sum = addHash(this.sum, session.headerHash);
    for (const write of state.writes) this.remember(state.id, write);
  }

  private touch(session: Session, entryIndex: number, acknowledgedBelow: number): void {
    session.lastIndex = entryIndex;
    if (acknowledgedBelow > session.acknowledgedBelow) {
      session.acknowledgedBelow = acknowledgedBelow;
      for (const [sequence, stored] of session.writes) {
        if (sequence >= acknowledgedBelow) continue;
        session.writes.delete(sequence);
        session.bytes -= rememberedBytes(stored.write);
        this.sum = subtractHash(this.sum, stored.hash);
      }
    }
    this.sum = subtractHash(this.sum, session.headerHash);
    session.headerHash = headerHash(session.id, session.lastIndex, session.acknowledgedBelow);
    this.sum = addHash(this.sum, session.headerHash);
    // Most recently used last, so the first is the one to forget.
    this.sessions.delete(session.id);
    this.sessions.set(session.id, session);
  }

  private forget(session: Session): void {
    this.sessions.delete(session.id);
    this.sum = subtractHash(this.sum, session.headerHash);
    for (const stored of session.writes.values()) this.sum = subtractHash(this.sum, stored.hash);
  }
}

function invalidStamp(stamp: ProducerStamp): StampVerdict | null {
  if (stamp.sequence >= 1 && stamp.acknowledgedBelow <= stamp.sequence) return null;
  return {
    kind: 'refused',
    reason: 'invalid-sequence',
    message: `producer ${stamp.id}: sequence ${stamp.sequence} with acknowledged_below ${stamp.acknowledgedBelow} (sequences start at 1 and a write cannot be acknowledged before its answer)`,
  };
}

/** The verdict on a valid stamp, given the session as it stands (after the stamp's acknowledgement, for admit). */
function decide(session: Session | undefined, stamp: ProducerStamp): StampVerdict {
  if (session === undefined) {
    return {
      kind: 'refused',
      reason: 'unknown-producer',
      message: `producer ${stamp.id} is unknown: never registered, or forgotten once ${MAX_PRODUCER_SESSIONS} sessions wrote after it; register a new producer`,
    };
  }
  const acknowledgedBelow = Math.max(session.acknowledgedBelow, stamp.acknowledgedBelow);
  if (stamp.sequence < acknowledgedBelow) {
    return {
      kind: 'refused',
      reason: 'stale-sequence',
      message: `producer ${stamp.id}: write ${stamp.sequence} was answered before (the producer acknowledged every write below ${acknowledgedBelow})`,
    };
  }
  const remembered = session.writes.get(stamp.sequence);
  if (remembered !== undefined) return { kind: 'duplicate', write: remembered.write };
  let unacknowledged = 0;
  if (session.writes.size >= MAX_UNACKNOWLEDGED_WRITES) {
    for (const sequence of session.writes.keys()) if (sequence >= acknowledgedBelow) unacknowledged++;
  }
  if (unacknowledged >= MAX_UNACKNOWLEDGED_WRITES) {
    return {
      kind: 'refused',
      reason: 'too-many-unacknowledged',
      message: `producer ${stamp.id}: ${unacknowledged} writes await acknowledgement, the limit; acknowledge answers (acknowledged_below) before writing more`,
    };
  }
  if (session.bytes >= MAX_REMEMBERED_BYTES) {
    return {
      kind: 'refused',
      reason: 'too-many-unacknowledged',
      message: `producer ${stamp.id}: its unacknowledged outcomes hold ${session.bytes} bytes, the limit is ${MAX_REMEMBERED_BYTES}; acknowledge answers (acknowledged_below) before writing more`,
    };
  }
  return { kind: 'apply' };
}

/** What a remembered outcome counts for against MAX_REMEMBERED_BYTES. */
function rememberedBytes(write: RememberedWrite): number {
  return REMEMBERED_WRITE_BYTES + (write.outcome.op === 'cas' ? (write.outcome.current?.byteLength ?? 0) : 0);
}

function headerHash(id: number, lastIndex: number, acknowledgedBelow: number): bigint {
  return hashOf('producer', id, lastIndex, acknowledgedBelow);
}

function writeHash(id: number, write: RememberedWrite): bigint {
  const { outcome } = write;
  const detail =
    outcome.op === 'delete'
      ? [outcome.existed]
      : outcome.op === 'cas'
        ? [outcome.succeeded, outcome.current !== null, outcome.current ?? new Uint8Array(0)]
        : [];
  return hashOf('producer-write', id, write.sequence, write.index, write.term, outcome.op, ...detail);
}
