/**
 * Callers waiting for this node's view of the leadership to reach some
 * state: a leader known (requests held during an election), a handover
 * finished (TransferLeadership, a graceful stop). The node reports its view
 * after every role or leader change and on every tick while someone waits;
 * each waiter is settled once, by its condition, its time limit or the
 * node's stop, and leaves no timer behind.
 */
import type { NodeId, Role } from '../raft/types.js';

/** Who leads, as one node sees it. */
export interface LeadershipView {
  readonly role: Role;
  readonly term: number;
  /** null while no leader is known (an election may be under way). */
  readonly leader: NodeId | null;
  /** On a leader handing leadership over: the node it hands it to. */
  readonly transferringTo: NodeId | null;
}

interface Waiter {
  readonly ready: (view: LeadershipView) => boolean;
  settle(view: LeadershipView | null): void;
}

export class LeadershipWatch {
  private readonly waiters = new Set<Waiter>();
  private stopped = false;

  /** Callers waiting now. */
  get size(): number {
    return this.waiters.size;
  }

  /**
   * Resolves with the first view (`now` included) for which `ready` holds;
   * with null once `until` (epoch ms) passes or the node stops.
   */
  wait(now: LeadershipView, until: number, ready: (view: LeadershipView) => boolean): Promise<LeadershipView | null> {
    if (this.stopped) return Promise.resolve(null);
    if (ready(now)) return Promise.resolve(now);
    if (until <= Date.now()) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        ready,
        settle: (view) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(view);
        },
      };
      const timer = setTimeout(() => waiter.settle(null), until - Date.now());
      this.waiters.add(waiter);
    });
  }

  /** The node's view changed (or may have): settles every waiter it satisfies. */
  update(view: LeadershipView): void {
    for (const waiter of [...this.waiters]) if (waiter.ready(view)) waiter.settle(view);
  }

  /** The node stops: every waiter gets null now, and later waits return null at once. */
  stop(): void {
    this.stopped = true;
    for (const waiter of [...this.waiters]) waiter.settle(null);
  }
}
