/**
 * Safety properties of Raft (paper §5, Figure 3) as incremental checkers. The
 * simulator feeds them what it observes (outputs of the cores, their status
 * after every event); a checker throws an InvariantViolation the moment a
 * property fails. Each checker keeps only what it needs to decide the next
 * observation, so checking after every event stays cheap.
 */
import type { Entry, HardState, NodeId, SnapshotMeta } from '../../src/raft/types.js';

export type PropertyName =
  | 'Election Safety'
  | 'Log Matching'
  | 'Leader Completeness'
  | 'State Machine Safety'
  | 'Commit Monotonicity'
  | 'Committed Entries Never Change'
  | 'Commit Validity'
  | 'Durable State'
  | 'Read Index Safety'
  | 'Snapshot Safety'
  | 'Commit Quorum'
  | 'Message Validity'
  | 'Liveness'
  | 'Core Exception';

export class InvariantViolation extends Error {
  constructor(
    readonly property: PropertyName,
    readonly time: number,
    readonly node: NodeId | null,
    readonly detail: string,
  ) {
    super(`${property} violated at t=${time} on ${node ?? 'the cluster'}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

/** The simulation's current time, read by checkers when they report. */
export interface SimClock {
  readonly now: number;
}

/** A read-only view of one node's log (persisted or not yet). */
export interface LogView {
  termAt(index: number): number | null;
}

/**
 * A node's log seen through its compaction: entries it compacted into a
 * snapshot are answered with the committed term at their index. That is
 * sound because a node compacts only entries it applied, and the
 * SnapshotChecker verifies every snapshot's last entry against the committed
 * log when the snapshot is taken or installed (Log Matching then covers the
 * entries before it). A compacted index nobody committed answers null.
 */
export function throughCompaction(log: LogView, firstIndex: () => number, commit: CommitChecker): LogView {
  return {
    termAt(index: number): number | null {
      if (index > 0 && index < firstIndex() - 1) return commit.committedTerm(index);
      return log.termAt(index);
    },
  };
}

abstract class Checker {
  constructor(protected readonly clock: SimClock) {}

  protected fail(property: PropertyName, node: NodeId | null, detail: string): never {
    throw new InvariantViolation(property, this.clock.now, node, detail);
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function sameEntry(a: Entry, b: Entry): boolean {
  return a.index === b.index && a.term === b.term && a.kind === b.kind && sameBytes(a.data, b.data);
}

/** Short printable form of an entry's payload for messages. */
export function describeData(data: Uint8Array): string {
  if (data.byteLength === 0) return '""';
  let text = '';
  for (let i = 0; i < Math.min(data.byteLength, 24); i++) {
    const c = data[i] as number;
    text += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return data.byteLength > 24 ? `"${text}…"(${data.byteLength}B)` : `"${text}"`;
}

export function describeEntry(e: Entry): string {
  return `${e.index}/${e.term} ${e.kind}${e.kind === 'command' ? ` ${describeData(e.data)}` : ''}`;
}

/** Election Safety: at most one leader can be elected in a given term (over the whole run, not just at one moment). */
export class ElectionSafetyChecker extends Checker {
  private readonly leaderOfTerm = new Map<number, NodeId>();

  /** Returns true when this is the first time `node` is seen leading `term`. */
  observeLeader(node: NodeId, term: number): boolean {
    const known = this.leaderOfTerm.get(term);
    if (known === undefined) {
      this.leaderOfTerm.set(term, node);
      return true;
    }
    if (known !== node) {
      this.fail('Election Safety', node, `${node} became leader of term ${term}, but ${known} was already elected in term ${term}`);
    }
    return false;
  }
}

interface RegisteredEntry {
  readonly kind: Entry['kind'];
  readonly data: Uint8Array;
  readonly prevTerm: number;
  readonly firstHolder: NodeId;
}

/**
 * Log Matching: if two logs contain an entry with the same index and term, the
 * logs are identical in all entries up through that index. Checked
 * incrementally: every entry any node stores is registered under (index, term)
 * with its content and the term of the entry before it. If every (index, term)
 * always comes with the same content and the same predecessor term, then by
 * induction any two logs sharing (index, term) share the whole prefix.
 */
export class LogMatchingChecker extends Checker {
  private readonly registry = new Map<number, Map<number, RegisteredEntry>>();

  /** `entries` are about to be stored contiguously after an entry of term `prevTerm` (0 at the start of the log). */
  observeAppend(node: NodeId, entries: readonly Entry[], prevTerm: number): void {
    let prev = prevTerm;
    let expected = entries[0]?.index ?? 0;
    for (const e of entries) {
      if (e.index !== expected) {
        this.fail('Log Matching', node, `${node} stores entries out of order: expected index ${expected}, got ${describeEntry(e)}`);
      }
      if (e.term < prev) {
        this.fail('Log Matching', node, `${node} stores ${describeEntry(e)} after an entry of term ${prev}: terms in a log never decrease`);
      }
      let byTerm = this.registry.get(e.index);
      if (byTerm === undefined) {
        byTerm = new Map();
        this.registry.set(e.index, byTerm);
      }
      const known = byTerm.get(e.term);
      if (known === undefined) {
        byTerm.set(e.term, { kind: e.kind, data: e.data, prevTerm: prev, firstHolder: node });
      } else {
        if (known.kind !== e.kind || !sameBytes(known.data, e.data)) {
          this.fail(
            'Log Matching',
            node,
            `${node} stores ${describeEntry(e)}, but ${known.firstHolder} stored ${e.index}/${e.term} as ${known.kind} ${describeData(known.data)}`,
          );
        }
        if (known.prevTerm !== prev) {
          this.fail(
            'Log Matching',
            node,
            `${node} stores ${e.index}/${e.term} after an entry of term ${prev}, but in ${known.firstHolder}'s log it follows an entry of term ${known.prevTerm}`,
          );
        }
      }
      prev = e.term;
      expected = e.index + 1;
    }
  }
}

interface CommittedRecord {
  readonly term: number;
  /** Lowest term of a node that observed this index committed: the entry was committed by a leader of at most this term. */
  commitTerm: number;
  readonly firstNode: NodeId;
}

interface LiveLeader {
  readonly term: number;
  readonly log: LogView;
}

/**
 * The commit index and what lies below it:
 * - Commit Validity: a node only commits entries it holds.
 * - Commit Monotonicity: a node's commit index never decreases within one life
 *   (a restart may only resume from what it persisted).
 * - State Machine Safety (at commit time): no two nodes commit different terms at one index.
 * - Committed Entries Never Change: a node never overwrites an entry at or below its commit index.
 * - Leader Completeness: an entry committed by a leader of term T is in the log
 *   of every leader of a term above T. Checked when a node becomes leader
 *   (against everything committed so far) and when commit rises (against the
 *   leaders already in office).
 */
export class CommitChecker extends Checker {
  private readonly committed: CommittedRecord[] = [];
  private readonly commitOf = new Map<NodeId, { life: number; commit: number }>();
  private readonly leaders = new Map<NodeId, LiveLeader>();

  /** The highest index anyone has committed so far. */
  get maxCommitted(): number {
    return this.committed.length;
  }

  committedTerm(index: number): number | null {
    return this.committed[index - 1]?.term ?? null;
  }

  /** The commit index `node` reached in its current life (0 if unknown). */
  commitIndexOf(node: NodeId, life: number): number {
    const state = this.commitOf.get(node);
    return state !== undefined && state.life === life ? state.commit : 0;
  }

  observeCommit(node: NodeId, life: number, commit: number, nodeTerm: number, log: LogView): void {
    const state = this.commitOf.get(node);
    let from = 0;
    if (state !== undefined && state.life === life) {
      if (commit < state.commit) {
        this.fail('Commit Monotonicity', node, `${node}'s commit index fell from ${state.commit} to ${commit} without a restart`);
      }
      from = state.commit;
      if (commit === from) return;
      state.commit = commit;
    } else {
      this.commitOf.set(node, { life, commit });
    }
    for (let index = from + 1; index <= commit; index++) {
      const term = log.termAt(index);
      if (term === null) {
        this.fail('Commit Validity', node, `${node} has commit index ${commit} but does not hold entry ${index}`);
      }
      const record = this.committed[index - 1];
      if (record !== undefined) {
        if (record.term !== term) {
          this.fail(
            'State Machine Safety',
            node,
            `${node} committed index ${index} with term ${term}, but ${record.firstNode} committed index ${index} with term ${record.term}`,
          );
        }
        if (nodeTerm < record.commitTerm) record.commitTerm = nodeTerm;
        continue;
      }
      this.committed.push({ term, commitTerm: nodeTerm, firstNode: node });
      for (const [leader, info] of this.leaders) {
        if (leader === node || info.term <= nodeTerm) continue;
        const held = info.log.termAt(index);
        if (held !== term) {
          this.fail(
            'Leader Completeness',
            leader,
            `${node} (term ${nodeTerm}) committed ${index}/${term}, but ${leader}, leader of the later term ${info.term}, holds ${held === null ? 'nothing' : `term ${held}`} at index ${index}`,
          );
        }
      }
    }
  }

  observeLeader(node: NodeId, term: number, log: LogView): void {
    const known = this.leaders.get(node);
    if (known !== undefined && known.term === term) return;
    this.leaders.set(node, { term, log });
    for (let index = 1; index <= this.committed.length; index++) {
      const record = this.committed[index - 1] as CommittedRecord;
      if (record.commitTerm >= term) continue;
      const held = log.termAt(index);
      if (held !== record.term) {
        this.fail(
          'Leader Completeness',
          node,
          `${node} became leader of term ${term} without committed entry ${index}/${record.term} (committed by ${record.firstNode} in term ${record.commitTerm}); it holds ${held === null ? 'nothing' : `term ${held}`} there`,
        );
      }
    }
  }

  observeNotLeader(node: NodeId): void {
    this.leaders.delete(node);
  }

  /**
   * `entries` are about to replace `node`'s log from entries[0].index on. None
   * may change an entry at or below `durableCommit`: the commit index the node
   * had reached when it decided on these entries (with asynchronous
   * persistence, the commit index of its previous write: the core may replace
   * an entry in memory and then commit its replacement while the write that
   * carries the replacement is still to come). `stored` is the node's durable
   * log before the write.
   */
  observeOverwrite(node: NodeId, entries: readonly Entry[], durableCommit: number, stored: LogView): void {
    for (const e of entries) {
      if (e.index > durableCommit) break;
      const before = stored.termAt(e.index);
      if (before !== null && before !== e.term) {
        this.fail(
          'Committed Entries Never Change',
          node,
          `${node} overwrites committed entry ${e.index}/${before} with ${describeEntry(e)} (its commit index is ${durableCommit})`,
        );
      }
    }
    const first = entries[0];
    if (first !== undefined && first.index <= durableCommit) {
      const lastNew = first.index + entries.length - 1;
      // Anything stored past the written entries is truncated by the write.
      const truncatedCommitted = stored.termAt(lastNew + 1) !== null && lastNew < durableCommit;
      if (truncatedCommitted) {
        this.fail(
          'Committed Entries Never Change',
          node,
          `${node} rewrites its log from index ${first.index} to ${lastNew}, truncating committed entries up to ${durableCommit}`,
        );
      }
    }
  }

  /**
   * After a write: the durable log up to the durable commit index is the
   * committed log, i.e. a node restarting from its storage finds every entry
   * it will re-apply in place and as committed. Indexes `from`..`durableCommit`
   * are checked (the caller passes the lowest index the write may have
   * changed); those above the highest commit observed so far are left to the
   * commit checks that will see them.
   */
  observeDurableLog(node: NodeId, durableCommit: number, stored: LogView, from: number): void {
    if (durableCommit > 0 && stored.termAt(durableCommit) === null) {
      this.fail('Commit Validity', node, `${node} persisted commit index ${durableCommit} but its durable log does not hold entry ${durableCommit}`);
    }
    const to = Math.min(durableCommit, this.committed.length);
    for (let index = Math.max(1, from); index <= to; index++) {
      const record = this.committed[index - 1] as CommittedRecord;
      const held = stored.termAt(index);
      if (held !== record.term) {
        this.fail(
          'State Machine Safety',
          node,
          `${node} persisted commit index ${durableCommit}, but its durable log holds ${held === null ? 'nothing' : `term ${held}`} at index ${index}, where ${record.firstNode} committed term ${record.term}`,
        );
      }
    }
  }

  forgetNode(node: NodeId): void {
    this.leaders.delete(node);
  }
}

/** The end of one node's (durable) log, for comparing how up-to-date logs are. */
export interface LogTail extends LogView {
  readonly node: NodeId;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** The voters of the configuration in force in this log (its latest config entry, or its initial one). */
  readonly voters: readonly NodeId[];
  /** Voters and learners of that configuration: a node votes only for them (and for nobody while it knows no configuration). */
  readonly members: readonly NodeId[];
}

/** Raft's vote rule (§5.4.1): would `voter` find `candidate`'s log at least as up-to-date as its own? */
export function candidateIsUpToDate(candidate: LogTail, voter: LogTail): boolean {
  return candidate.lastTerm > voter.lastTerm || (candidate.lastTerm === voter.lastTerm && candidate.lastIndex >= voter.lastIndex);
}

function majorityOf(voters: readonly NodeId[]): number {
  return Math.floor(voters.length / 2) + 1;
}

/**
 * Leader Completeness, checked at the moment of commit (the argument of §5.4.3
 * made executable): once entry (index, term) is committed, no node lacking it
 * may be able to win an election. In correct Raft the entry was committed
 * through an entry of the leader's term on a majority, which makes every node
 * of that majority more up-to-date than any node without it, so such a node
 * never gathers a majority of votes. A leader that commits an earlier term's
 * entry by counting replicas (Figure 8) breaks exactly this, long before the
 * lost entry is actually overwritten.
 *
 * With membership changes, a candidate counts votes among the voters of the
 * configuration in its own log, and a node votes only for a member of the
 * configuration in its log; a node that knows no configuration (a spare, or a
 * removed member back under its old id with a fresh disk) votes for nobody.
 * The check models exactly that. And the commit
 * itself must rest on a quorum of the committing node's configuration
 * (Commit Quorum): learners and non-members never count.
 */
export class CommitDurabilityChecker extends Checker {
  /** `logs` holds every node's durable log (down nodes included: they come back with what they persisted). */
  observeNewCommit(index: number, term: number, committedBy: NodeId, logs: readonly LogTail[], committerVoters?: readonly NodeId[]): void {
    if (committerVoters !== undefined) {
      const holders = logs.filter((log) => committerVoters.includes(log.node) && log.termAt(index) === term);
      if (holders.length < majorityOf(committerVoters)) {
        this.fail(
          'Commit Quorum',
          committedBy,
          `${committedBy} committed ${index}/${term}, but only ${holders.map((h) => h.node).join(', ') || 'no voter'} of its voters ` +
            `${committerVoters.join(', ')} hold it durably: no quorum of its configuration`,
        );
      }
    }
    for (const candidate of logs) {
      if (!candidate.voters.includes(candidate.node) || candidate.termAt(index) === term) continue;
      const voters = logs.filter(
        (voter) => candidate.voters.includes(voter.node) && voter.members.includes(candidate.node) && candidateIsUpToDate(candidate, voter),
      );
      if (voters.length >= majorityOf(candidate.voters)) {
        this.fail(
          'Leader Completeness',
          candidate.node,
          `${committedBy} committed ${index}/${term}, but ${candidate.node} (log ends ${candidate.lastIndex}/${candidate.lastTerm}) lacks it ` +
            `and could still be elected: ${voters.map((v) => `${v.node} (${v.lastIndex}/${v.lastTerm})`).join(', ')} would vote for it`,
        );
      }
    }
  }
}

/**
 * State Machine Safety: if a node has applied an entry at an index, no other
 * node ever applies a different entry at that index. Also: each node applies
 * contiguously in index order; after a restart it starts over from where its
 * new life begins (re-applying identical entries is fine).
 */
export class StateMachineChecker extends Checker {
  private readonly applied: { entry: Entry; node: NodeId }[] = [];
  private readonly lastApplied = new Map<NodeId, number>();

  /** A new life of `node` begins with `appliedIndex` already reflected in its (fresh) state machine. */
  startLife(node: NodeId, appliedIndex: number): void {
    this.lastApplied.set(node, appliedIndex);
  }

  lastAppliedOf(node: NodeId): number {
    return this.lastApplied.get(node) ?? 0;
  }

  observeApply(node: NodeId, entry: Entry): void {
    const last = this.lastApplied.get(node) ?? 0;
    if (entry.index !== last + 1) {
      this.fail('State Machine Safety', node, `${node} applied ${describeEntry(entry)} right after index ${last}: applies must be contiguous`);
    }
    this.lastApplied.set(node, entry.index);
    const known = this.applied[entry.index - 1];
    if (known === undefined) {
      this.applied[entry.index - 1] = { entry, node };
      return;
    }
    if (!sameEntry(known.entry, entry)) {
      this.fail(
        'State Machine Safety',
        node,
        `${node} applied ${describeEntry(entry)}, but ${known.node} applied ${describeEntry(known.entry)} at index ${entry.index}`,
      );
    }
  }
}

/**
 * Snapshots and compaction:
 * - a snapshot's last entry (index, term) is a committed entry;
 * - a snapshot holds the state its node had after applying exactly up to its
 *   index (it cannot be taken ahead of what was applied);
 * - State Machine Safety for whole states: two nodes at the same applied
 *   index hold equal state, whether they got there by applying the log, by
 *   restoring a snapshot at restart, or by installing the leader's snapshot;
 * - a node compacts only entries covered by its latest snapshot.
 */
export class SnapshotChecker extends Checker {
  private readonly stateAt = new Map<number, { readonly state: number; readonly node: NodeId }>();

  /** `node`'s state machine holds `state` after applying everything up to `index`. */
  observeState(node: NodeId, index: number, state: number): void {
    if (index === 0) return;
    const known = this.stateAt.get(index);
    if (known === undefined) {
      this.stateAt.set(index, { state, node });
    } else if (known.state !== state) {
      this.fail(
        'State Machine Safety',
        node,
        `${node} holds state ${hex(state)} at applied index ${index}, but ${known.node} held ${hex(known.state)} there`,
      );
    }
  }

  /**
   * `node` takes (`how` = 'taken'), restores at restart or installs from its
   * leader a snapshot `meta` holding `state`; `appliedIndex` is the index its
   * state machine had applied when the snapshot was taken (for 'taken').
   */
  observeSnapshot(
    node: NodeId,
    how: 'taken' | 'restored' | 'installed',
    meta: SnapshotMeta,
    state: number,
    appliedIndex: number,
    commit: CommitChecker,
  ): void {
    if (how === 'taken' && meta.index !== appliedIndex) {
      this.fail('Snapshot Safety', node, `${node} took a snapshot at index ${meta.index} of a state machine that had applied up to ${appliedIndex}`);
    }
    const committedTerm = commit.committedTerm(meta.index);
    if (committedTerm !== meta.term) {
      this.fail(
        'Snapshot Safety',
        node,
        `${node} ${how} a snapshot at ${meta.index}/${meta.term}, but ${
          committedTerm === null ? 'nothing is committed' : `term ${committedTerm} is committed`
        } at index ${meta.index}`,
      );
    }
    this.observeState(node, meta.index, state);
  }

  /** `node` deletes its entries up to `index`; its latest snapshot ends at `snapshotIndex`. */
  observeCompaction(node: NodeId, index: number, snapshotIndex: number): void {
    if (index > snapshotIndex) {
      this.fail('Snapshot Safety', node, `${node} compacted its log up to ${index}, past its latest snapshot at ${snapshotIndex}`);
    }
  }
}

function hex(state: number): string {
  return `0x${state.toString(16).padStart(8, '0')}`;
}

/**
 * What a node writes to durable storage must move forward: the term never
 * decreases, a vote once cast in a term is never changed within that term, and
 * the persisted commit index never decreases.
 */
export class DurableStateChecker extends Checker {
  observeSave(node: NodeId, before: HardState, after: HardState): void {
    if (after.term < before.term) {
      this.fail('Durable State', node, `${node} persisted term ${after.term} after term ${before.term}`);
    }
    if (after.term === before.term && before.votedFor !== null && after.votedFor !== before.votedFor) {
      this.fail(
        'Durable State',
        node,
        `${node} persisted vote ${after.votedFor ?? 'none'} in term ${after.term} after having persisted a vote for ${before.votedFor}`,
      );
    }
    if (after.commit < before.commit) {
      this.fail('Durable State', node, `${node} persisted commit index ${after.commit} after ${before.commit}`);
    }
  }
}

interface PendingRead {
  readonly node: NodeId;
  readonly life: number;
  /** The highest commit index any node had reached when the read was asked. */
  readonly commitWhenAsked: number;
  readonly askedAt: number;
}

/**
 * Linearizable reads through ReadIndex: a read released at index i must see
 * every write committed before the read was asked (i >= the highest commit
 * index any node had reached then), and the node must have applied up to i
 * before serving it.
 */
export class ReadChecker extends Checker {
  /** A node may release only reads its current life asked and has not released yet. */
  private readonly pending = new Map<string, PendingRead>();

  get pendingCount(): number {
    return this.pending.size;
  }

  asked(node: NodeId, life: number, requestId: string, highestCommit: number): void {
    this.pending.set(requestId, { node, life, commitWhenAsked: highestCommit, askedAt: this.clock.now });
  }

  released(node: NodeId, life: number, requestId: string, index: number, appliedIndex: number): void {
    const read = this.pending.get(requestId);
    if (read === undefined) {
      this.fail('Read Index Safety', node, `${node} released read ${requestId}, which is not pending (already released, or never asked of it)`);
    }
    if (read.node !== node || read.life !== life) {
      this.fail(
        'Read Index Safety',
        node,
        `${node} released read ${requestId}, which was asked of ${read.node} in ${read.node === node ? 'an earlier life' : 'another node'}`,
      );
    }
    this.pending.delete(requestId);
    if (index < read.commitWhenAsked) {
      this.fail(
        'Read Index Safety',
        node,
        `${node} released read ${requestId} at index ${index}, but index ${read.commitWhenAsked} was already committed when it was asked (t=${read.askedAt}): a stale read`,
      );
    }
    if (appliedIndex < index) {
      this.fail('Read Index Safety', node, `${node} released read ${requestId} at index ${index} having applied only up to ${appliedIndex}`);
    }
  }

  failed(requestId: string): void {
    this.pending.delete(requestId);
  }

  /** The node crashed: its clients' reads are abandoned. */
  abandon(node: NodeId): void {
    for (const [id, read] of this.pending) if (read.node === node) this.pending.delete(id);
  }
}

/** All safety checkers of one run, sharing its clock. */
export class SafetyChecks {
  readonly election: ElectionSafetyChecker;
  readonly logMatching: LogMatchingChecker;
  readonly commit: CommitChecker;
  readonly durability: CommitDurabilityChecker;
  readonly stateMachine: StateMachineChecker;
  readonly durable: DurableStateChecker;
  readonly reads: ReadChecker;
  readonly snapshots: SnapshotChecker;

  constructor(clock: SimClock) {
    this.snapshots = new SnapshotChecker(clock);
    this.election = new ElectionSafetyChecker(clock);
    this.logMatching = new LogMatchingChecker(clock);
    this.commit = new CommitChecker(clock);
    this.durability = new CommitDurabilityChecker(clock);
    this.stateMachine = new StateMachineChecker(clock);
    this.durable = new DurableStateChecker(clock);
    this.reads = new ReadChecker(clock);
  }
}
