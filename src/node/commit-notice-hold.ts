import type { AppendRequest, Message } from '../raft/types.js';

/** An append without entries: it mostly tells a follower how far the leader has committed. */
export function isCommitNotice(message: Message): message is AppendRequest {
  return message.type === 'AppendRequest' && message.entries.length === 0;
}

/**
 * The rule by which a link to one peer holds back a commit notice (an append
 * without entries) for a short while, so that the next append can carry its
 * commit index instead; the caller owns the clock. PeerLink runs it with a
 * timer, and the simulator with events of its own, so that the seeds explore
 * the rule production runs.
 *
 * Why the rule is safe and keeps the leader's stall rule fed: see
 * PeerLink.holdCommitNotice.
 */
export class CommitNoticeHold {
  private held: AppendRequest | null = null;
  /** Counts the waits begun, so that a deadline of an earlier wait does nothing. */
  private generation = 0;
  /** Notices that were never sent: replaced by a newer one, or made unneeded by an append reaching as far. */
  folded = 0;

  /**
   * Holds `notice` in place of any waiting one. Returns the number of a new
   * wait, whose deadline the caller must set (expire(thatNumber)), or null when
   * a notice was waiting already: the new one keeps that deadline, so none
   * waits longer than the delay.
   */
  hold(notice: AppendRequest): number | null {
    const waiting = this.held !== null;
    this.held = notice;
    if (waiting) {
      this.folded += 1;
      return null;
    }
    this.generation += 1;
    return this.generation;
  }

  /**
   * `next` is about to go to the peer: returns the waiting notice when it must
   * go first, or null when none waits or `next` makes it unneeded (an append
   * that reaches at least as far).
   */
  before(next: Message): AppendRequest | null {
    const held = this.take();
    if (held === null) return null;
    // The follower commits up to min(leaderCommit, the append's last index): an append reaching the notice's index
    // carries a commit index at least as new (the sender's only grows) and lets the follower use all of it.
    if (next.type === 'AppendRequest' && next.prevLogIndex + next.entries.length >= held.prevLogIndex) {
      this.folded += 1;
      return null;
    }
    return held;
  }

  /** The deadline of wait `generation` passed: the notice to send now, or null if that wait already ended. */
  expire(generation: number): AppendRequest | null {
    return generation === this.generation ? this.take() : null;
  }

  /** Ends the wait, if any, and returns what waited; the notice is not sent by this object. */
  take(): AppendRequest | null {
    const held = this.held;
    this.held = null;
    return held;
  }
}
