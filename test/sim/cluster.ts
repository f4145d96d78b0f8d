/**
 * The simulated servers and the caller's side of the core's contract: feeding
 * it ticks, messages and client requests, and processing every output batch in
 * the documented order (persist, send, apply, serve reads, acknowledge), with
 * the safety checks watching each step.
 *
 * Persistence is synchronous (each output is carried out within the event that
 * produced it) or asynchronous: taking an output starts its durable write,
 * which completes in a later event; meanwhile the node keeps stepping messages
 * and ticking, and the output's messages, applies and reads wait for the write.
 */
import type { StoredSnapshot } from '../../src/raft/memory-storage.js';
import { SeededRandom } from '../../src/raft/random.js';
import type {
  ConfigChange,
  Entry,
  InstallSnapshot,
  Message,
  NodeId,
  ProposeResult,
  RaftOutput,
  RaftStatus,
} from '../../src/raft/types.js';
import type { EventLog } from './event-log.js';
import { InvariantViolation, throughCompaction, type LogView, type SafetyChecks, type SimClock } from './invariants.js';
import type { LivenessChecker } from './liveness.js';
import type { Network } from './network.js';
import type { CoreTuning, SnapshotPolicy } from './scenario.js';
import type { CoreFactory, SimCore } from './sim-core.js';
import { decodeState, encodeState, nextState, SimNode, snapshotKey } from './sim-node.js';

export interface ClusterStats {
  deliveries: number;
  drops: number;
  crashes: number;
  restarts: number;
  leadersElected: number;
  proposalsAccepted: number;
  proposalsRejected: number;
  readsReleased: number;
  readsFailed: number;
  transfers: number;
  partitions: number;
  /** Writes that replaced or truncated stored entries (a conflicting append from a newer leader). */
  overwrites: number;
  /** Asynchronous persistence: writes started. */
  writes: number;
  /** Messages a node stepped while one of its writes was in flight. */
  deliveriesDuringWrite: number;
  /** Writes whose last entry the core had already replaced in memory (a conflicting append) when they completed. */
  writesReplacedInFlight: number;
  /** Crashes that lost a write in flight, and crashes just after a write completed (stored, nothing sent). */
  crashesLosingWrite: number;
  crashesAfterWrite: number;
  /** Snapshots nodes took of their own state, and entries they compacted. */
  snapshotsTaken: number;
  entriesCompacted: number;
  /** InstallSnapshot: transfers started by leaders, lost on the way, installed by followers. */
  snapshotsSent: number;
  snapshotsLost: number;
  snapshotsInstalled: number;
  /** Restarts that restored the state machine from a snapshot. */
  restartsFromSnapshot: number;
  /** Membership changes proposed to a leader, and accepted by it (appended). */
  configChangesProposed: number;
  configChangesAccepted: number;
  /** Leaders that stepped down because a change they led removed them. */
  leadersRemoved: number;
}

export function emptyStats(): ClusterStats {
  return {
    deliveries: 0,
    drops: 0,
    crashes: 0,
    restarts: 0,
    leadersElected: 0,
    proposalsAccepted: 0,
    proposalsRejected: 0,
    readsReleased: 0,
    readsFailed: 0,
    transfers: 0,
    partitions: 0,
    overwrites: 0,
    writes: 0,
    deliveriesDuringWrite: 0,
    writesReplacedInFlight: 0,
    crashesLosingWrite: 0,
    crashesAfterWrite: 0,
    snapshotsTaken: 0,
    entriesCompacted: 0,
    snapshotsSent: 0,
    snapshotsLost: 0,
    snapshotsInstalled: 0,
    restartsFromSnapshot: 0,
    configChangesProposed: 0,
    configChangesAccepted: 0,
    leadersRemoved: 0,
  };
}

export interface ClusterDeps {
  /** Every node that may ever run: the initial voters and spare nodes a membership change may add. */
  readonly ids: readonly NodeId[];
  /** The voters a brand-new cluster starts with (default: all of `ids`). */
  readonly initialVoters?: readonly NodeId[];
  readonly tickPeriods: readonly number[];
  readonly tuning: CoreTuning;
  readonly coreFactory: CoreFactory;
  readonly clock: SimClock;
  readonly network: Network;
  readonly log: EventLog;
  readonly checks: SafetyChecks;
  /** Seeds the cores' own random sources (election timeouts), one per life. */
  readonly coreSeeds: SeededRandom;
  /** Puts a message on the wire to arrive `delay` units from now. */
  readonly deliverLater: (delay: number, message: Message, duplicate: boolean) => void;
  readonly stats: ClusterStats;
  /** Moments the fault schedule may want to react to. */
  readonly hooks?: ClusterHooks;
  /** Asynchronous persistence; null: synchronous. */
  readonly persistence: AsyncPersistence | null;
  /** When nodes snapshot and compact; null: never. */
  readonly snapshots: SnapshotPolicy | null;
  /** Tells the leader that sent `message` (in its life `life`) how the snapshot transfer ended, `delay` units from now. */
  readonly reportSnapshotLater: (delay: number, report: SnapshotReport) => void;
  /**
   * A deliberately broken snapshot policy, for tests only: 'snapshot-ahead'
   * snapshots and compacts up to the commit index, past what the node has
   * applied; 'snapshot-wrong-term' labels a snapshot with the node's current
   * term instead of its last entry's.
   */
  readonly snapshotBug?: SnapshotBug;
}

export type SnapshotBug = 'snapshot-ahead' | 'snapshot-wrong-term';

/** The end of a snapshot transfer, as the sending node's transport reports it. */
export interface SnapshotReport {
  readonly message: InstallSnapshot;
  readonly senderLife: number;
  readonly ok: boolean;
}

export interface AsyncPersistence {
  /** How long a write started now takes. */
  delay(): number;
  /** Schedules the completion of `node`'s write `serial`, started in life `life`, at time `at`. */
  completeAt(at: number, node: SimNode, life: number, serial: number): void;
  /** Whether an output with nothing to persist waits for the disk (or is carried out at once). */
  readonly emptyWritesWait: boolean;
  /**
   * A deliberately broken caller, for tests only: it sends an output's
   * messages as soon as it takes the output, before the write completes.
   */
  readonly sendBeforePersist?: boolean;
}

export interface ClusterHooks {
  /** `node` was seen leading `term` for the first time. */
  leaderElected?(node: SimNode, term: number): void;
  /** `node` has just persisted and sent a (real, not pre-) vote. */
  voteGranted?(node: SimNode): void;
  /** `node` applied a client's command. */
  applied?(node: SimNode, entry: Entry): void;
}

const latin1 = new TextDecoder('latin1');

/** The key a client uses to recognise its own proposal among applied entries. */
export function proposalKey(data: Uint8Array): string {
  return latin1.decode(data);
}

export class Cluster {
  readonly nodes: readonly SimNode[];
  private readonly byId = new Map<NodeId, SimNode>();
  private liveness: LivenessChecker | null = null;
  /** What travels with each InstallSnapshot sent: the sender's snapshot with its state, and the sender's life. */
  private readonly snapshotPayloads = new WeakMap<Message, { readonly snapshot: StoredSnapshot; readonly senderLife: number }>();

  constructor(private readonly deps: ClusterDeps) {
    const voters = deps.initialVoters ?? deps.ids;
    this.nodes = deps.ids.map((id, i) => new SimNode(id, voters, deps.tickPeriods[i] ?? 10, deps.checks.commit));
    for (const node of this.nodes) this.byId.set(node.id, node);
  }

  node(id: NodeId): SimNode | null {
    return this.byId.get(id) ?? null;
  }

  upNodes(): SimNode[] {
    return this.nodes.filter((n) => n.up);
  }

  watchLiveness(liveness: LivenessChecker): void {
    this.liveness = liveness;
  }

  /** The up node that is leader in the highest term, if any. */
  currentLeader(): SimNode | null {
    let best: SimNode | null = null;
    let bestTerm = -1;
    for (const node of this.nodes) {
      const core = node.core;
      if (core === null) continue;
      const st = core.status();
      if (st.role === 'leader' && st.term > bestTerm) {
        best = node;
        bestTerm = st.term;
      }
    }
    return best;
  }

  /** Starts a new life of `node` over its surviving storage. */
  start(node: SimNode): void {
    node.life++;
    node.write = null;
    node.receivedSnapshots.clear();
    // The state machine is in memory: a new life restores it from the latest snapshot, or starts empty.
    const snapshot = node.storage.snapshotWithData();
    node.applied = snapshot?.meta.index ?? 0;
    node.state = snapshot === null ? 0 : decodeState(snapshot.data);
    const t = this.deps.tuning;
    const random = new SeededRandom(this.deps.coreSeeds.nextInt(0x100000000));
    const core = this.guard(node, () =>
      this.deps.coreFactory(
        {
          id: node.id,
          electionTicks: t.electionTicks,
          heartbeatTicks: t.heartbeatTicks,
          preVote: t.preVote,
          checkQuorum: t.checkQuorum,
          maxMessageBytes: t.maxMessageBytes,
          maxInflightMessages: t.maxInflightMessages,
          maxApplyBytes: t.maxApplyBytes,
          maxUncommittedBytes: t.maxUncommittedBytes,
          appliedIndex: node.applied,
          random,
        },
        node.storage,
      ),
    );
    node.core = core;
    this.deps.checks.stateMachine.startLife(node.id, node.applied);
    if (snapshot !== null) {
      if (node.life > 1) this.deps.stats.restartsFromSnapshot++;
      this.deps.checks.snapshots.observeSnapshot(node.id, 'restored', snapshot.meta, node.state, node.applied, this.deps.checks.commit);
    }
    if (node.life > 1) {
      this.deps.stats.restarts++;
      this.deps.log.record(this.deps.clock.now, node.id, {
        k: 'restart',
        hardState: node.storage.currentHardState(),
        lastIndex: node.storage.lastIndex(),
      });
    }
    this.afterEvent(node);
  }

  /**
   * The process dies: the core and anything it had not handed out or persisted
   * are gone. A write in flight is lost, unless `writeCompletes`: then its
   * fsync returned just before the crash, so it is stored, but nothing else of
   * its output happens (no message sent, nothing applied).
   */
  crash(node: SimNode, downFor: number, writeCompletes = false): void {
    if (node.core === null) return;
    const write = node.write;
    node.write = null;
    if (write !== null && writeCompletes) this.persist(node, write.output);
    node.core = null;
    this.deps.stats.crashes++;
    this.deps.checks.commit.forgetNode(node.id);
    this.deps.checks.reads.abandon(node.id);
    if (write === null) {
      this.deps.log.record(this.deps.clock.now, node.id, { k: 'crash', downFor });
    } else {
      if (writeCompletes) this.deps.stats.crashesAfterWrite++;
      else this.deps.stats.crashesLosingWrite++;
      this.deps.log.record(this.deps.clock.now, node.id, { k: 'crash', downFor, write: writeCompletes ? 'completed' : 'lost' });
    }
  }

  /** Asynchronous persistence: `node`'s disk hangs until `until`; the write in flight completes no earlier. */
  stallDisk(node: SimNode, until: number): void {
    const persistence = this.deps.persistence;
    if (persistence === null || until <= node.diskStalledUntil) return;
    node.diskStalledUntil = until;
    const write = node.write;
    const inFlight = write !== null && write.doneAt < until;
    this.deps.log.record(this.deps.clock.now, node.id, {
      k: 'note',
      text: `DISK STALL until t=${until}${inFlight ? ` (the write in flight now completes then)` : ''}`,
    });
    if (write !== null && inFlight) {
      node.write = { ...write, doneAt: until };
      persistence.completeAt(until, node, node.life, write.serial);
    }
  }

  /**
   * Asynchronous persistence: `node`'s write `serial` completes. The output is
   * stored atomically, then carried out (send, apply, serve reads) and
   * acknowledged, and the next output, if any, is taken. A completion meant
   * for an earlier life, or for a write a crash already ended, is ignored.
   */
  completeWrite(node: SimNode, life: number, serial: number): void {
    const core = node.core;
    const write = node.write;
    if (core === null || node.life !== life || write === null || write.serial !== serial) return;
    if (this.deps.clock.now < write.doneAt) return; // a disk stall moved the completion later
    node.write = null;
    const out = write.output;
    const last = out.entries[out.entries.length - 1];
    // Did a conflicting append replace this write's tail in memory while it was in flight? Then the
    // acknowledgement below must not mark the replacement as stored (RaftLog.stableTo). Counted and
    // traced, so that specs can require this window to have been exercised.
    if (last !== undefined) {
      const now = this.guard(node, () => core.termAt(last.index));
      if (now !== last.term) {
        this.deps.stats.writesReplacedInFlight++;
        this.deps.log.record(this.deps.clock.now, node.id, {
          k: 'note',
          text: `the write's last entry ${last.index}/${last.term} was replaced in memory while it was in flight (now ${now === null ? 'gone' : `${last.index}/${now}`})`,
        });
      }
    }
    this.persist(node, out);
    if (this.deps.persistence?.sendBeforePersist !== true) this.sendAll(node, out, 'after-persist');
    this.finish(node, core, out);
    this.afterEvent(node);
  }

  tick(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    this.guard(node, () => core.tick());
    this.afterEvent(node);
  }

  deliver(message: Message, duplicate: boolean): void {
    const node = this.byId.get(message.to);
    const now = this.deps.clock.now;
    if (node === undefined) return;
    const core = node.core;
    const cut = this.deps.network.isCut(message.from, message.to);
    if (core === null || cut) {
      this.deps.stats.drops++;
      this.deps.log.record(now, 'net', { k: 'drop', m: message, why: core === null ? 'down' : 'partition' });
      if (message.type === 'InstallSnapshot') this.snapshotTransferEnded(message, false);
      return;
    }
    this.deps.stats.deliveries++;
    if (node.write !== null) this.deps.stats.deliveriesDuringWrite++;
    this.deps.log.record(now, node.id, { k: 'deliver', m: message, duplicate });
    if (message.type === 'InstallSnapshot') {
      // The whole snapshot has arrived: the node keeps it until its core asks for it to be installed.
      const payload = this.snapshotPayloads.get(message);
      if (payload === undefined) throw new Error(`no snapshot payload travels with ${message.from}->${message.to} InstallSnapshot`);
      node.receivedSnapshots.set(snapshotKey(payload.snapshot.meta), payload.snapshot);
      this.snapshotTransferEnded(message, true);
    }
    this.guard(node, () => core.step(message));
    this.afterEvent(node);
  }

  /** The sender's transport learns how a snapshot transfer ended: a later event tells its core. */
  private snapshotTransferEnded(message: InstallSnapshot, ok: boolean): void {
    const payload = this.snapshotPayloads.get(message);
    if (!ok) this.deps.stats.snapshotsLost++;
    this.deps.reportSnapshotLater(1, { message, senderLife: payload?.senderLife ?? -1, ok });
  }

  /** A leader's transport reports the end of a snapshot transfer to the core that asked for it (if still alive). */
  reportSnapshot(report: SnapshotReport): void {
    const sender = this.byId.get(report.message.from);
    const core = sender?.core ?? null;
    if (sender === undefined || core === null || sender.life !== report.senderLife) return;
    this.deps.log.record(this.deps.clock.now, sender.id, {
      k: 'note',
      text: `snapshot ${snapshotKey(report.message.snapshot)} to ${report.message.to} ${report.ok ? 'delivered' : 'lost'}`,
    });
    this.guard(sender, () => core.reportSnapshot(report.message.to, report.ok));
    this.afterEvent(sender);
  }

  /** A client proposes at `node` (which must be up). */
  propose(node: SimNode, data: Uint8Array, forwarded: boolean): ProposeResult {
    const core = node.core;
    if (core === null) throw new Error(`propose at ${node.id}, which is down`);
    const result = this.guard(node, () => core.propose(data));
    this.deps.log.record(this.deps.clock.now, node.id, { k: 'propose', data, result, forwarded });
    if (result.accepted) {
      this.deps.stats.proposalsAccepted++;
      this.liveness?.proposalAccepted(proposalKey(data));
    } else {
      this.deps.stats.proposalsRejected++;
    }
    this.afterEvent(node);
    return result;
  }

  /** A membership change asked of `leader` (an operator's call). */
  proposeConfigChange(leader: SimNode, change: ConfigChange): ProposeResult {
    const core = leader.core;
    if (core === null) throw new Error(`config change at ${leader.id}, which is down`);
    const result = this.guard(leader, () => core.proposeConfigChange(change));
    this.deps.stats.configChangesProposed++;
    if (result.accepted) this.deps.stats.configChangesAccepted++;
    this.deps.log.record(this.deps.clock.now, leader.id, {
      k: 'note',
      text: `CONFIG CHANGE ${change.type} ${change.id}: ${result.accepted ? `appended at ${result.index}/${result.term}` : `refused (${result.reason}: ${result.message})`}`,
    });
    this.afterEvent(leader);
    return result;
  }

  read(node: SimNode, requestId: string): void {
    const core = node.core;
    if (core === null) return;
    const result = this.guard(node, () => core.readIndex(requestId));
    this.deps.log.record(this.deps.clock.now, node.id, { k: 'read', requestId, result });
    if (result.accepted) {
      this.deps.checks.reads.asked(node.id, node.life, requestId, this.deps.checks.commit.maxCommitted);
    }
    this.afterEvent(node);
  }

  transfer(leader: SimNode, to: NodeId): void {
    const core = leader.core;
    if (core === null) return;
    const result = this.guard(leader, () => core.transferLeadership(to));
    this.deps.stats.transfers++;
    this.deps.log.record(this.deps.clock.now, leader.id, { k: 'transfer', to, result });
    this.afterEvent(leader);
  }

  /** Processes everything the core has to say, then checks the node's state. */
  private afterEvent(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    if (this.deps.persistence === null) {
      while (this.guard(node, () => core.hasOutput())) {
        const output = this.guard(node, () => core.takeOutput());
        this.announce(node, core, output);
        this.persist(node, output);
        this.sendAll(node, output);
        this.finish(node, core, output);
      }
    } else {
      const persistence = this.deps.persistence;
      while (node.write === null && this.guard(node, () => core.hasOutput())) {
        const output = this.guard(node, () => core.takeOutput());
        this.announce(node, core, output);
        if (persistence.emptyWritesWait || output.entries.length > 0 || output.hardState !== null) {
          this.startWrite(node, output, persistence);
        } else {
          // Nothing to persist: carried out at once, without waiting for the disk.
          this.sendAll(node, output);
          this.finish(node, core, output);
        }
      }
    }
    this.observe(node, core);
  }

  /** Asynchronous persistence: starts writing the output just taken. Nothing else of it happens yet. */
  private startWrite(node: SimNode, output: RaftOutput, persistence: AsyncPersistence): void {
    const now = this.deps.clock.now;
    const doneAt = Math.max(now + persistence.delay(), node.diskStalledUntil);
    const serial = ++node.writeSerial;
    node.write = { output, serial, startedAt: now, doneAt };
    this.deps.stats.writes++;
    this.deps.log.record(now, node.id, {
      k: 'write',
      hardState: output.hardState,
      entries: output.entries,
      messages: output.messages.length,
      committed: output.committed.length,
      reads: output.readsReady.length + output.readsFailed.length,
      doneAt,
    });
    this.sendAll(node, output, persistence.sendBeforePersist === true ? 'all' : 'early');
    persistence.completeAt(doneAt, node, node.life, serial);
  }

  /** The core handed out a role change: trace it, and register a new leader with the checks. */
  private announce(node: SimNode, core: SimCore, out: RaftOutput): void {
    if (out.roleChange === null) return;
    this.deps.log.record(this.deps.clock.now, node.id, { k: 'role', change: out.roleChange });
    if (out.roleChange.reason.startsWith('removed from the voters')) this.deps.stats.leadersRemoved++;
    if (out.roleChange.role === 'leader') this.observeLeader(node, core, out.roleChange.term);
  }

  /** Step 1 of an output: its hard state and entries are stored, atomically, with the checks watching. */
  private persist(node: SimNode, out: RaftOutput): void {
    const { checks, log, clock } = this.deps;
    const now = clock.now;
    const storage = node.storage;
    // The hard state of the previous write (consecutive saves are compared).
    const before = storage.currentHardState();
    const installed = out.snapshot === null ? null : this.takeReceivedSnapshot(node, out.snapshot);
    const first = out.entries[0];
    if (installed !== null) {
      checks.snapshots.observeSnapshot(node.id, 'installed', installed.meta, decodeState(installed.data), node.applied, checks.commit);
      if (first !== undefined && first.index !== installed.meta.index + 1) {
        throw new InvariantViolation(
          'Log Matching',
          now,
          node.id,
          `${node.id} would store entries from index ${first.index} right after installing a snapshot that ends at ${installed.meta.index}`,
        );
      }
      if (first !== undefined) checks.logMatching.observeAppend(node.id, out.entries, installed.meta.term);
    } else if (first !== undefined) {
      if (first.index < 1 || first.index > storage.lastIndex() + 1) {
        throw new InvariantViolation(
          'Log Matching',
          now,
          node.id,
          `${node.id} would store entries from index ${first.index}, leaving a gap after its last index ${storage.lastIndex()}`,
        );
      }
      const prevTerm = first.index === 1 ? 0 : storage.term(first.index - 1);
      // The commit index the core had when it decided on these entries. Synchronously: the one it
      // reached by the end of the previous event. Asynchronously, the core may have replaced an entry
      // in memory and then committed the replacement while this write was waiting to be taken, so only
      // the commit index it had when it took its previous output counts: the one that output stored.
      const durableCommit =
        this.deps.persistence === null ? Math.max(before.commit, checks.commit.commitIndexOf(node.id, node.life)) : before.commit;
      checks.commit.observeOverwrite(node.id, out.entries, durableCommit, node.storedLog);
      checks.logMatching.observeAppend(node.id, out.entries, prevTerm);
      if (out.entries.some((e) => e.index <= storage.lastIndex() && storage.term(e.index) !== e.term)) this.deps.stats.overwrites++;
    }
    if (out.hardState !== null) checks.durable.observeSave(node.id, before, out.hardState);
    storage.save(out.hardState, out.entries, installed);
    const changedFrom = Math.min(first?.index ?? Number.MAX_SAFE_INTEGER, before.commit + 1);
    checks.commit.observeDurableLog(node.id, storage.currentHardState().commit, node.storedLog, changedFrom);
    if (installed !== null) {
      this.deps.stats.snapshotsInstalled++;
      log.record(now, node.id, { k: 'note', text: `installs snapshot ${snapshotKey(installed.meta)}: the whole log replaced` });
    }
    if (
      out.entries.length > 0 ||
      (out.hardState !== null && (out.hardState.term !== before.term || out.hardState.votedFor !== before.votedFor))
    ) {
      log.record(now, node.id, { k: 'persist', hardState: out.hardState, entries: out.entries });
    }
  }

  /** The snapshot the core asks to install must be one that arrived whole from a leader. */
  private takeReceivedSnapshot(node: SimNode, meta: NonNullable<RaftOutput['snapshot']>): StoredSnapshot {
    const received = node.receivedSnapshots.get(snapshotKey(meta));
    if (received === undefined) {
      throw new InvariantViolation(
        'Snapshot Safety',
        this.deps.clock.now,
        node.id,
        `${node.id}'s core asks to install snapshot ${snapshotKey(meta)}, which never arrived`,
      );
    }
    for (const [key, other] of node.receivedSnapshots) if (other.meta.index <= meta.index) node.receivedSnapshots.delete(key);
    return received;
  }

  /** The rest of an output once stored (apply, reads), its acknowledgement, then the node's own snapshot policy. */
  private finish(node: SimNode, core: SimCore, out: RaftOutput): void {
    this.carryOut(node, core, out);
    this.guard(node, () => core.acknowledge(out));
    this.maybeSnapshot(node, core);
  }

  /**
   * The node's snapshot policy, as a real node runs it between outputs: once
   * it has applied `everyEntries` entries since its last snapshot it
   * snapshots its state machine at its applied index, then deletes the log up
   * to `retainEntries` behind the snapshot.
   */
  private maybeSnapshot(node: SimNode, core: SimCore): void {
    const policy = this.deps.snapshots;
    if (policy === null) return;
    const { checks, clock, log } = this.deps;
    const storage = node.storage;
    const latest = storage.snapshot();
    // A snapshot from the leader is about to replace this state: snapshot after installing it.
    if (this.guard(node, () => core.status()).appliedIndex !== node.applied) return;
    const bug = this.deps.snapshotBug;
    const index = bug === 'snapshot-ahead' ? Math.min(this.guard(node, () => core.status()).commitIndex, storage.lastIndex()) : node.applied;
    if (index - (latest?.index ?? 0) < policy.everyEntries || index === 0) return;
    const term = bug === 'snapshot-wrong-term' ? this.guard(node, () => core.status()).term : this.guard(node, () => core.termAt(index));
    if (term === null) {
      throw new InvariantViolation('Snapshot Safety', clock.now, node.id, `${node.id} applied up to ${index} but holds no entry there`);
    }
    const meta = { index, term, config: this.guard(node, () => core.configAt(index)) };
    // What the node committed in this very event is not observed yet: the snapshot is checked against it.
    const st = this.guard(node, () => core.status());
    checks.commit.observeCommit(node.id, node.life, st.commitIndex, st.term, this.viewOf(core));
    checks.snapshots.observeSnapshot(node.id, 'taken', meta, node.state, node.applied, checks.commit);
    storage.saveSnapshot(meta, encodeState(node.state));
    this.deps.stats.snapshotsTaken++;
    const compactTo = Math.max(0, index - policy.retainEntries);
    const compacted = compactTo - (storage.firstIndex() - 1);
    if (compacted > 0) {
      checks.snapshots.observeCompaction(node.id, compactTo, index);
      storage.compact(compactTo);
      this.deps.stats.entriesCompacted += compacted;
    }
    log.record(clock.now, node.id, {
      k: 'note',
      text: `snapshot ${snapshotKey(meta)}; log now starts at ${storage.firstIndex()}`,
    });
  }

  /**
   * Step 2 of an output: its messages go out (only once what they report is
   * stored); a leader's early messages go when its write starts.
   */
  private sendAll(node: SimNode, out: RaftOutput, which: 'all' | 'early' | 'after-persist' = 'all'): void {
    if (which !== 'after-persist') for (const message of out.earlyMessages) this.send(node, message);
    if (which !== 'early') for (const message of out.messages) this.send(node, message);
  }

  /** Steps 3 and 4 of an output: apply what it commits, serve or fail its reads. */
  private carryOut(node: SimNode, core: SimCore, out: RaftOutput): void {
    const { checks, log, clock } = this.deps;
    const now = clock.now;
    // 3. Restore the state machine from a snapshot just installed, then apply.
    if (out.snapshot !== null) {
      const installed = node.storage.snapshotWithData();
      if (installed === null || snapshotKey(installed.meta) !== snapshotKey(out.snapshot)) {
        throw new InvariantViolation('Snapshot Safety', now, node.id, `${node.id} applies before its snapshot ${snapshotKey(out.snapshot)} is stored`);
      }
      node.applied = installed.meta.index;
      node.state = decodeState(installed.data);
      checks.stateMachine.startLife(node.id, node.applied);
    }
    if (out.committed.length > 0) this.apply(node, core, out.committed);

    // 4. Serve or fail reads.
    for (const ready of out.readsReady) {
      this.deps.stats.readsReleased++;
      log.record(now, node.id, { k: 'read-ready', requestId: ready.requestId, index: ready.index, applied: node.applied });
      checks.reads.released(node.id, node.life, ready.requestId, ready.index, node.applied);
    }
    for (const failed of out.readsFailed) {
      this.deps.stats.readsFailed++;
      log.record(now, node.id, { k: 'read-failed', requestId: failed.requestId, reason: failed.reason });
      checks.reads.failed(failed.requestId);
    }
  }

  private send(node: SimNode, message: Message): void {
    const now = this.deps.clock.now;
    if (message.from !== node.id || message.to === node.id || !this.byId.has(message.to)) {
      throw new InvariantViolation(
        'Message Validity',
        now,
        node.id,
        `${node.id} sent a ${message.type} from ${message.from} to ${message.to}`,
      );
    }
    if (message.type === 'InstallSnapshot') {
      // Like a real transport, send the latest snapshot: a newer one may have replaced the one the core named.
      const snapshot = node.storage.snapshotWithData();
      if (snapshot === null || snapshot.meta.index < message.snapshot.index) {
        throw new InvariantViolation(
          'Snapshot Safety',
          now,
          node.id,
          `${node.id} sends snapshot ${snapshotKey(message.snapshot)}, but its latest is ${snapshot === null ? 'none' : snapshotKey(snapshot.meta)}`,
        );
      }
      message = { ...message, snapshot: snapshot.meta };
      this.snapshotPayloads.set(message, { snapshot, senderLife: node.life });
      this.deps.stats.snapshotsSent++;
    }
    const plan = this.deps.network.plan(message.from, message.to);
    if (plan.dropped !== null) {
      this.deps.stats.drops++;
      this.deps.log.record(now, 'net', { k: 'drop', m: message, why: plan.dropped });
      if (message.type === 'InstallSnapshot') this.snapshotTransferEnded(message, false);
      return;
    }
    plan.delays.forEach((delay, i) => this.deps.deliverLater(delay, message, i > 0));
    if (message.type === 'VoteResponse' && message.granted && !message.preVote) this.deps.hooks?.voteGranted?.(node);
  }

  private apply(node: SimNode, core: SimCore, entries: readonly Entry[]): void {
    const { checks, log, clock } = this.deps;
    for (const entry of entries) {
      checks.stateMachine.observeApply(node.id, entry);
      // A snapshot from the leader may have replaced the log since this output was taken: the view covers that.
      const held = this.viewOf(core).termAt(entry.index);
      if (held !== entry.term) {
        throw new InvariantViolation(
          'State Machine Safety',
          clock.now,
          node.id,
          `${node.id} applied ${entry.index}/${entry.term} but holds ${held === null ? 'nothing' : `term ${held}`} at that index`,
        );
      }
      node.applied = entry.index;
      node.state = nextState(node.state, entry);
      checks.snapshots.observeState(node.id, entry.index, node.state);
      if (entry.kind === 'command') {
        if (this.liveness !== null && this.liveness.tracking) this.liveness.observeApply(node.id, proposalKey(entry.data));
        this.deps.hooks?.applied?.(node, entry);
      }
    }
    const firstEntry = entries[0] as Entry;
    const lastEntry = entries[entries.length - 1] as Entry;
    log.record(clock.now, node.id, { k: 'apply', first: firstEntry, last: lastEntry, count: entries.length });
  }

  private observeLeader(node: SimNode, core: SimCore, term: number): void {
    if (this.deps.checks.election.observeLeader(node.id, term)) {
      this.deps.stats.leadersElected++;
      this.deps.hooks?.leaderElected?.(node, term);
    }
    this.deps.checks.commit.observeLeader(node.id, term, this.viewOf(core));
    this.liveness?.observeLeader();
  }

  /** The checks made after every event on the node it touched. */
  private observe(node: SimNode, core: SimCore): void {
    const st: RaftStatus = this.guard(node, () => core.status());
    const checks = this.deps.checks;
    if (st.role === 'leader') this.observeLeader(node, core, st.term);
    else checks.commit.observeNotLeader(node.id);
    const committedBefore = checks.commit.maxCommitted;
    checks.commit.observeCommit(node.id, node.life, st.commitIndex, st.term, this.viewOf(core));
    const committedNow = checks.commit.maxCommitted;
    if (committedNow > committedBefore) {
      checks.durability.observeNewCommit(
        committedNow,
        checks.commit.committedTerm(committedNow) ?? 0,
        node.id,
        this.nodes.map((n) => n.durableTail()),
        st.config.voters,
      );
    }
    if (node.applied > st.commitIndex) {
      throw new InvariantViolation(
        'State Machine Safety',
        this.deps.clock.now,
        node.id,
        `${node.id} applied up to ${node.applied} but its commit index is ${st.commitIndex}`,
      );
    }
  }

  /** A core's log as the checks read it: what it compacted is answered from the committed log. */
  private viewOf(core: SimCore): LogView {
    return throughCompaction(core, () => core.firstIndex(), this.deps.checks.commit);
  }

  /** Runs a call into the core; an exception it throws becomes a violation naming the node. */
  private guard<T>(node: SimNode, call: () => T): T {
    try {
      return call();
    } catch (error) {
      if (error instanceof InvariantViolation) throw error;
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      throw new InvariantViolation('Core Exception', this.deps.clock.now, node.id, `${node.id} threw: ${text}`);
    }
  }

  describe(): string {
    return this.nodes
      .map((n) => {
        const core = n.core;
        if (core === null) return `${n.id}: down`;
        const st = core.status();
        return `${n.id}: ${st.role} t${st.term} leader=${st.leader ?? '-'} commit=${st.commitIndex} applied=${n.applied} last=${st.lastIndex}`;
      })
      .join('; ');
  }
}
