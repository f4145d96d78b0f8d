/**
 * The simulated servers and the caller's side of the core's contract: feeding
 * it ticks, messages and client requests, and carrying out its output with the
 * node's own OutputRunner, the safety checks watching each step.
 *
 * Persistence is synchronous (each write completes within the event that
 * started it) or asynchronous: a write completes in a later event, in the
 * order started; meanwhile the node keeps stepping messages, ticking and
 * taking outputs (up to its writes-in-progress bound), applying what is
 * committed at once, while each output's messages wait for its write.
 */

import { CommitNoticeHold, isCommitNotice } from '../../src/node/commit-notice-hold.js';
import type { StoredSnapshot } from '../../src/raft/memory-storage.js';
import { OutputRunner } from '../../src/raft/output-runner.js';
import { SeededRandom } from '../../src/raft/random.js';
import type {
  ConfigChange,
  Entry,
  InstallSnapshot,
  Message,
  NodeId,
  ProposeResult,
  RaftOutput,
  ReadFailed,
  ReadReady,
} from '../../src/raft/types.js';
import type { EventLog } from './event-log.js';
import { InvariantViolation, type LogView, type SafetyChecks, type SimClock, throughCompaction } from './invariants.js';
import type { LivenessChecker } from './liveness.js';
import type { Network } from './network.js';
import type { CoreTuning, SnapshotPolicy } from './scenario.js';
import type { CoreFactory, SimCore } from './sim-core.js';
import { decodeState, encodeState, nextState, type PendingWrite, SimNode, snapshotKey } from './sim-node.js';

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
  /** Asynchronous persistence: writes started, and writes started while others were in progress. */
  writes: number;
  writesBehindOthers: number;
  /** Messages a node stepped while one of its writes was in flight. */
  deliveriesDuringWrite: number;
  /** Writes whose last entry the core had already replaced in memory (a conflicting append) when they completed. */
  writesReplacedInFlight: number;
  /** Crashes that lost writes in progress, and crashes just after some completed (stored, nothing sent). */
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
  /** Removed members back under their old id with a fresh disk, and how many of those a stale voter still listed. */
  freshDiskRejoins: number;
  rejoinsWithStaleVoter: number;
  /** Adds of such an id that the leader refused because its configuration records the id as removed. */
  removedIdsRefused: number;
  /** Voters crashed or cut off as a membership change was made, to miss it (and leave a stale configuration). */
  votersStranded: number;
  /** Commit notices held back (Scenario.commitNoticeDelay), and of those, never sent: a newer notice or an append took their place. */
  noticesHeld: number;
  noticesFolded: number;
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
    writesBehindOthers: 0,
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
    freshDiskRejoins: 0,
    rejoinsWithStaleVoter: 0,
    removedIdsRefused: 0,
    votersStranded: 0,
    noticesHeld: 0,
    noticesFolded: 0,
  };
}

export interface CommitNotices {
  readonly delay: number;
  /** Calls expireNotice(node, life, to, wait) `delay` units from now. */
  readonly expireLater: (delay: number, node: SimNode, life: number, to: NodeId, wait: number) => void;
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
  /** Puts a message on the wire to arrive `delay` units from now; `disks`: its sender's and receiver's when sent. */
  readonly deliverLater: (delay: number, message: Message, duplicate: boolean, disks: Disks) => void;
  readonly stats: ClusterStats;
  /** Moments the fault schedule may want to react to. */
  readonly hooks?: ClusterHooks;
  /** Asynchronous persistence; null: synchronous. */
  readonly persistence: AsyncPersistence | null;
  /** When nodes snapshot and compact; null: never. */
  readonly snapshots: SnapshotPolicy | null;
  /** Senders hold commit notices by the peer links' rule (Scenario.commitNoticeDelay); null: sent at once. */
  readonly commitNotices?: CommitNotices | null;
  /** Tells the leader that sent `message` (in its life `life`) how the snapshot transfer ended, `delay` units from now. */
  readonly reportSnapshotLater: (delay: number, report: SnapshotReport) => void;
  /**
   * A deliberately broken snapshot policy, for tests only: 'snapshot-ahead'
   * snapshots and compacts up to the commit index, past what the node has
   * applied; 'snapshot-wrong-term' labels a snapshot with the node's current
   * term instead of its last entry's.
   */
  readonly snapshotBug?: SnapshotBug;
  /**
   * Messages across a disk wipe (an id back with a fresh disk), see
   * Scenario.reusedIdHazards. false (default): one meant for the old process
   * reaches the new one unless newer messages from the same sender reached it
   * first (a peer link delivers in order: it would have come before them), and
   * one the old process sent is dropped if still in flight once the new one
   * runs (it would have arrived long before). true: both are delivered.
   */
  readonly reorderAcrossWipes?: boolean;
}

/** The disks (SimNode.wipes) of a message's sender and receiver when it was sent. */
export interface Disks {
  readonly from: number;
  readonly to: number;
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
  /** Outputs a node takes while their writes are in progress, at most (the runner's bound). */
  readonly writesInProgress: number;
  /**
   * A deliberately broken caller, for tests only. 'send-before-persist' sends
   * an output's messages as soon as its write starts; 'ack-after-previous-write'
   * sends them once the write before it completes (a pipeline off by one): a
   * follower acknowledges entries whose write has not completed.
   */
  readonly callerBug?: 'send-before-persist' | 'ack-after-previous-write';
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
      const st = core.brief();
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
    node.writes = [];
    node.receivedSnapshots.clear();
    node.noticeHolds.clear();
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
    node.runner = this.runnerFor(node, core);
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
   * are gone. Of its writes in progress, the first `completedWrites` had their
   * fsync return just before the crash, so they are stored, but nothing else of
   * their outputs happens (no message sent); the rest are lost.
   */
  crash(node: SimNode, downFor: number, completedWrites = 0): void {
    if (node.core === null) return;
    const writes = node.writes;
    node.writes = [];
    const completed = Math.min(completedWrites, writes.length);
    for (const write of writes.slice(0, completed)) this.persist(node, write.output);
    node.runner?.stop();
    node.runner = null;
    node.core = null;
    // Commit notices held back die with the process, like everything else it had not sent.
    node.noticeHolds.clear();
    this.deps.stats.crashes++;
    this.deps.checks.commit.forgetNode(node.id);
    this.deps.checks.reads.abandon(node.id);
    if (writes.length === 0) {
      this.deps.log.record(this.deps.clock.now, node.id, { k: 'crash', downFor });
    } else {
      if (completed > 0) this.deps.stats.crashesAfterWrite++;
      if (completed < writes.length) this.deps.stats.crashesLosingWrite++;
      this.deps.log.record(this.deps.clock.now, node.id, {
        k: 'crash',
        downFor,
        writes: { completed, lost: writes.length - completed },
      });
    }
  }

  /** Asynchronous persistence: `node`'s disk hangs until `until`; its writes in progress complete no earlier. */
  stallDisk(node: SimNode, until: number): void {
    const persistence = this.deps.persistence;
    if (persistence === null || until <= node.diskStalledUntil) return;
    node.diskStalledUntil = until;
    const delayed = node.writes.filter((write) => write.doneAt < until);
    this.deps.log.record(this.deps.clock.now, node.id, {
      k: 'note',
      text: `DISK STALL until t=${until}${delayed.length > 0 ? ` (${delayed.length} writes in progress now complete then)` : ''}`,
    });
    for (const write of delayed) write.doneAt = until;
    const last = delayed[delayed.length - 1];
    if (last !== undefined) persistence.completeAt(until, node, node.life, last.serial);
  }

  /**
   * Asynchronous persistence: a completion event of `node`'s disk. Every write
   * due by now completes, oldest first: it is stored atomically and the runner
   * is told (it sends the output's messages and reports it persisted), then
   * the next outputs, if any, are taken. An event meant for an earlier life
   * finds nothing to do, as does one a disk stall made early.
   */
  completeWrite(node: SimNode, life: number, _serial: number): void {
    const core = node.core;
    if (core === null || node.life !== life) return;
    let completed = 0;
    while (node.writes.length > 0 && (node.writes[0] as PendingWrite).doneAt <= this.deps.clock.now) {
      const write = node.writes.shift() as PendingWrite;
      completed++;
      this.noteReplacedInFlight(node, core, write.output);
      this.persist(node, write.output);
      this.installState(node, write.output);
      const next = node.writes[0];
      if (this.deps.persistence?.callerBug === 'ack-after-previous-write' && next !== undefined) {
        for (const message of next.output.messages) this.send(node, message);
      }
      this.guard(node, () => write.done());
    }
    if (completed > 0) this.afterEvent(node);
  }

  /**
   * Did a conflicting append replace this write's tail in memory while it was
   * in flight? Then persisted() must not mark the replacement as stored
   * (RaftLog.stableTo). Counted and traced, so that specs can require this
   * window to have been exercised.
   */
  private noteReplacedInFlight(node: SimNode, core: SimCore, out: RaftOutput): void {
    const last = out.entries[out.entries.length - 1];
    if (last === undefined) return;
    const now = this.guard(node, () => core.termAt(last.index));
    if (now === last.term) return;
    this.deps.stats.writesReplacedInFlight++;
    this.deps.log.record(this.deps.clock.now, node.id, {
      k: 'note',
      text: `the write's last entry ${last.index}/${last.term} was replaced in memory while it was in flight (now ${now === null ? 'gone' : `${last.index}/${now}`})`,
    });
  }

  tick(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    this.guard(node, () => core.tick());
    this.afterEvent(node);
  }

  /** `disks`: its sender's and receiver's disks when the message was sent (default: their disks now). */
  deliver(message: Message, duplicate: boolean, disks?: Disks): void {
    const node = this.byId.get(message.to);
    const now = this.deps.clock.now;
    if (node === undefined) return;
    const core = node.core;
    const cut = this.deps.network.isCut(message.from, message.to);
    const wiped = this.acrossWipe(node, message, disks);
    if (core === null || cut || wiped !== null) {
      this.deps.stats.drops++;
      this.deps.log.record(now, 'net', {
        k: 'drop',
        m: message,
        why: core === null ? 'down' : cut ? 'partition' : (wiped as 'overtaken' | 'old-sender'),
      });
      if (message.type === 'InstallSnapshot') this.snapshotTransferEnded(message, false);
      return;
    }
    if ((disks?.to ?? node.wipes) === node.wipes && node.wipes > 0) node.heardSinceWipe.add(message.from);
    this.deps.stats.deliveries++;
    if (node.writes.length > 0) this.deps.stats.deliveriesDuringWrite++;
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

  /** Why a message sent across a disk wipe of its sender or receiver is dropped, if it is (see ClusterDeps.reorderAcrossWipes). */
  private acrossWipe(receiver: SimNode, message: Message, disks: Disks | undefined): 'overtaken' | 'old-sender' | null {
    if (disks === undefined || this.deps.reorderAcrossWipes === true) return null;
    if ((this.byId.get(message.from)?.wipes ?? 0) > disks.from) return 'old-sender';
    if (disks.to < receiver.wipes && receiver.heardSinceWipe.has(message.from)) return 'overtaken';
    return null;
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

  /** Carries out everything the core has to say (as far as writes in progress allow), then checks the node's state. */
  private afterEvent(node: SimNode): void {
    const core = node.core;
    const runner = node.runner;
    if (core === null || runner === null) return;
    this.guard(node, () => runner.run());
    // The node queues its snapshot record behind its writes in progress; the simulator, simpler, snapshots only
    // when none is left, so a record waiting behind writes is not explored here (test/node covers the node's).
    if (node.core === core && node.writes.length === 0) this.maybeSnapshot(node, core);
    this.observe(node, core);
  }

  /** The node's output runner, with the simulated disk, network and state machine as its effects. */
  private runnerFor(node: SimNode, core: SimCore): OutputRunner {
    const persistence = this.deps.persistence;
    return new OutputRunner(
      core,
      {
        taken: (out) => this.announce(node, core, out),
        write: (out, done) => {
          if (persistence === null) {
            this.persist(node, out);
            this.installState(node, out);
            done();
          } else {
            this.startWrite(node, out, done, persistence);
          }
        },
        send: (messages) => {
          for (const message of messages) this.send(node, message);
        },
        apply: (entries) => {
          this.apply(node, core, entries);
          // Checked after each apply, not only after a whole run: the core may have committed more than it handed out.
          if (node.writes.length === 0) this.maybeSnapshot(node, core);
        },
        reads: (ready, failed) => this.settleReads(node, ready, failed),
      },
      { maxWritesInProgress: persistence?.writesInProgress ?? 1 },
    );
  }

  /** Asynchronous persistence: starts writing the output just taken; it completes after the writes before it. */
  private startWrite(node: SimNode, output: RaftOutput, done: () => void, persistence: AsyncPersistence): void {
    const now = this.deps.clock.now;
    const previous = node.writes[node.writes.length - 1];
    const doneAt = Math.max(now + persistence.delay(), node.diskStalledUntil, previous?.doneAt ?? 0);
    const serial = ++node.writeSerial;
    node.writes.push({ output, serial, startedAt: now, doneAt, done });
    this.deps.stats.writes++;
    if (previous !== undefined) this.deps.stats.writesBehindOthers++;
    this.deps.log.record(now, node.id, {
      k: 'write',
      hardState: output.hardState,
      entries: output.entries,
      messages: output.messages.length,
      committed: output.committed.length,
      reads: output.readsReady.length + output.readsFailed.length,
      doneAt,
    });
    if (persistence.callerBug === 'send-before-persist') for (const message of output.messages) this.send(node, message);
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
      const durableCommit = this.deps.persistence === null ? Math.max(before.commit, checks.commit.commitIndexOf(node.id, node.life)) : before.commit;
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
    if (out.entries.length > 0 || (out.hardState !== null && (out.hardState.term !== before.term || out.hardState.votedFor !== before.votedFor))) {
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

  /**
   * The node's snapshot policy: once
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
    if (this.guard(node, () => core.brief()).appliedIndex !== node.applied) return;
    const bug = this.deps.snapshotBug;
    const index = bug === 'snapshot-ahead' ? Math.min(this.guard(node, () => core.brief()).commitIndex, storage.lastIndex()) : node.applied;
    if (index - (latest?.index ?? 0) < policy.everyEntries || index === 0) return;
    const term = bug === 'snapshot-wrong-term' ? this.guard(node, () => core.brief()).term : this.guard(node, () => core.termAt(index));
    if (term === null) {
      throw new InvariantViolation('Snapshot Safety', clock.now, node.id, `${node.id} applied up to ${index} but holds no entry there`);
    }
    const meta = { index, term, config: this.guard(node, () => core.configAt(index)) };
    // What the node committed in this very event is not observed yet: the snapshot is checked against it.
    const st = this.guard(node, () => core.brief());
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

  /** A snapshot's write restores the state machine from it (the runner applies nothing after it before that). */
  private installState(node: SimNode, out: RaftOutput): void {
    if (out.snapshot === null) return;
    const installed = node.storage.snapshotWithData();
    if (installed === null || snapshotKey(installed.meta) !== snapshotKey(out.snapshot)) {
      throw new InvariantViolation(
        'Snapshot Safety',
        this.deps.clock.now,
        node.id,
        `${node.id} restores its state machine before its snapshot ${snapshotKey(out.snapshot)} is stored`,
      );
    }
    node.applied = installed.meta.index;
    node.state = decodeState(installed.data);
    this.deps.checks.stateMachine.startLife(node.id, node.applied);
  }

  /** Step 4 of an output: serve or fail its reads. */
  private settleReads(node: SimNode, ready: readonly ReadReady[], failed: readonly ReadFailed[]): void {
    const { checks, log, clock } = this.deps;
    const now = clock.now;
    for (const read of ready) {
      this.deps.stats.readsReleased++;
      log.record(now, node.id, { k: 'read-ready', requestId: read.requestId, index: read.index, applied: node.applied });
      checks.reads.released(node.id, node.life, read.requestId, read.index, node.applied);
    }
    for (const read of failed) {
      this.deps.stats.readsFailed++;
      log.record(now, node.id, { k: 'read-failed', requestId: read.requestId, reason: read.reason });
      checks.reads.failed(read.requestId);
    }
  }

  private send(node: SimNode, message: Message): void {
    const now = this.deps.clock.now;
    if (message.from !== node.id || message.to === node.id || !this.byId.has(message.to)) {
      throw new InvariantViolation('Message Validity', now, node.id, `${node.id} sent a ${message.type} from ${message.from} to ${message.to}`);
    }
    const notices = this.deps.commitNotices;
    if (notices === undefined || notices === null) {
      this.transmit(node, message);
      return;
    }
    let hold = node.noticeHolds.get(message.to);
    if (hold === undefined) {
      hold = new CommitNoticeHold();
      node.noticeHolds.set(message.to, hold);
    }
    if (isCommitNotice(message)) {
      const wait = hold.hold(message);
      this.deps.stats.noticesHeld++;
      if (wait === null) this.deps.stats.noticesFolded++;
      this.deps.log.record(now, node.id, { k: 'notice', m: message, what: wait === null ? 'replaced' : 'held' });
      if (wait !== null) notices.expireLater(notices.delay, node, node.life, message.to, wait);
      return;
    }
    const folded = hold.folded;
    const first = hold.before(message);
    if (hold.folded > folded) {
      this.deps.stats.noticesFolded++;
      this.deps.log.record(now, node.id, { k: 'notice', m: message, what: 'folded' });
    }
    if (first !== null) this.transmit(node, first);
    this.transmit(node, message);
  }

  /** The deadline of a commit notice's wait: it goes now unless it went, or was folded, meanwhile (or the sender died). */
  expireNotice(node: SimNode, life: number, to: NodeId, wait: number): void {
    if (node.life !== life || node.core === null) return;
    const held = node.noticeHolds.get(to)?.expire(wait) ?? null;
    if (held !== null) this.transmit(node, held);
  }

  /** Puts a message on the simulated network. */
  private transmit(node: SimNode, message: Message): void {
    const now = this.deps.clock.now;
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
    // The disks now: a message from or to a process of an id whose disk has since been wiped is told apart.
    const disks: Disks = { from: node.wipes, to: this.byId.get(message.to)?.wipes ?? 0 };
    for (const [i, delay] of plan.delays.entries()) this.deps.deliverLater(delay, message, i > 0, disks);
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
    const st = this.guard(node, () => core.brief());
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
