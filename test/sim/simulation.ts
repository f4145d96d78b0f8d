/**
 * One seeded run: a fault phase (crashes, partitions, lossy and reordering
 * network, leadership transfers, busy clients, stalling disks) followed by a
 * heal phase (all nodes up, no partitions, no loss, no stalls) in which the
 * cluster must make progress. Persistence is synchronous or, in about half of
 * the seeds, asynchronous (writes complete in later events).
 * Every event is followed by the safety checks; the first violation ends the
 * run. The seed decides everything, so a run can be replayed exactly.
 */
import { removedOf } from '../../src/raft/membership.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { Cluster, type ClusterStats, type Disks, emptyStats, proposalKey, type SnapshotBug, type SnapshotReport } from './cluster.js';
import { EventLog } from './event-log.js';
import { EventQueue } from './event-queue.js';
import { InvariantViolation, SafetyChecks } from './invariants.js';
import { LivenessChecker } from './liveness.js';
import { Network, oneWayPartition, type Partition, splitPartition } from './network.js';
import { chooseScenario, FAULT_KINDS, type FaultKind, type Scenario } from './scenario.js';
import type { CoreFactory } from './sim-core.js';
import type { SimNode } from './sim-node.js';

export interface SimulationOptions {
  readonly seed: number;
  /** 3 or 5; by default even seeds run 3 nodes and odd seeds 5. */
  readonly nodeCount?: number;
  /** Builds each node's core; defaults to the real RaftCore. */
  readonly coreFactory: CoreFactory;
  /** Receives one line per event as it happens (a full trace). */
  readonly trace?: (line: string) => void;
  /** Replaces parts of the scenario the seed chose. */
  readonly scenario?: Partial<Scenario>;
  /** How many recent events to keep for the failure report. */
  readonly recentEvents?: number;
  /** A deliberately broken caller, for proving that the checks catch it (test only); see CallerBug. */
  readonly callerBug?: CallerBug;
}

/**
 * Deliberately broken callers (test only). Two break the order of writes and
 * messages (need asynchronous persistence): 'send-before-persist' sends each
 * output's messages when its write starts; 'ack-after-previous-write' sends
 * them once the write before it completes. The others break the snapshot
 * policy (see SnapshotBug; need snapshots on).
 */
export type CallerBug = WriteOrderBug | SnapshotBug;
export type WriteOrderBug = 'send-before-persist' | 'ack-after-previous-write';
const WRITE_ORDER_BUGS: readonly CallerBug[] = ['send-before-persist', 'ack-after-previous-write'];

export interface SimulationResult {
  readonly seed: number;
  readonly nodeCount: number;
  readonly scenario: Scenario;
  readonly violation: InvariantViolation | null;
  /** The last events before the violation (empty when the run passed). */
  readonly recentEvents: readonly string[];
  readonly endTime: number;
  readonly events: number;
  readonly maxCommitted: number;
  readonly stats: ClusterStats;
  /** When the heal-phase liveness requirement was met, or null. */
  readonly livenessMetAt: number | null;
}

type SimEvent =
  | { readonly kind: 'tick'; readonly node: SimNode; readonly life: number }
  | { readonly kind: 'deliver'; readonly message: Message; readonly duplicate: boolean; readonly disks: Disks }
  | { readonly kind: 'fault' }
  | { readonly kind: 'restart'; readonly node: SimNode; readonly life: number }
  | { readonly kind: 'heal-partition'; readonly serial: number }
  | { readonly kind: 'client'; readonly client: ClientState; readonly serial: number }
  | { readonly kind: 'read' }
  | { readonly kind: 'heal' }
  | { readonly kind: 'targeted-crash'; readonly node: SimNode; readonly life: number; readonly downFor: number }
  | { readonly kind: 'targeted-isolation'; readonly node: SimNode; readonly life: number }
  | { readonly kind: 'write-done'; readonly node: SimNode; readonly life: number; readonly serial: number }
  | { readonly kind: 'disk-stall' }
  | { readonly kind: 'snapshot-report'; readonly report: SnapshotReport }
  | { readonly kind: 'membership' }
  | { readonly kind: 'notice-deadline'; readonly node: SimNode; readonly life: number; readonly to: NodeId; readonly wait: number };

/** One closed-loop client. `serial` invalidates its scheduled wake-ups once it has moved on. */
interface ClientState {
  serial: number;
  /** The proposal it waits for: its key and the node that accepted it. */
  waitingFor: { readonly key: string; readonly node: SimNode; readonly life: number } | null;
}

type MembershipAction = 'add' | 'promote' | 'remove' | 'replace' | 'rejoin';

/** How often each membership action is chosen, among those possible at the time. */
const MEMBERSHIP_WEIGHTS: Readonly<Record<MembershipAction, number>> = { add: 3, promote: 3, remove: 3, replace: 3, rejoin: 2 };
/** Probability that another voter is crashed or cut off as a voter is promoted or removed, to miss the change. */
const STRAND_RATE = 0.5;
/** Probability that a member back with a fresh disk is cut off together with the stale voters that still list it. */
const STALE_MEETING_RATE = 0.75;
/** Probability that the operator adds a member back with a fresh disk at once (otherwise a later 'add' does). */
const ADD_AT_ONCE_RATE = 0.5;

/** How long the run goes on after the liveness requirement is met, to exercise the healed cluster a bit. */
const SETTLE_TIME = 300;

export function defaultNodeCount(seed: number): number {
  return seed % 2 === 0 ? 3 : 5;
}

export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly clock = { now: 0 };
  private readonly queue = new EventQueue<SimEvent>();
  private readonly scenario: Scenario;
  private readonly log: EventLog;
  private readonly checks: SafetyChecks;
  private readonly network: Network;
  private readonly cluster: Cluster;
  private readonly liveness: LivenessChecker;
  private readonly stats = emptyStats();
  /** Fault choices, client choices: separate streams so that one concern's draws do not shift another's. */
  private readonly faultRandom: SeededRandom;
  private readonly clientRandom: SeededRandom;
  /** Asynchronous persistence: write delays, disk stalls, which writes in progress a crash lets complete. */
  private readonly persistRandom: SeededRandom;
  /** Membership changes: when, which, of whom. */
  private readonly membershipRandom: SeededRandom;
  private proposalSeq = 0;
  /** Proposals clients are waiting for, by key. */
  private readonly awaited = new Map<string, ClientState>();
  private readSeq = 0;
  /** Per node life, the reads asked so far (for readIds 'per-node-life'). */
  private readonly readsThisLife = new Map<string, number>();
  private events = 0;

  constructor(options: SimulationOptions) {
    const seed = options.seed;
    const nodeCount = options.nodeCount ?? defaultNodeCount(seed);
    this.scenario = chooseScenario(seed, nodeCount, options.scenario);
    const streams = new SeededRandom(seed);
    const networkRandom = new SeededRandom(streams.nextInt(0x100000000));
    this.faultRandom = new SeededRandom(streams.nextInt(0x100000000));
    this.clientRandom = new SeededRandom(streams.nextInt(0x100000000));
    const coreSeeds = new SeededRandom(streams.nextInt(0x100000000));
    // Drawn after the others, so that the streams above are the same as before this one existed.
    this.persistRandom = new SeededRandom(streams.nextInt(0x100000000));
    this.membershipRandom = new SeededRandom(streams.nextInt(0x100000000));
    const writeOrderBug = WRITE_ORDER_BUGS.includes(options.callerBug as CallerBug) ? (options.callerBug as WriteOrderBug) : undefined;
    if (writeOrderBug !== undefined && !this.scenario.asyncPersist) {
      throw new Error(`the caller bug ${writeOrderBug} needs asynchronous persistence`);
    }
    const snapshotBug = writeOrderBug === undefined ? (options.callerBug as SnapshotBug | undefined) : undefined;
    if (snapshotBug !== undefined && this.scenario.snapshots === null) {
      throw new Error(`the caller bug ${snapshotBug} needs snapshots on`);
    }
    this.log = new EventLog(options.trace ?? null, options.recentEvents ?? 200);
    this.checks = new SafetyChecks(this.clock);
    this.network = new Network(networkRandom, this.scenario.faultyNetwork);
    const spares = this.scenario.membership?.spareNodes ?? 0;
    const allIds = [...this.scenario.ids, ...Array.from({ length: spares }, (_, i) => `n${this.scenario.ids.length + i + 1}`)];
    this.cluster = new Cluster({
      ids: allIds,
      initialVoters: this.scenario.ids,
      tickPeriods: this.scenario.tickPeriods,
      tuning: this.scenario.core,
      coreFactory: options.coreFactory,
      clock: this.clock,
      network: this.network,
      log: this.log,
      checks: this.checks,
      coreSeeds,
      deliverLater: (delay, message, duplicate, disks) => this.queue.push(this.clock.now + delay, { kind: 'deliver', message, duplicate, disks }),
      snapshots: this.scenario.snapshots,
      commitNotices:
        this.scenario.commitNoticeDelay > 0
          ? {
              delay: this.scenario.commitNoticeDelay,
              expireLater: (delay, node, life, to, wait) =>
                this.queue.push(this.clock.now + delay, { kind: 'notice-deadline', node, life, to, wait }),
            }
          : null,
      reorderAcrossWipes: this.scenario.reusedIdHazards,
      reportSnapshotLater: (delay, report) => this.queue.push(this.clock.now + delay, { kind: 'snapshot-report', report }),
      ...(snapshotBug !== undefined ? { snapshotBug } : {}),
      stats: this.stats,
      hooks: {
        leaderElected: (node) => this.maybeStrikeNewLeader(node),
        voteGranted: (node) => this.maybeCrashVoter(node),
        applied: (node, entry) => this.clientSeesApply(node, entry.data),
      },
      persistence: this.scenario.asyncPersist
        ? {
            delay: () => this.writeDelay(),
            completeAt: (at, node, life, serial) => this.queue.push(at, { kind: 'write-done', node, life, serial }),
            writesInProgress: this.scenario.persist.writesInProgress,
            ...(writeOrderBug !== undefined ? { callerBug: writeOrderBug } : {}),
          }
        : null,
    });
    const majority = () => {
      const voters = this.cluster.currentLeader()?.core?.status().config.voters.length ?? nodeCount;
      return Math.floor(voters / 2) + 1;
    };
    this.liveness = new LivenessChecker(this.clock, this.scenario.faultPhaseLength, this.scenario.livenessBound, majority);
    this.cluster.watchLiveness(this.liveness);
  }

  run(): SimulationResult {
    const s = this.scenario;
    let violation: InvariantViolation | null = null;
    try {
      this.log.record(0, 'sim', { k: 'note', text: describeScenario(s) });
      this.cluster.nodes.forEach((node, i) => {
        if (!node.joined) return;
        this.cluster.start(node);
        this.queue.push(s.tickPhases[i] ?? 0, { kind: 'tick', node, life: node.life });
      });
      if (s.membership !== null) {
        this.queue.push(1 + this.membershipRandom.nextInt(2 * s.membership.changeMeanInterval), { kind: 'membership' });
      }
      this.queue.push(this.faultRandom.nextInt(2 * s.faultMeanInterval) + 1, { kind: 'fault' });
      for (let i = 0; i < s.clients; i++) {
        const client: ClientState = { serial: 0, waitingFor: null };
        this.queue.push(this.clientRandom.nextInt(2 * s.clientThinkTime) + 1, { kind: 'client', client, serial: 0 });
      }
      this.queue.push(this.clientRandom.nextInt(2 * s.readMeanInterval) + 1, { kind: 'read' });
      this.queue.push(s.faultPhaseLength, { kind: 'heal' });
      if (s.asyncPersist && s.persist.diskStallMeanInterval > 0) {
        this.queue.push(1 + this.persistRandom.nextInt(2 * s.persist.diskStallMeanInterval), { kind: 'disk-stall' });
      }
      const stopAfter = (): number | null => {
        const at = this.liveness.committedAt;
        return at === null ? null : at + SETTLE_TIME;
      };
      while (this.queue.size > 0) {
        const { time, item } = this.queue.pop();
        const stop = stopAfter();
        if (stop !== null && time > stop) break;
        this.clock.now = time;
        this.events++;
        this.handle(item);
        this.liveness.check(() => this.cluster.describe());
      }
    } catch (error) {
      if (!(error instanceof InvariantViolation)) throw error;
      violation = error;
      this.log.record(this.clock.now, 'sim', { k: 'note', text: `VIOLATION ${error.message}` });
    }
    return {
      seed: s.seed,
      nodeCount: s.ids.length,
      scenario: s,
      violation,
      recentEvents: violation === null || this.log.tracing ? [] : this.log.recentLines(),
      endTime: this.clock.now,
      events: this.events,
      maxCommitted: this.checks.commit.maxCommitted,
      stats: { ...this.stats },
      livenessMetAt: this.liveness.committedAt,
    };
  }

  private get healed(): boolean {
    return this.clock.now >= this.scenario.faultPhaseLength;
  }

  private handle(event: SimEvent): void {
    const now = this.clock.now;
    switch (event.kind) {
      case 'tick': {
        const node = event.node;
        if (node.life !== event.life || !node.up) return;
        this.cluster.tick(node);
        if (node.life === event.life && node.up) {
          this.queue.push(now + node.tickPeriod, { kind: 'tick', node, life: node.life });
        }
        return;
      }
      case 'deliver':
        this.cluster.deliver(event.message, event.duplicate, event.disks);
        return;
      case 'snapshot-report':
        this.cluster.reportSnapshot(event.report);
        return;
      case 'notice-deadline':
        this.cluster.expireNotice(event.node, event.life, event.to, event.wait);
        return;
      case 'membership': {
        const profile = this.scenario.membership;
        if (this.healed || profile === null) return;
        this.changeMembership();
        this.queue.push(now + 1 + this.membershipRandom.nextInt(2 * profile.changeMeanInterval), { kind: 'membership' });
        return;
      }
      case 'restart':
        if (event.node.life === event.life && !event.node.up && !event.node.retired) this.startNode(event.node);
        return;
      case 'heal-partition':
        if (this.network.heal(event.serial)) this.log.record(now, 'net', { k: 'note', text: 'partition heals' });
        return;
      case 'fault':
        if (this.healed) return;
        this.injectFault();
        this.queue.push(now + 1 + this.faultRandom.nextInt(2 * this.scenario.faultMeanInterval), { kind: 'fault' });
        return;
      case 'client':
        if (event.serial !== event.client.serial) return;
        this.clientPropose(event.client);
        return;
      case 'read':
        this.clientRead();
        this.queue.push(now + 1 + this.clientRandom.nextInt(2 * this.scenario.readMeanInterval), { kind: 'read' });
        return;
      case 'heal':
        this.heal();
        return;
      case 'targeted-crash':
        if (this.healed || event.node.life !== event.life || !event.node.up) return;
        this.crash(event.node, event.downFor);
        return;
      case 'targeted-isolation':
        if (this.healed || event.node.life !== event.life || !event.node.up) return;
        this.partition(splitPartition([[event.node.id], this.cluster.nodes.map((n) => n.id).filter((id) => id !== event.node.id)]));
        return;
      case 'write-done':
        this.cluster.completeWrite(event.node, event.life, event.serial);
        return;
      case 'disk-stall': {
        if (this.healed) return;
        const p = this.scenario.persist;
        const r = this.persistRandom;
        const leader = this.cluster.currentLeader();
        const node = leader !== null && r.chance(0.6) ? leader : r.pick(this.cluster.nodes);
        // Long enough, mostly, for the others to give up on a stalled leader and elect another.
        const length = Math.ceil(p.diskStallMax / 3) + r.nextInt(Math.ceil((2 * p.diskStallMax) / 3));
        this.cluster.stallDisk(node, now + length);
        this.queue.push(now + 1 + r.nextInt(2 * p.diskStallMeanInterval), { kind: 'disk-stall' });
        return;
      }
    }
  }

  /** How long a write takes: uniform in [minDelay, maxDelay]; while faults happen, sometimes a stall. */
  private writeDelay(): number {
    const p = this.scenario.persist;
    const r = this.persistRandom;
    if (!this.healed && p.stallRate > 0 && r.chance(p.stallRate)) {
      return p.maxDelay + 1 + r.nextInt(Math.max(1, p.stallMax - p.maxDelay));
    }
    return p.minDelay + r.nextInt(p.maxDelay - p.minDelay + 1);
  }

  /** A new leader is struck down before its first entries spread, sometimes. */
  private maybeStrikeNewLeader(node: SimNode): void {
    const r = this.faultRandom;
    if (this.healed || !r.chance(this.scenario.newLeaderFaultRate)) return;
    const at = this.clock.now + 1 + r.nextInt(2 * this.scenario.faultyNetwork.maxDelay);
    if (r.chance(0.5)) {
      this.queue.push(at, { kind: 'targeted-crash', node, life: node.life, downFor: this.downtime() });
    } else {
      this.queue.push(at, { kind: 'targeted-isolation', node, life: node.life });
    }
  }

  /** A node that has just voted crashes and comes straight back, sometimes. */
  private maybeCrashVoter(node: SimNode): void {
    const r = this.faultRandom;
    if (this.healed || !r.chance(this.scenario.voterCrashRate)) return;
    const at = this.clock.now + r.nextInt(this.scenario.faultyNetwork.maxDelay + 1);
    this.queue.push(at, { kind: 'targeted-crash', node, life: node.life, downFor: 1 + r.nextInt(10) });
  }

  private downtime(): number {
    const r = this.faultRandom;
    return r.chance(this.scenario.quickRestartRate) ? 1 + r.nextInt(30) : 1 + r.nextInt(this.scenario.maxDowntime);
  }

  private crash(node: SimNode, downFor: number): void {
    const lifeAtCrash = node.life;
    const pending = node.writes.length;
    const r = this.persistRandom;
    // Any prefix of the writes in progress may have completed just before the crash.
    const completedWrites = pending > 0 && r.chance(this.scenario.persist.crashAfterWriteRate) ? 1 + r.nextInt(pending) : 0;
    this.cluster.crash(node, downFor, completedWrites);
    this.queue.push(this.clock.now + downFor, { kind: 'restart', node, life: lifeAtCrash });
  }

  private startNode(node: SimNode): void {
    this.cluster.start(node);
    const delay = 1 + this.faultRandom.nextInt(node.tickPeriod);
    this.queue.push(this.clock.now + delay, { kind: 'tick', node, life: node.life });
  }

  private heal(): void {
    const now = this.clock.now;
    this.network.healAll();
    this.network.setProfile(this.scenario.healedNetwork);
    this.log.record(now, 'sim', {
      k: 'note',
      text: `faults stop: partitions healed, no more loss; a proposal must be applied by a majority before t=${this.liveness.deadline}`,
    });
    for (const node of this.cluster.nodes) if (!node.up && node.joined && !node.retired) this.startNode(node);
  }

  /**
   * An operator's membership change at the current leader: add a fresh node
   * as a learner (it starts with an empty log and configuration), promote a
   * learner, remove a member (the leader included), replace a voter whose
   * disk died (it crashes for good and is removed; a later add takes its
   * place), or bring a removed member back under its old id with a fresh disk
   * (see rejoinWithFreshDisk); 3 to 5 voters, 2 for a while during a
   * replacement. As a voter is promoted or removed, another voter is sometimes
   * crashed or cut off so that it misses the change (see maybeStrandVoter).
   */
  private changeMembership(): void {
    const r = this.membershipRandom;
    const leader = this.cluster.currentLeader();
    const core = leader?.core ?? null;
    if (leader === null || core === null) return;
    const { config, configIndex, commitIndex } = core.status();
    const learners = config.learners ?? [];
    const members = [...config.voters, ...learners];
    for (const node of this.cluster.nodes) if (members.includes(node.id)) node.awaitingAdd = false;
    // Never joined, or started for an add that did not take (refused, or overwritten): its log holds nothing of note.
    // A removed member back with a fresh disk is no spare: the leader refuses its id (see rejoinWithFreshDisk).
    const spare = this.cluster.nodes.filter((node) => (!node.joined || (node.awaitingAdd && !members.includes(node.id))) && node.wipes === 0);
    const dead = this.cluster.nodes.filter((node) => node.retired && members.includes(node.id)).map((node) => node.id);
    // Removed for good (the leader's configuration, which no longer lists them, is committed), its disk dead
    // or not: the operator may wipe its data dir and start it again under the same id, by mistake (see rejoinWithFreshDisk).
    const removed =
      configIndex <= commitIndex
        ? this.cluster.nodes.filter((node) => node.joined && !node.awaitingAdd && node !== leader && !members.includes(node.id))
        : [];
    const actions: MembershipAction[] = [];
    if (spare.length > 0 && members.length < 6) actions.push('add');
    if (learners.length > 0 && config.voters.length < 5) actions.push('promote');
    if (config.voters.length > 3 || learners.length > 0 || dead.length > 0) actions.push('remove');
    // A disk dies only in a healthy cluster: every voter up and in touch with the leader, no change under way (a
    // voter cut off for long, e.g. a stale voter with a member back with a fresh disk, would leave the cluster
    // without a quorum until it is back, and the removal of the dead one waiting on it). Two deaths before the first
    // is repaired would cost a 3-voter cluster its quorum for good, which no protocol survives. Without PreVote a
    // voter whose log is behind (it cannot win) keeps bumping the term, and with one voter dead for good the
    // electable ones may not get a turn for a long time: raftlog always runs PreVote, so replacements are
    // simulated with it only.
    const healthy = config.voters.every((id) => {
      return this.cluster.node(id)?.up === true && !this.network.isCut(leader.id, id) && !this.network.isCut(id, leader.id);
    });
    // Only with a fresh node to take the dead one's place: removed ids never come back, and without one the
    // cluster would be left at 2 voters for good.
    if (config.voters.length >= 3 && dead.length === 0 && healthy && configIndex <= commitIndex && this.scenario.core.preVote && spare.length > 0)
      actions.push('replace');
    if (removed.length > 0 && members.length < 6) actions.push('rejoin');
    if (actions.length === 0) return;
    switch (pickAction(r, actions)) {
      case 'add': {
        const node = r.pick(spare);
        node.awaitingAdd = true;
        if (!node.joined) {
          node.joined = true;
          this.startNode(node);
        }
        this.cluster.proposeConfigChange(leader, { type: 'add-learner', id: node.id, address: `sim:${node.id}` });
        return;
      }
      case 'promote': {
        const id = r.pick(learners);
        const accepted = this.cluster.proposeConfigChange(leader, { type: 'promote', id }).accepted;
        if (accepted && dead.length === 0) this.maybeStrandVoter(leader, config.voters, id);
        return;
      }
      case 'remove': {
        // A dead member first: the operator's reason to remove anyone at the minimum size.
        const removable = dead.length > 0 ? dead : config.voters.length > 3 ? members : [...learners];
        // The fault schedule, adversarial, sometimes favours a voter that a stale voter (one that missed changes)
        // still counts on: removed, and back with a fresh disk, it is the vote the stale one asks for.
        const counted = removable.filter((id) => id !== leader.id && config.voters.includes(id) && this.isCountedOnByStaleVoter(id, config.voters));
        const id = r.pick(counted.length > 0 && r.chance(0.5) ? counted : removable);
        const accepted = this.cluster.proposeConfigChange(leader, { type: 'remove', id }).accepted;
        if (accepted && dead.length === 0 && config.voters.includes(id)) this.maybeStrandVoter(leader, config.voters, id);
        return;
      }
      case 'replace': {
        const victim = this.cluster.nodes.find((node) => node.id === r.pick(config.voters.filter((id) => id !== leader.id)));
        if (victim === undefined) return;
        victim.retired = true;
        this.log.record(this.clock.now, victim.id, { k: 'note', text: `${victim.id}'s disk dies: it never comes back; the operator removes it` });
        if (victim.up) this.cluster.crash(victim, Number.POSITIVE_INFINITY);
        this.cluster.proposeConfigChange(leader, { type: 'remove', id: victim.id });
        return;
      }
      case 'rejoin': {
        // The operator knows nothing of stale voters; the fault schedule, adversarial, favours an id one still lists.
        const listed = removed.filter((node) => this.staleVotersListing(node).length > 0);
        this.rejoinWithFreshDisk(leader, r.pick(listed.length > 0 && r.chance(0.75) ? listed : removed), dead.length === 0);
        return;
      }
    }
  }

  /**
   * A voter change was just appended (promoting `target`, or removing it):
   * sometimes another voter, not the leader, is crashed or cut off for a long
   * while, so that the change (and the next ones) commit without it and it is
   * left with a stale configuration, as in a soak where n3, cut off, missed
   * two changes and later campaigned in its old configuration. Not while a
   * dead voter awaits its removal (see rejoinWithFreshDisk).
   */
  private maybeStrandVoter(leader: SimNode, voters: readonly NodeId[], target: NodeId): void {
    const r = this.membershipRandom;
    if (!r.chance(STRAND_RATE)) return;
    const candidates = this.cluster.nodes.filter((node) => node.up && node !== leader && node.id !== target && voters.includes(node.id));
    if (candidates.length === 0) return;
    const node = r.pick(candidates);
    this.stats.votersStranded++;
    const crash = r.chance(0.5);
    this.log.record(this.clock.now, node.id, {
      k: 'note',
      text: `${node.id} is ${crash ? 'crashed' : 'cut off'} as the change is made, to miss it and keep a stale configuration`,
    });
    // Long enough, mostly, for the next few changes (a later partition may end a cut short).
    const interval = this.scenario.membership?.changeMeanInterval ?? 100;
    const length = 3 * interval + r.nextInt(3 * interval);
    if (crash) {
      this.crash(node, length);
    } else {
      const others = this.cluster.nodes.filter((other) => other.joined && other !== node).map((other) => other.id);
      this.partition(splitPartition([[node.id], others]), length);
    }
  }

  /**
   * The operator brings `node`, a member removed earlier (the removal
   * committed; its disk dead or not), back under its old id, by mistake: its
   * old process is stopped for good, its data dir wiped, and a new process
   * starts with an empty log, an empty hard state and no configuration; the
   * operator's add of it as a learner, now or never, must be refused (the
   * leader's configuration records every removed id, and a removed id never
   * becomes a member again), so it stays outside the cluster for good.
   * Messages still in flight to the old process may reach the new one (see
   * ClusterDeps.reorderAcrossWipes). A voter that missed the removal
   * still counts `node` as a voter: sometimes the network then leaves the two
   * together, cut off from the rest (a stale voter still down comes back into
   * the cut), and the stale voter campaigns in its old configuration, where
   * the empty node's vote must not count (as in a soak: n3, cut off through two
   * changes, won its old configuration with the vote of n4, removed and back
   * with an empty data dir, and rolled back committed entries). Not while a
   * dead voter awaits its removal (`mayCutOff` false): with another voter cut
   * off for long, the cluster could not remove it.
   */
  private rejoinWithFreshDisk(leader: SimNode, node: SimNode, mayCutOff: boolean): void {
    const r = this.membershipRandom;
    if (node.up) this.cluster.crash(node, Number.POSITIVE_INFINITY);
    node.retired = false;
    node.wipeDisk();
    this.stats.freshDiskRejoins++;
    this.log.record(this.clock.now, node.id, {
      k: 'note',
      text: `${node.id} comes back with a fresh disk under its old id (empty log, empty hard state, no configuration): its old process is gone for good`,
    });
    node.awaitingAdd = true;
    this.startNode(node);
    // Nodes whose configuration (in memory, or on disk if they are down) still lists it as a voter.
    const stale = this.staleVotersListing(node);
    if (stale.length > 0) {
      this.stats.rejoinsWithStaleVoter++;
      const side = [...stale.map((other) => other.id), node.id];
      const rest = this.cluster.nodes.filter((other) => other.joined && !side.includes(other.id)).map((other) => other.id);
      if (mayCutOff && rest.length > 0 && r.chance(STALE_MEETING_RATE)) {
        this.log.record(this.clock.now, node.id, {
          k: 'note',
          text: `${stale.map((other) => `${other.id} (voters ${votersOf(other).join(',')})`).join(', ')} still count${stale.length === 1 ? 's' : ''} ${node.id} as a voter: cut off together with it`,
        });
        const max = this.scenario.maxPartitionLength;
        this.partition(splitPartition([side, rest]), Math.ceil(max / 2) + r.nextInt(Math.ceil(max / 2)));
        // A stale voter still down comes back now, into the cut.
        for (const other of stale) if (!other.up) this.startNode(other);
      }
    }
    if (leader.core !== null && r.chance(ADD_AT_ONCE_RATE)) {
      const result = this.cluster.proposeConfigChange(leader, { type: 'add-learner', id: node.id, address: `sim:${node.id}` });
      if (!result.accepted && result.reason === 'invalid-config-change' && removedOf(leader.core.status().config).includes(node.id)) {
        this.stats.removedIdsRefused++;
      }
    }
  }

  /**
   * Stale voters that list `node`, removed, as a voter: nodes (up, or down
   * with it on disk) whose configuration lists both themselves and `node` as
   * voters. They campaign in it, and ask `node` for its vote.
   */
  private staleVotersListing(node: SimNode): SimNode[] {
    return this.cluster.nodes.filter((other) => {
      if (other === node || !other.joined || other.retired) return false;
      const voters = votersOf(other);
      return voters.includes(other.id) && voters.includes(node.id);
    });
  }

  /** Does a voter that missed changes (its configuration is not `voters`) count `id` as a fellow voter? */
  private isCountedOnByStaleVoter(id: NodeId, voters: readonly NodeId[]): boolean {
    return this.cluster.nodes.some((other) => {
      if (other.id === id || !other.joined || other.retired) return false;
      const its = votersOf(other);
      return its.includes(other.id) && its.includes(id) && (its.length !== voters.length || its.some((v) => !voters.includes(v)));
    });
  }

  private injectFault(): void {
    const r = this.faultRandom;
    const s = this.scenario;
    const kind = pickWeighted(r, s.faultWeights);
    const up = this.cluster.upNodes();
    const ids = this.cluster.nodes.filter((node) => node.joined).map((node) => node.id);
    switch (kind) {
      case 'crash':
      case 'crash-leader': {
        const target = kind === 'crash-leader' ? (this.cluster.currentLeader() ?? null) : null;
        const candidates = target !== null ? [target] : up;
        if (candidates.length === 0) return;
        this.crash(r.pick(candidates), this.downtime());
        return;
      }
      case 'partition': {
        const shuffled = shuffle(r, ids);
        let groups: NodeId[][];
        if (ids.length >= 5 && r.chance(0.25)) {
          // No side has a majority.
          groups = [shuffled.slice(0, 2), shuffled.slice(2, 4), shuffled.slice(4)];
        } else {
          const minority = 1 + r.nextInt(Math.floor(ids.length / 2));
          groups = [shuffled.slice(0, minority), shuffled.slice(minority)];
        }
        this.partition(splitPartition(groups));
        return;
      }
      case 'isolate-leader': {
        const leader = this.cluster.currentLeader();
        const isolated = leader?.id ?? r.pick(ids);
        // Sometimes the old leader keeps one follower: a minority that still looks alive to it.
        const withFriend = ids.length >= 5 && r.chance(0.4);
        const others = shuffle(
          r,
          ids.filter((id) => id !== isolated),
        );
        const side = withFriend ? [isolated, others[0] as NodeId] : [isolated];
        this.partition(splitPartition([side, ids.filter((id) => !side.includes(id))]));
        return;
      }
      case 'one-way': {
        const node = r.pick(ids);
        const others = ids.filter((id) => id !== node);
        const variant = r.nextInt(3);
        if (variant === 0)
          this.partition(oneWayPartition([node], others)); // can hear, cannot speak
        else if (variant === 1)
          this.partition(oneWayPartition(others, [node])); // can speak, cannot hear
        else this.partition(oneWayPartition([node], [r.pick(others)])); // one broken link
        return;
      }
      case 'transfer': {
        const leader = this.cluster.currentLeader();
        if (leader === null) return;
        const to = r.pick(ids.filter((id) => id !== leader.id));
        this.cluster.transfer(leader, to);
        return;
      }
    }
  }

  private partition(partition: Partition, length = 1 + this.faultRandom.nextInt(this.scenario.maxPartitionLength)): void {
    const serial = this.network.partitionWith(partition);
    this.stats.partitions++;
    this.log.record(this.clock.now, 'net', { k: 'note', text: `partition ${partition.description} for ${length}` });
    this.queue.push(this.clock.now + length, { kind: 'heal-partition', serial });
  }

  /** The client proposes something new (it gave up on or got an answer to its previous proposal). */
  private clientPropose(client: ClientState): void {
    const r = this.clientRandom;
    if (client.waitingFor !== null) this.awaited.delete(client.waitingFor.key);
    client.waitingFor = null;
    const up = this.clientNodes();
    if (up.length > 0) {
      let node = r.pick(up);
      const data = proposalData(++this.proposalSeq, r.nextInt(24));
      let result = this.cluster.propose(node, data, false);
      if (!result.accepted && result.leader !== null && result.leader !== node.id && r.chance(this.scenario.forwardRate)) {
        const leader = this.cluster.node(result.leader);
        if (leader !== null && leader.up) {
          node = leader;
          result = this.cluster.propose(leader, data, true);
        }
      }
      if (result.accepted) {
        const key = proposalKey(data);
        client.waitingFor = { key, node, life: node.life };
        this.awaited.set(key, client);
        this.queue.push(this.clock.now + this.scenario.clientTimeout, { kind: 'client', client, serial: ++client.serial });
        return;
      }
    }
    this.queue.push(this.clock.now + 1 + r.nextInt(2 * this.scenario.clientThinkTime), {
      kind: 'client',
      client,
      serial: ++client.serial,
    });
  }

  /** The node a client is waiting on applied its proposal: the client hears back and, after thinking, proposes again. */
  private clientSeesApply(node: SimNode, data: Uint8Array): void {
    if (this.awaited.size === 0) return;
    const key = proposalKey(data);
    const client = this.awaited.get(key);
    const waiting = client?.waitingFor;
    if (client === undefined || waiting == null || waiting.node !== node || waiting.life !== node.life) return;
    this.awaited.delete(key);
    client.waitingFor = null;
    const at = this.clock.now + 1 + this.clientRandom.nextInt(2 * this.scenario.clientThinkTime);
    this.queue.push(at, { kind: 'client', client, serial: ++client.serial });
  }

  /**
   * The nodes clients talk to: those up, but for a removed member back with a
   * fresh disk until it knows itself added again (clients are given members; counting
   * such nodes, which may wait for good, would leave a healed cluster's clients
   * missing its leader more often than the liveness bound allows for).
   */
  private clientNodes(): SimNode[] {
    return this.cluster.upNodes().filter((node) => node.wipes === 0 || node.core?.status().member === true);
  }

  private clientRead(): void {
    const up = this.clientNodes();
    if (up.length === 0) return;
    const node = this.clientRandom.pick(up);
    const seq = ++this.readSeq;
    if (this.scenario.readIds === 'unique') {
      this.cluster.read(node, `r${seq}`);
      return;
    }
    const life = `${node.id}.${node.life}`;
    const k = (this.readsThisLife.get(life) ?? 0) + 1;
    this.readsThisLife.set(life, k);
    this.cluster.read(node, `${node.id}.r${k}`);
  }
}

/** A unique, printable payload: "p<seq>" padded with dots to vary the size. */
function proposalData(seq: number, padding: number): Uint8Array {
  const text = `p${seq}${'.'.repeat(padding)}`;
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function pickWeighted(r: SeededRandom, weights: Readonly<Record<FaultKind, number>>): FaultKind {
  let total = 0;
  for (const kind of FAULT_KINDS) total += weights[kind];
  let x = r.nextInt(total);
  for (const kind of FAULT_KINDS) {
    x -= weights[kind];
    if (x < 0) return kind;
  }
  return 'crash';
}

/** The voters of the configuration `node` is in (its core's), or would restart in (its disk's) while it is down. */
function votersOf(node: SimNode): readonly NodeId[] {
  return node.core?.status().config.voters ?? node.durableTail().voters;
}

function pickAction(r: SeededRandom, actions: readonly MembershipAction[]): MembershipAction {
  let total = 0;
  for (const action of actions) total += MEMBERSHIP_WEIGHTS[action];
  let x = r.nextInt(total);
  for (const action of actions) {
    x -= MEMBERSHIP_WEIGHTS[action];
    if (x < 0) return action;
  }
  return actions[0] as MembershipAction;
}

function shuffle<T>(r: SeededRandom, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.nextInt(i + 1);
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}

export function describeScenario(s: Scenario): string {
  const c = s.core;
  const n = s.faultyNetwork;
  const faults = FAULT_KINDS.filter((k) => s.faultWeights[k] > 0)
    .map((k) => `${k}×${s.faultWeights[k]}`)
    .join(' ');
  return (
    `seed ${s.seed}: ${s.ids.length} nodes, preVote=${c.preVote} checkQuorum=${c.checkQuorum} heartbeat=${c.heartbeatTicks} ` +
    `maxMsg=${c.maxMessageBytes} inflight=${c.maxInflightMessages} maxApply=${c.maxApplyBytes} maxUncommitted=${c.maxUncommittedBytes}; ` +
    `ticks every ${s.tickPeriods.join('/')}; network delay ${n.minDelay}..${n.maxDelay} loss=${n.lossRate} dup=${n.duplicateRate} long=${n.longDelayRate}; ` +
    `faults every ~${s.faultMeanInterval} until t=${s.faultPhaseLength} (${faults}); ` +
    `${s.clients} clients thinking ~${s.clientThinkTime}, reads every ~${s.readMeanInterval}; ` +
    `persistence ${s.asyncPersist ? describePersist(s.persist) : 'sync'}; ` +
    (s.snapshots === null ? 'no snapshots' : `snapshot every ${s.snapshots.everyEntries} applied entries, retain ${s.snapshots.retainEntries}`) +
    (s.membership === null ? '' : `; membership changes every ~${s.membership.changeMeanInterval} with ${s.membership.spareNodes} spare node(s)`) +
    (s.commitNoticeDelay === 0 ? '' : `; commit notices held up to ${s.commitNoticeDelay}`)
  );
}

function describePersist(p: Scenario['persist']): string {
  return (
    `async: writes take ${p.minDelay}..${p.maxDelay}` +
    (p.stallRate > 0 ? `, stall=${p.stallRate} (up to ${p.stallMax})` : '') +
    (p.diskStallMeanInterval > 0 ? `, disk stalls every ~${p.diskStallMeanInterval} (up to ${p.diskStallMax})` : '') +
    `, up to ${p.writesInProgress} writes in progress` +
    `, a crash completes some of them with p=${p.crashAfterWriteRate}`
  );
}
