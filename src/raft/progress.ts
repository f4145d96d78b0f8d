import type { FollowerProgress, NodeId } from './types.js';

/**
 * The leader's view of one follower's log.
 * - probe: the leader does not know where the logs diverge; it sends one
 *   append at a time and waits for the answer (or the next heartbeat).
 * - replicate: the follower is known to match; the leader streams appends
 *   optimistically, up to a bounded number in flight.
 * - snapshot: the follower needs entries the leader has compacted; it is
 *   being sent a snapshot and gets no appends until the transfer ends.
 */
export class Progress {
  matchIndex = 0;
  nextIndex: number;
  state: 'probe' | 'replicate' | 'snapshot' = 'probe';
  /** Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Probe state: an append is out and unanswered, or a snapshot transfer just failed; a heartbeat answer clears it. */
  probeSent = false;
  /** Replicate state: last index of each append in flight, oldest first. */
  private inflight: number[] = [];
  /** Heard from since the last check-quorum round. */
  recentlyActive = false;
  /** Leader ticks since this follower last answered anything (for "is it reachable now?"). */
  ticksSinceHeard = 0;
  /** An acknowledgement arrived since the last heartbeat response. */
  private ackedSinceHeartbeat = false;

  constructor(
    readonly id: NodeId,
    nextIndex: number,
    private readonly maxInflight: number,
  ) {
    this.nextIndex = nextIndex;
  }

  becomeProbe(): void {
    // After a snapshot was delivered the follower holds everything up to it.
    const next = this.state === 'snapshot' ? Math.max(this.matchIndex, this.pendingSnapshot) + 1 : this.matchIndex + 1;
    this.state = 'probe';
    this.nextIndex = next;
    this.pendingSnapshot = 0;
    this.probeSent = false;
    this.inflight = [];
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = snapshotIndex;
    this.probeSent = false;
    this.inflight = [];
  }

  /**
   * The transfer of the pending snapshot failed: probe again from what the
   * follower is known to hold, but only once it answers a heartbeat. A
   * transfer to a node that is down fails at once; retrying at once would
   * start a new one (and read the snapshot file again) as fast as they fail.
   */
  snapshotFailed(): void {
    this.pendingSnapshot = 0;
    this.becomeProbe();
    this.probeSent = true;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.nextIndex = this.matchIndex + 1;
    this.pendingSnapshot = 0;
    this.probeSent = false;
    this.inflight = [];
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflight.length >= this.maxInflight;
      case 'snapshot':
        return true;
    }
  }

  /** Records that an append ending at lastIndex was sent (lastIndex = nextIndex-1 for an empty one). */
  onAppendSent(lastIndex: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.nextIndex = lastIndex + 1;
        this.inflight.push(lastIndex);
      }
    } else {
      this.probeSent = true;
    }
  }

  /** The follower matches up to index. Returns false for a stale acknowledgement. */
  acknowledge(index: number): boolean {
    let advanced = false;
    this.ackedSinceHeartbeat = true;
    if (index > this.matchIndex) {
      this.matchIndex = index;
      advanced = true;
      this.probeSent = false;
    }
    this.nextIndex = Math.max(this.nextIndex, index + 1);
    let drop = 0;
    while (drop < this.inflight.length && (this.inflight[drop] as number) <= index) drop++;
    if (drop > 0) this.inflight.splice(0, drop);
    return advanced;
  }

  /**
   * The follower rejected an append whose prevLogIndex was `rejectedIndex`.
   * `probeFrom` is the highest index the logs may still agree on (from the
   * follower's hint). Returns false when the rejection is stale.
   */
  rejected(rejectedIndex: number, probeFrom: number): boolean {
    if (this.state === 'snapshot') return false;
    if (this.state === 'replicate') {
      if (rejectedIndex <= this.matchIndex) return false;
      this.becomeProbe();
      this.nextIndex = Math.max(this.matchIndex + 1, Math.min(rejectedIndex, probeFrom + 1));
      return true;
    }
    if (this.nextIndex - 1 !== rejectedIndex) return false;
    this.nextIndex = Math.max(this.matchIndex + 1, Math.min(rejectedIndex, probeFrom + 1));
    this.probeSent = false;
    return true;
  }

  /**
   * A heartbeat came back: the follower is alive. Lets a paused probe try
   * again. A full pipeline that saw no acknowledgement for a whole heartbeat
   * interval has probably lost appends: freeing one slot lets the next append
   * go out, and the follower's rejection of its gap sends us back to probing.
   * A pipeline that is moving keeps its bound.
   */
  onHeartbeatResponse(): void {
    this.probeSent = false;
    const stalled = !this.ackedSinceHeartbeat;
    this.ackedSinceHeartbeat = false;
    if (this.state === 'replicate' && stalled && this.inflight.length >= this.maxInflight) this.inflight.shift();
  }

  view(): FollowerProgress {
    return {
      id: this.id,
      matchIndex: this.matchIndex,
      nextIndex: this.nextIndex,
      state: this.state,
      pendingSnapshot: this.pendingSnapshot,
      inflight: this.inflight.length,
      recentlyActive: this.recentlyActive,
    };
  }
}
