/**
 * A planned leadership move on the leader (TransferLeadership, and a
 * graceful stop): pick the target, have the core hand over (it stops taking
 * writes, brings the target's log up to date and sends it TimeoutNow, which
 * makes it campaign at once), and wait until this node knows the new leader.
 *
 * The core gives up on a target that has not taken over within an election
 * timeout and goes on leading: that is ABORTED here (nothing changed, the
 * same request may succeed now). Writes that arrive meanwhile are refused by
 * the core and held by the node (leader-hold.ts) until the handover ends.
 *
 * A node that stops while it hands over answers UNKNOWN: the target may have
 * taken over or not. Not UNAVAILABLE, which tells a client that nothing
 * happened and that it may send the call again: a transfer without a target
 * retried that way could move leadership twice.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { describeConfig } from '../raft/membership.js';
import type { NodeId, RaftStatus, TransferResult } from '../raft/types.js';
import { aborted, ClientError, deadlineExceeded, failedPrecondition, NotLeaderError } from './errors.js';
import type { LeadershipView } from './leadership-watch.js';

export interface TransferOutcome {
  /** The node that leads now. */
  readonly leader: NodeId;
  /** Its term. */
  readonly term: number;
  /** The node that led when the transfer was asked for. */
  readonly previousLeader: NodeId;
}

/** What a transfer needs of the node it runs on. */
export interface TransferHost {
  readonly id: NodeId;
  stopped(): boolean;
  readonly logger: Logger;
  /** How long the core keeps trying one target before it gives up (one election timeout). */
  readonly electionTimeoutMs: number;
  status(): RaftStatus;
  leadershipView(): LeadershipView;
  awaitLeadership(until: number, ready: (view: LeadershipView) => boolean): Promise<LeadershipView | null>;
  /** Has the core start (or repeat) the handover to `to`, and carries out its output. */
  startTransfer(to: NodeId): TransferResult;
}

/** The target did not take over within an election timeout: nothing changed, and the leader still leads. */
export class TargetDidNotTakeOver extends ClientError {
  constructor(
    readonly target: NodeId,
    message: string,
  ) {
    super(grpc.status.ABORTED, message);
    this.name = 'TargetDidNotTakeOver';
  }
}

/**
 * The voter a leader hands over to when none is named: one heard from
 * lately, with the longest log (as hashicorp/raft picks), ties in the order
 * of the configuration; voters in `skip` (tried already) are passed over.
 * Null when no other voter is left.
 */
export function mostCaughtUpVoter(status: RaftStatus, skip: ReadonlySet<NodeId> = new Set()): NodeId | null {
  const candidates = (status.progress ?? []).filter((p) => p.id !== status.id && status.voters.includes(p.id) && !skip.has(p.id));
  let best: (typeof candidates)[number] | null = null;
  for (const follower of candidates) {
    if (
      best === null ||
      (follower.recentlyActive && !best.recentlyActive) ||
      (follower.recentlyActive === best.recentlyActive && follower.matchIndex > best.matchIndex)
    ) {
      best = follower;
    }
  }
  return best?.id ?? null;
}

/**
 * Moves leadership from this node (which must lead) to `to`, or, when `to`
 * is null, to the most caught-up voter not in `skip`, and resolves once this
 * node knows the new leader. A `to` that already leads is answered at once,
 * unchanged (a retried transfer whose first answer was lost finds its target
 * leading).
 */
export async function transferLeadership(
  host: TransferHost,
  to: NodeId | null,
  deadline: number,
  skip: ReadonlySet<NodeId> = new Set(),
): Promise<TransferOutcome> {
  const status = host.status();
  if (status.role !== 'leader') throw new NotLeaderError(host.id, status.term, status.leader);
  const { term } = status;
  const target = to ?? mostCaughtUpVoter(status, skip);
  if (target === null) {
    const others = skip.size === 0 ? 'there is no voter' : `every other voter (${[...skip].join(', ')}) was tried already: there is no voter left`;
    throw failedPrecondition(
      `node ${host.id} ${skip.size === 0 ? 'is the only voter' : 'leads'} (${describeConfig(status.config)}): ${others} to hand leadership to`,
    );
  }
  if (target === host.id) return { leader: host.id, term, previousLeader: host.id };
  checkTarget(status, target);
  if (status.transferringTo !== null && status.transferringTo !== target) {
    throw failedPrecondition(
      `node ${host.id} is already handing leadership to ${status.transferringTo} (term ${term}); ask again once that transfer has ended`,
    );
  }
  const result = host.startTransfer(target);
  if (!result.accepted) {
    if (result.reason === 'not-leader') throw new NotLeaderError(host.id, host.status().term, result.leader);
    if (result.reason === 'already-leader') return { leader: host.id, term, previousLeader: host.id };
    throw failedPrecondition(result.message);
  }
  const match = status.progress?.find((p) => p.id === target)?.matchIndex ?? 0;
  host.logger.info(
    { event: 'leadership-transfer', to: target, chosen: to === null, term, targetMatchIndex: match, lastIndex: status.lastIndex },
    `handing leadership to ${target} (term ${term}; its log at ${match} of ${status.lastIndex})`,
  );
  // Over: a leader other than this node is known, or this node still leads and the core gave up.
  const view = await host.awaitLeadership(deadline, (v) => v.leader !== null && (v.leader !== host.id || v.transferringTo === null));
  if (view === null) {
    if (host.stopped()) {
      throw new ClientError(
        grpc.status.UNKNOWN,
        `node ${host.id} stopped while handing leadership to ${target} (term ${term}); ${target} may or may not have taken over: Status shows who leads`,
      );
    }
    throw deadlineExceeded(
      `node ${host.id}: ${target} had not taken over leadership when the deadline passed (term ${term}); it may still do so: Status shows who leads`,
    );
  }
  if (view.leader === host.id) {
    const now = host.status();
    const reached = now.progress?.find((p) => p.id === target)?.matchIndex ?? 0;
    throw new TargetDidNotTakeOver(
      target,
      `node ${host.id}: ${target} did not take over within an election timeout (${host.electionTimeoutMs} ms; its log at ${reached} of ${now.lastIndex}); ` +
        `${host.id} still leads term ${now.term} and nothing changed: ask again, or name another voter`,
    );
  }
  const leader = view.leader as NodeId;
  if (to !== null && leader !== target) {
    throw aborted(`leadership moved to ${leader} (term ${view.term}), not to ${target}: another node won the election`);
  }
  host.logger.info({ event: 'leadership-transferred', to: leader, term: view.term }, `${leader} leads term ${view.term}`);
  return { leader, term: view.term, previousLeader: host.id };
}

function checkTarget(status: RaftStatus, target: NodeId): void {
  if (status.voters.includes(target)) return;
  if (status.learners.includes(target)) {
    throw failedPrecondition(`${target} is a learner: only a voter can lead; promote it first (raftlog member promote ${target})`);
  }
  throw failedPrecondition(`${target} is not a member of the cluster (${describeConfig(status.config)})`);
}
