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
import { SeededRandom } from '../../src/raft/random.js';
import type { Entry, Message, NodeId, ProposeResult, RaftOutput, RaftStatus } from '../../src/raft/types.js';
import type { EventLog } from './event-log.js';
import { InvariantViolation, type SafetyChecks, type SimClock } from './invariants.js';
import type { LivenessChecker } from './liveness.js';
import type { Network } from './network.js';
import type { CoreTuning } from './scenario.js';
import type { CoreFactory, SimCore } from './sim-core.js';
import { SimNode } from './sim-node.js';

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
  };
}

export interface ClusterDeps {
  readonly ids: readonly NodeId[];
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

  constructor(private readonly deps: ClusterDeps) {
    this.nodes = deps.ids.map((id, i) => new SimNode(id, deps.ids, deps.tickPeriods[i] ?? 10));
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
    node.applied = 0;
    node.write = null;
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
          random,
        },
        node.storage,
      ),
    );
    node.core = core;
    // The state machine is in memory: every life starts from an empty one.
    this.deps.checks.stateMachine.startLife(node.id, 0);
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
    this.carryOut(node, core, out);
    this.guard(node, () => core.acknowledge(out));
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
    if (core === null) {
      this.deps.stats.drops++;
      this.deps.log.record(now, 'net', { k: 'drop', m: message, why: 'down' });
      return;
    }
    if (this.deps.network.isCut(message.from, message.to)) {
      this.deps.stats.drops++;
      this.deps.log.record(now, 'net', { k: 'drop', m: message, why: 'partition' });
      return;
    }
    this.deps.stats.deliveries++;
    if (node.write !== null) this.deps.stats.deliveriesDuringWrite++;
    this.deps.log.record(now, node.id, { k: 'deliver', m: message, duplicate });
    this.guard(node, () => core.step(message));
    this.afterEvent(node);
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
        this.carryOut(node, core, output);
        this.guard(node, () => core.acknowledge(output));
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
          this.carryOut(node, core, output);
          this.guard(node, () => core.acknowledge(output));
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
    if (out.roleChange.role === 'leader') this.observeLeader(node, core, out.roleChange.term);
  }

  /** Step 1 of an output: its hard state and entries are stored, atomically, with the checks watching. */
  private persist(node: SimNode, out: RaftOutput): void {
    const { checks, log, clock } = this.deps;
    const now = clock.now;
    const storage = node.storage;
    // The hard state of the previous write (consecutive saves are compared).
    const before = storage.currentHardState();
    const first = out.entries[0];
    if (first !== undefined) {
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
    storage.save(out.hardState, out.entries);
    const changedFrom = Math.min(first?.index ?? Number.MAX_SAFE_INTEGER, before.commit + 1);
    checks.commit.observeDurableLog(node.id, storage.currentHardState().commit, node.storedLog, changedFrom);
    if (
      out.entries.length > 0 ||
      (out.hardState !== null && (out.hardState.term !== before.term || out.hardState.votedFor !== before.votedFor))
    ) {
      log.record(now, node.id, { k: 'persist', hardState: out.hardState, entries: out.entries });
    }
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
    // 3. Apply.
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
    const plan = this.deps.network.plan(message.from, message.to);
    if (plan.dropped !== null) {
      this.deps.stats.drops++;
      this.deps.log.record(now, 'net', { k: 'drop', m: message, why: plan.dropped });
      return;
    }
    plan.delays.forEach((delay, i) => this.deps.deliverLater(delay, message, i > 0));
    if (message.type === 'VoteResponse' && message.granted && !message.preVote) this.deps.hooks?.voteGranted?.(node);
  }

  private apply(node: SimNode, core: SimCore, entries: readonly Entry[]): void {
    const { checks, log, clock } = this.deps;
    for (const entry of entries) {
      checks.stateMachine.observeApply(node.id, entry);
      const held = core.termAt(entry.index);
      if (held !== entry.term) {
        throw new InvariantViolation(
          'State Machine Safety',
          clock.now,
          node.id,
          `${node.id} applied ${entry.index}/${entry.term} but holds ${held === null ? 'nothing' : `term ${held}`} at that index`,
        );
      }
      node.applied = entry.index;
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
    this.deps.checks.commit.observeLeader(node.id, term, core);
    this.liveness?.observeLeader();
  }

  /** The checks made after every event on the node it touched. */
  private observe(node: SimNode, core: SimCore): void {
    const st: RaftStatus = this.guard(node, () => core.status());
    const checks = this.deps.checks;
    if (st.role === 'leader') this.observeLeader(node, core, st.term);
    else checks.commit.observeNotLeader(node.id);
    const committedBefore = checks.commit.maxCommitted;
    checks.commit.observeCommit(node.id, node.life, st.commitIndex, st.term, core);
    const committedNow = checks.commit.maxCommitted;
    if (committedNow > committedBefore) {
      checks.durability.observeNewCommit(
        committedNow,
        checks.commit.committedTerm(committedNow) ?? 0,
        node.id,
        this.nodes.map((n) => n.durableTail()),
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
