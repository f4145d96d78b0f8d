import type { NodeId } from '../../src/raft/types.js';
import { InvariantViolation, type SimClock } from './invariants.js';

/**
 * Liveness after the faults stop: from `healTime` on, the network is reliable
 * and every node is up, so within `bound` time units some node must be leader
 * and a proposal made after healTime must be applied by a majority of the
 * voters in force (membership changes may have resized the cluster, and a
 * replaced voter whose disk died stays a voter until its removal commits).
 */
export class LivenessChecker {
  private readonly appliedBy = new Map<string, Set<NodeId>>();
  private firstLeaderAt: number | null = null;
  private satisfiedAt: number | null = null;

  constructor(
    private readonly clock: SimClock,
    readonly healTime: number,
    readonly bound: number,
    private readonly majority: () => number,
  ) {}

  get deadline(): number {
    return this.healTime + this.bound;
  }

  /** Whether proposals are being followed (only those made after the heal count). */
  get tracking(): boolean {
    return this.clock.now >= this.healTime && this.satisfiedAt === null;
  }

  get satisfied(): boolean {
    return this.satisfiedAt !== null;
  }

  get leaderElectedAt(): number | null {
    return this.firstLeaderAt;
  }

  get committedAt(): number | null {
    return this.satisfiedAt;
  }

  observeLeader(): void {
    if (this.firstLeaderAt === null && this.clock.now >= this.healTime) this.firstLeaderAt = this.clock.now;
  }

  /** A client proposal was accepted; only those made after the faults stopped count. */
  proposalAccepted(key: string): void {
    if (this.clock.now >= this.healTime && !this.appliedBy.has(key)) this.appliedBy.set(key, new Set());
  }

  observeApply(node: NodeId, key: string): void {
    const nodes = this.appliedBy.get(key);
    if (nodes === undefined) return;
    nodes.add(node);
    if (this.satisfiedAt === null && nodes.size >= this.majority()) this.satisfiedAt = this.clock.now;
  }

  /** Throws once the deadline has passed without progress. `describe` adds the cluster's state to the report. */
  check(describe: () => string): void {
    if (this.satisfiedAt !== null || this.clock.now <= this.deadline) return;
    const what =
      this.firstLeaderAt === null
        ? `no leader was elected within ${this.bound} time units after the faults stopped at t=${this.healTime}`
        : `a leader was elected at t=${this.firstLeaderAt}, but no proposal made after t=${this.healTime} was applied by a majority (${this.majority()}) within ${this.bound} time units`;
    throw new InvariantViolation('Liveness', this.clock.now, null, `${what}; ${describe()}`);
  }
}
