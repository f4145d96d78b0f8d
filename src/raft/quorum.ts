import type { NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * A set of voters decided by simple majority. Every rule that needs "a
 * quorum" asks this type (commit index, election, check-quorum, read
 * confirmation), so a change of membership is a change of the config the
 * leader holds, not arithmetic spread through the roles. With single-server
 * changes one majority config is in force at a time (dissertation §4.1).
 */
export class MajorityConfig {
  readonly voters: readonly NodeId[];
  private readonly members: ReadonlySet<NodeId>;
  /** committedIndex's working space, one slot per voter, largest match first. */
  private readonly matchScratch: number[];

  constructor(voters: readonly NodeId[]) {
    this.voters = [...voters];
    this.members = new Set(voters);
    this.matchScratch = new Array<number>(this.voters.length).fill(0);
  }

  get size(): number {
    return this.voters.length;
  }

  /** How many voters make a majority. */
  get quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  includes(id: NodeId): boolean {
    return this.members.has(id);
  }

  /**
   * The highest index that a majority of voters has matched; `matchOf` gives
   * a voter's match index (0 when unknown). An empty config commits nothing.
   */
  committedIndex(matchOf: (voter: NodeId) => number): number {
    const count = this.voters.length;
    if (count === 0) return 0;
    // The leader asks after every acknowledgement: an insertion sort into a
    // buffer of the config's own spares the garbage of map() and sort().
    const sorted = this.matchScratch;
    for (let i = 0; i < count; i++) {
      const match = matchOf(this.voters[i] as NodeId);
      let at = i;
      while (at > 0 && (sorted[at - 1] as number) < match) {
        sorted[at] = sorted[at - 1] as number;
        at--;
      }
      sorted[at] = match;
    }
    return sorted[this.quorum - 1] as number;
  }

  /** Granted and rejected votes among the voters; votes of non-voters do not count. */
  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    let granted = 0;
    let rejected = 0;
    for (const voter of this.voters) {
      const vote = votes.get(voter);
      if (vote === true) granted++;
      else if (vote === false) rejected++;
    }
    if (granted >= this.quorum) return 'won';
    if (rejected > this.voters.length - this.quorum) return 'lost';
    return 'pending';
  }

  /** Whether the voters among `ids` make a majority. */
  hasQuorum(ids: Iterable<NodeId>): boolean {
    let count = 0;
    for (const id of new Set(ids)) if (this.members.has(id)) count++;
    return count >= this.quorum;
  }
}
