/**
 * Everything about a run that the seed decides up front: cluster size, core
 * tuning, how bad the network is, which faults happen how often, how busy the
 * clients are. Varying these per seed lets a batch of seeds cover calm and
 * hostile runs, big and tiny messages, pipelined and stop-and-wait replication.
 */
import { SeededRandom } from '../../src/raft/random.js';
import type { NodeId } from '../../src/raft/types.js';
import type { NetworkProfile } from './network.js';

export type FaultKind = 'crash' | 'crash-leader' | 'partition' | 'isolate-leader' | 'one-way' | 'transfer';

export const FAULT_KINDS: readonly FaultKind[] = ['crash', 'crash-leader', 'partition', 'isolate-leader', 'one-way', 'transfer'];

/**
 * How long a node's durable writes take when persistence is asynchronous. A
 * real node hands an output's hard state and entries to its disk (an fsync'd
 * write takes milliseconds) and meanwhile keeps stepping messages and ticking;
 * it applies what is committed at once, but sends an output's messages only
 * when its write (and every earlier one) completes.
 */
export interface PersistProfile {
  /** A write completes after a uniform delay in [minDelay, maxDelay]. */
  readonly minDelay: number;
  readonly maxDelay: number;
  /** While faults happen: the probability that a write stalls (a disk hiccup), taking up to stallMax. */
  readonly stallRate: number;
  readonly stallMax: number;
  /**
   * While faults happen, disk stalls: every ~diskStallMeanInterval (0: never)
   * one node's disk (the leader's, more often than not) hangs for diskStallMax/3
   * to diskStallMax; its writes complete no earlier than the end of the stall. A
   * leader whose disk hangs sends nothing (its messages wait for its writes),
   * is deposed, and sees the new leader replace its own entries in memory
   * while they are still being written.
   */
  readonly diskStallMeanInterval: number;
  readonly diskStallMax: number;
  /**
   * A crash loses the writes in progress; with this probability some of them
   * (a prefix, of random length) completed instead just before the process
   * died (the fsync returned, nothing was sent): they are stored, and nothing
   * else of their outputs happens.
   */
  readonly crashAfterWriteRate: number;
  /**
   * Outputs a node takes while their writes are in progress, at most (the
   * output runner's bound; raftlog's node takes 8 by default). With 1, a node
   * takes its next output only once the write before it completed.
   */
  readonly writesInProgress: number;
}

/**
 * Snapshots and compaction, with thresholds small enough that they happen
 * constantly: a node snapshots its state machine once it has applied
 * `everyEntries` entries since its last snapshot and then deletes its log up
 * to `retainEntries` entries behind the snapshot, so followers that fall
 * behind (crashed, cut off, slow) are sent snapshots.
 */
export interface SnapshotPolicy {
  readonly everyEntries: number;
  readonly retainEntries: number;
}

/**
 * Membership changes while faults happen: every ~changeMeanInterval an
 * operator asks the leader to add a learner (one of `spareNodes` fresh nodes),
 * promote a learner, remove a voter or learner (the leader itself included),
 * replace a voter whose disk died, or bring a removed member back under its
 * old id with a fresh disk, keeping 3 to 5 voters. Changes are asked for
 * whether or not the previous one has committed: the core must refuse what
 * it cannot take.
 */
export interface MembershipProfile {
  readonly changeMeanInterval: number;
  readonly spareNodes: number;
}

export interface CoreTuning {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxMessageBytes: number;
  readonly maxInflightMessages: number;
  readonly maxApplyBytes: number;
  /** The leader's bound on proposed, uncommitted data ('backlog-full' past it). */
  readonly maxUncommittedBytes: number;
}

export interface Scenario {
  readonly seed: number;
  readonly ids: readonly NodeId[];
  readonly core: CoreTuning;
  /** Each node ticks every tickPeriods[i] time units (clocks drift apart), first at tickPhases[i]. */
  readonly tickPeriods: readonly number[];
  readonly tickPhases: readonly number[];
  /** The network while faults happen. */
  readonly faultyNetwork: NetworkProfile;
  /** The network once faults stop: no loss, no duplicates, bounded delay. */
  readonly healedNetwork: NetworkProfile;
  /** Faults happen during [0, faultPhaseLength); then everything heals. */
  readonly faultPhaseLength: number;
  /** Mean time between faults. */
  readonly faultMeanInterval: number;
  readonly faultWeights: Readonly<Record<FaultKind, number>>;
  /**
   * Faults aimed at the protocol's most fragile moments, as an adversarial
   * network or operator might hit them: the probability that a newly elected
   * leader is crashed or cut off soon after winning (before its first entries
   * spread), and that a node that has just granted a vote crashes and comes
   * straight back.
   */
  readonly newLeaderFaultRate: number;
  readonly voterCrashRate: number;
  /** Probability that a crashed node comes back almost at once (it still loses everything unpersisted). */
  readonly quickRestartRate: number;
  readonly maxDowntime: number;
  readonly maxPartitionLength: number;
  /**
   * Closed-loop clients: each proposes, waits until the node that accepted the
   * proposal applies it (or until clientTimeout passes), thinks for a while
   * (mean clientThinkTime) and proposes again. Like real clients they bound
   * the uncommitted backlog, so a slow configuration is not buried under an
   * ever-growing log.
   */
  readonly clients: number;
  readonly clientThinkTime: number;
  readonly clientTimeout: number;
  readonly readMeanInterval: number;
  /**
   * How clients name reads: 'unique' ids across the run, or 'per-node-life'
   * ids that start over ("n2.r1", "n2.r2", ...) whenever the node restarts,
   * like a server whose request counter lives in memory. Not drawn from the
   * seed; 'unique' unless overridden.
   */
  readonly readIds: 'unique' | 'per-node-life';
  /**
   * A removed member's id comes back with a fresh disk (the 'rejoin'
   * membership action: an operator's mistake the leader refuses to add, see
   * rejoinWithFreshDisk in simulation.ts). false (the default): a message
   * meant for the old process reaches the new one only in the order a peer
   * link keeps (never after newer messages from the same sender). true: in
   * any order, as if links did not keep it. Not drawn from the seed.
   */
  readonly reusedIdHazards: boolean;
  /** Probability that a client rejected with a leader hint retries at that leader. */
  readonly forwardRate: number;
  /** How long after the faults stop a proposal must be applied by a majority. */
  readonly livenessBound: number;
  /**
   * false: each output is persisted, sent, applied and acknowledged at once,
   * within the event that produced it. true: writes are asynchronous (see
   * PersistProfile). Drawn from the seed: on in about half of the seeds.
   */
  readonly asyncPersist: boolean;
  /** Write timing when asyncPersist is on (drawn for every seed, so that forcing the mode on gives a full profile). */
  readonly persist: PersistProfile;
  /** null: nodes never snapshot or compact (their logs grow for the whole run). */
  readonly snapshots: SnapshotPolicy | null;
  /** null: the initial voters stay the members for the whole run. */
  readonly membership: MembershipProfile | null;
  /**
   * How long a sender holds a commit notice (an append without entries) for
   * the next append to carry instead, by the rule the nodes' peer links run
   * (src/node/commit-notice-hold.ts, the node's --commit-notice-ms). 0: sent
   * at once. Drawn from the seed: on in about half of the seeds, from a
   * fraction of a tick (as nodes run it) to over a heartbeat.
   */
  readonly commitNoticeDelay: number;
}

/**
 * The liveness bound: 30 election timeouts of the slowest clock. After the heal,
 * a leader needs at most about two election timeouts per election round (the
 * randomized timeout is in [T, 2T)); rounds can fail to split votes, stale
 * higher terms of formerly partitioned nodes, or an unfinished leadership
 * transfer, and a new leader may have to bring a lagging majority up to date one
 * small message at a time. Thirty timeouts leave room for several such rounds
 * while still catching a cluster that never settles.
 */
export function livenessBoundFor(electionTicks: number, slowestTickPeriod: number): number {
  return 30 * electionTicks * slowestTickPeriod;
}

/**
 * The liveness bound with asynchronous persistence: a replication round trip
 * is two network hops and now also a write on each side (a message leaves only
 * once the write of its output completes), so it takes up to 1 + maxWrite /
 * maxNetwork times as long, and bringing a lagging majority up to date one
 * small message at a time takes as much longer. The bound grows by that
 * factor, capped at 2: with a fast network it is made of election timeouts,
 * which writes barely lengthen.
 */
export function asyncLivenessBoundFor(syncBound: number, maxWriteDelay: number, maxNetworkDelay: number): number {
  return Math.round(syncBound * Math.min(2, 1 + maxWriteDelay / maxNetworkDelay));
}

/**
 * The persistence mode and timing, from a random stream of their own: adding
 * them left every other choice of every seed as it was (but for the liveness
 * bound of a seed that runs asynchronously), so a seed that runs with
 * synchronous persistence runs exactly as it did before the mode existed.
 */
function choosePersistence(seed: number): Pick<Scenario, 'asyncPersist' | 'persist'> {
  const r = new SeededRandom(seed ^ 0x2f6b91c3);
  const asyncPersist = r.chance(0.5);
  const persist: PersistProfile = {
    minDelay: 1,
    maxDelay: r.pick([3, 8, 15]),
    stallRate: r.pick([0, 0.01, 0.05]),
    stallMax: r.pick([60, 150]),
    crashAfterWriteRate: r.pick([0, 0.25, 0.5]),
    diskStallMeanInterval: r.pick([0, 400, 1000]),
    diskStallMax: r.pick([200, 500]),
    writesInProgress: r.pick([1, 2, 4, 8]),
  };
  return { asyncPersist, persist };
}

/** Snapshot thresholds, from a random stream of their own (like the persistence mode). */
function chooseSnapshots(seed: number): SnapshotPolicy | null {
  const r = new SeededRandom(seed ^ 0x51a9e0d7);
  if (!r.chance(0.75)) return null;
  return { everyEntries: r.pick([1, 3, 8, 20]), retainEntries: r.pick([0, 0, 2, 10, 40]) };
}

/** The commit-notice delay, from a random stream of its own (so every other choice of every seed is as before it existed). */
function chooseCommitNoticeDelay(seed: number): number {
  const r = new SeededRandom(seed ^ 0x4c0f7e15);
  if (!r.chance(0.5)) return 0;
  return r.pick([1, 2, 5, 12, 30]);
}

/** Membership changes, from a random stream of their own. */
function chooseMembership(seed: number): MembershipProfile | null {
  const r = new SeededRandom(seed ^ 0x6d3b1f29);
  if (!r.chance(0.5)) return null;
  return { changeMeanInterval: r.pick([40, 150, 400]), spareNodes: r.pick([1, 2, 3]) };
}

/**
 * The leader's bound on uncommitted data: about ten to forty proposals of the
 * simulated clients. Without one, a leader cut off from its quorum keeps
 * taking the clients' retries, and after the heal a proposal waits behind all
 * of them: with one small entry per message that takes longer than any
 * liveness bound (production nodes run with a bound too). Drawn from a stream
 * of its own, so that adding it left every other choice of every seed as it was.
 */
function chooseBacklogBound(seed: number): number {
  const r = new SeededRandom(seed ^ 0x3a91c4e7);
  return r.pick([256, 1024]);
}

export function chooseScenario(seed: number, nodeCount: number, overrides: Partial<Scenario> = {}): Scenario {
  const r = new SeededRandom(seed ^ 0x5ce7a210);
  const ids = Array.from({ length: nodeCount }, (_, i) => `n${i + 1}`);
  const electionTicks = 10;
  const core: CoreTuning = {
    electionTicks,
    heartbeatTicks: r.pick([1, 1, 2, 3]),
    preVote: r.chance(0.7),
    checkQuorum: r.chance(0.7),
    // Tiny limits put one entry in each message and on each apply batch.
    maxMessageBytes: r.pick([1, 1, 16, 256, 1024 * 1024]),
    maxInflightMessages: r.pick([1, 2, 8, 256]),
    maxApplyBytes: r.pick([1, 64, 4 * 1024 * 1024]),
    maxUncommittedBytes: chooseBacklogBound(seed),
  };
  const tickPeriods = ids.map(() => 9 + r.nextInt(3));
  const tickPhases = tickPeriods.map((p) => r.nextInt(p));
  const maxDelay = r.pick([3, 8, 20, 40]);
  const faultyNetwork: NetworkProfile = {
    minDelay: 1,
    maxDelay,
    lossRate: r.pick([0, 0.01, 0.05, 0.15]),
    duplicateRate: r.pick([0, 0.01, 0.05]),
    longDelayRate: r.pick([0, 0.005, 0.02]),
    longDelayMax: 400,
  };
  const healedNetwork: NetworkProfile = { ...faultyNetwork, lossRate: 0, duplicateRate: 0, longDelayRate: 0 };
  const faultWeights = {} as Record<FaultKind, number>;
  for (const kind of FAULT_KINDS) faultWeights[kind] = r.nextInt(4);
  if (FAULT_KINDS.every((k) => faultWeights[k] === 0)) faultWeights.crash = 1;
  const scenario: Scenario = {
    seed,
    ids,
    core,
    tickPeriods,
    tickPhases,
    faultyNetwork,
    healedNetwork,
    faultPhaseLength: 4000 + r.nextInt(6000),
    faultMeanInterval: r.pick([60, 100, 150, 250]),
    faultWeights,
    newLeaderFaultRate: r.pick([0, 0.2, 0.5]),
    voterCrashRate: r.pick([0, 0.05, 0.2]),
    quickRestartRate: r.pick([0.2, 0.5]),
    maxDowntime: r.pick([300, 1000]),
    maxPartitionLength: r.pick([300, 1000]),
    clients: r.pick([1, 2, 4, 8]),
    clientThinkTime: r.pick([5, 10, 30, 80]),
    clientTimeout: 300,
    readMeanInterval: r.pick([30, 80, 200]),
    forwardRate: r.pick([0, 0.5, 0.9]),
    readIds: 'unique',
    reusedIdHazards: false,
    livenessBound: livenessBoundFor(electionTicks, Math.max(...tickPeriods)),
    ...choosePersistence(seed),
    snapshots: chooseSnapshots(seed),
    membership: chooseMembership(seed),
    commitNoticeDelay: chooseCommitNoticeDelay(seed),
  };
  const chosen = { ...scenario, ...overrides };
  // The bound follows the persistence mode actually run, forced or not (unless it is itself overridden).
  if (chosen.asyncPersist && overrides.livenessBound === undefined) {
    return {
      ...chosen,
      livenessBound: asyncLivenessBoundFor(chosen.livenessBound, chosen.persist.maxDelay, chosen.faultyNetwork.maxDelay),
    };
  }
  return chosen;
}
