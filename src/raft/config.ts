import type { RandomSource } from './random.js';
import type { NodeId } from './types.js';

/** Tuning of the core. Times are in ticks: the caller decides how long a tick is. */
export interface RaftOptions {
  readonly id: NodeId;
  /** A follower that hears nothing for a random time in [electionTicks, 2·electionTicks) campaigns. */
  readonly electionTicks?: number;
  /** A leader sends heartbeats every heartbeatTicks. Must be well below electionTicks. */
  readonly heartbeatTicks?: number;
  /** Ask "would you vote for me?" before disturbing the cluster with a new term (dissertation §9.6). */
  readonly preVote?: boolean;
  /** A leader that has not heard from a quorum for an election timeout steps down. */
  readonly checkQuorum?: boolean;
  /** Entries per append message are capped at this many bytes of data (at least one entry is sent). */
  readonly maxMessageBytes?: number;
  /** Append messages in flight to one follower before the leader waits for acknowledgements. */
  readonly maxInflightMessages?: number;
  /** Committed entries handed out per output batch, in bytes of data (at least one entry). */
  readonly maxApplyBytes?: number;
  /** A proposal larger than this is rejected. */
  readonly maxProposalBytes?: number;
  /**
   * A leader refuses proposals ('backlog-full') while the data of the entries
   * it proposed and has not yet committed would exceed this many bytes (one
   * proposal is always taken when nothing waits). Without a bound, a leader
   * that cannot commit (a slow or cut-off quorum) keeps taking writes it can
   * only queue: memory grows and every later write waits behind them.
   */
  readonly maxUncommittedBytes?: number;
  /** A learner is promoted to voter only once it is at most this many entries behind the leader's log. */
  readonly maxLearnerLag?: number;
  /**
   * The last index the caller's state machine already holds (it persists its
   * own state). Entries after it are handed out to apply. Default: nothing
   * applied, so a restarted node replays its committed log.
   */
  readonly appliedIndex?: number;
  /** Seeded randomness for election timeouts: the core never reads a clock or ambient randomness. */
  readonly random: RandomSource;
}

export type ResolvedOptions = Required<Omit<RaftOptions, 'appliedIndex'>>;

export const DEFAULTS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  maxMessageBytes: 512 * 1024,
  maxInflightMessages: 64,
  maxApplyBytes: 4 * 1024 * 1024,
  maxProposalBytes: 1024 * 1024,
  maxUncommittedBytes: 64 * 1024 * 1024,
  maxLearnerLag: 1000,
} as const;

export function resolveOptions(options: RaftOptions): ResolvedOptions {
  const { appliedIndex: _applied, ...rest } = options;
  const resolved: ResolvedOptions = { ...DEFAULTS, ...stripUndefined(rest) } as ResolvedOptions;
  const problems: string[] = [];
  if (!resolved.id) problems.push('id must be a non-empty string');
  if (!Number.isInteger(resolved.electionTicks) || resolved.electionTicks < 2) {
    problems.push(`electionTicks must be an integer >= 2, got ${resolved.electionTicks}`);
  }
  if (!Number.isInteger(resolved.heartbeatTicks) || resolved.heartbeatTicks < 1) {
    problems.push(`heartbeatTicks must be an integer >= 1, got ${resolved.heartbeatTicks}`);
  }
  if (resolved.heartbeatTicks >= resolved.electionTicks) {
    problems.push(`heartbeatTicks (${resolved.heartbeatTicks}) must be below electionTicks (${resolved.electionTicks})`);
  }
  if (!Number.isInteger(resolved.maxLearnerLag) || resolved.maxLearnerLag < 0) {
    problems.push(`maxLearnerLag must be a non-negative integer, got ${resolved.maxLearnerLag}`);
  }
  for (const key of ['maxMessageBytes', 'maxInflightMessages', 'maxApplyBytes', 'maxProposalBytes', 'maxUncommittedBytes'] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1) {
      problems.push(`${key} must be a positive integer, got ${resolved[key]}`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`invalid raft options for node ${String(options.id)}: ${problems.join('; ')}`);
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
