import type { MajorityConfig } from './quorum.js';
import type { NodeId } from './types.js';

export interface ReadRequest {
  readonly requestId: string;
  /** The node whose client asked: the leader itself or a follower that forwarded it. */
  readonly requester: NodeId;
}

export interface ConfirmedRead {
  readonly index: number;
  readonly requests: readonly ReadRequest[];
}

interface PendingRound {
  readonly context: number;
  readonly index: number;
  readonly requests: readonly ReadRequest[];
  readonly acks: Set<NodeId>;
}

/**
 * The leader's pending linearizable reads (dissertation §6.4). Each round
 * records the commit index when it started and is confirmed once a quorum has
 * answered a heartbeat sent after it started: then no other leader can have
 * committed anything newer in the meantime. A later round's confirmation also
 * confirms every earlier one.
 */
export class ReadIndexTracker {
  private rounds: PendingRound[] = [];
  private nextContext = 1;

  start(index: number, requests: readonly ReadRequest[], self: NodeId): number {
    const context = this.nextContext++;
    this.rounds.push({ context, index, requests, acks: new Set([self]) });
    return context;
  }

  /** The context the next heartbeat should carry: the newest round still waiting. */
  latestContext(): number | null {
    const last = this.rounds[this.rounds.length - 1];
    return last === undefined ? null : last.context;
  }

  acknowledge(context: number, from: NodeId, quorum: MajorityConfig): ConfirmedRead[] {
    const position = this.rounds.findIndex((round) => round.context === context);
    if (position < 0) return [];
    const round = this.rounds[position] as PendingRound;
    round.acks.add(from);
    if (!quorum.hasQuorum(round.acks)) return [];
    const confirmed = this.rounds.splice(0, position + 1);
    return confirmed.map(({ index, requests }) => ({ index, requests }));
  }

  /** Drops every pending round (leadership lost) and returns their requests. */
  clear(): ReadRequest[] {
    const requests = this.rounds.flatMap((round) => round.requests);
    this.rounds = [];
    return requests;
  }
}
