/**
 * Requests that arrive while the leadership is changing are held, not
 * refused at once, as etcd does: while no leader is known (an election), while
 * the leader hands leadership over, while the leader this node knows cannot
 * be reached (it died; this node has not noticed yet), and while the leader
 * this node forwarded to answers that it no longer leads (it handed over;
 * this node has not heard of the new one yet). The request is tried again as
 * soon as the leadership is steady (a leader known, not handing over): served
 * here if this node now leads, else forwarded, so a client sees a slower
 * answer instead of UNAVAILABLE.
 *
 * A hold is bounded: by the request's own deadline (less a margin, so that a
 * write that was never proposed is answered UNAVAILABLE, safe to retry,
 * rather than reaching the client as DEADLINE_EXCEEDED, whose outcome is
 * unknown), and by the node's hold limit (--hold-without-leader-ms), so that
 * a node cut off with a minority still answers UNAVAILABLE in bounded time and
 * the client can try elsewhere. A stopping node releases every held request
 * with UNAVAILABLE. Only refusals that changed nothing (UNAVAILABLE) are held.
 */
import * as grpc from '@grpc/grpc-js';
import type { NodeId } from '../raft/types.js';
import { ClientError, LeaderChangingError, LeaderUnreachableError, NotLeaderError, unavailable } from './errors.js';
import type { LeadershipView } from './leadership-watch.js';

/** What holding needs of the node. */
export interface HoldingNode {
  readonly id: NodeId;
  readonly isStopped: boolean;
  /** The longest a request is held (0: never held). */
  readonly holdWithoutLeaderMs: number;
  readonly electionTimeoutMs: number;
  leadershipView(): LeadershipView;
  awaitLeadership(until: number, ready: (view: LeadershipView) => boolean): Promise<LeadershipView | null>;
}

/** The answer must still reach the client before its deadline: this much of the time left is kept for it (at most). */
const REPLY_MARGIN_MS = 250;

/**
 * The leader this node forwarded a call to answered that it does not lead
 * (it handed over, or is handing over): it refused before proposing
 * anything, so nothing was written and the call may be forwarded again.
 */
export class RefusedByFormerLeader extends ClientError {
  constructor(
    /** The node forwarded to. */
    readonly leader: NodeId,
    /** The term this node knew it to lead. */
    readonly term: number,
    message: string,
  ) {
    super(grpc.status.UNAVAILABLE, message);
    this.name = 'RefusedByFormerLeader';
  }
}

/** Steady leadership: a leader is known and not handing over, so a held request can go on. */
const steady = (view: LeadershipView): boolean => view.leader !== null && view.transferringTo === null;

interface Hold {
  readonly ready: (view: LeadershipView) => boolean;
  /** Try again after this long even if `ready` does not hold yet. */
  readonly retryAfterMs?: number;
}

/**
 * Runs `attempt`, and while it fails because the leadership is changing,
 * holds and runs it again. `onHeld` hears why, once, when the hold begins.
 */
export async function holdWhileLeaderChanges<T>(
  node: HoldingNode,
  deadline: number,
  attempt: () => Promise<T>,
  onHeld?: (reason: string) => void,
): Promise<T> {
  let holdingSince: number | null = null;
  let holdUntil = 0;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      const hold = node.holdWithoutLeaderMs > 0 && !node.isStopped ? holdFor(error, node) : null;
      if (hold === null) throw error;
      const now = Date.now();
      if (holdingSince === null) {
        holdingSince = now;
        holdUntil = Math.min(now + node.holdWithoutLeaderMs, deadline - Math.min(REPLY_MARGIN_MS, Math.max(0, deadline - now) / 5));
        onHeld?.((error as Error).message);
      }
      if (now >= holdUntil) throw heldInVain(error as ClientError, now - holdingSince);
      const until = hold.retryAfterMs === undefined ? holdUntil : Math.min(holdUntil, now + hold.retryAfterMs);
      await node.awaitLeadership(until, hold.ready);
      if (node.isStopped) throw unavailable(`node ${node.id} is shutting down`);
    }
  }
}

function holdFor(error: unknown, node: HoldingNode): Hold | null {
  if (!(error instanceof ClientError) || error.code !== grpc.status.UNAVAILABLE) return null;
  if (error instanceof LeaderUnreachableError || error instanceof RefusedByFormerLeader) {
    const { leader, term } = error;
    // Tried again once this node knows another leader (or term), and now and then before: an unreachable
    // leader may be alive with its connection coming back; a former one names its successor soon.
    return { ready: (view) => steady(view) && (view.leader !== leader || view.term !== term), retryAfterMs: node.electionTimeoutMs };
  }
  if ((error instanceof NotLeaderError && error.leader === null) || error instanceof LeaderChangingError || !steady(node.leadershipView())) {
    return { ready: steady };
  }
  return null;
}

function heldInVain(error: ClientError, heldMs: number): ClientError {
  return new ClientError(error.code, `${error.message} (held ${heldMs} ms waiting for a leader)`, error.facts);
}
