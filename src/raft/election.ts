import type { NodeId, Role, VoteRequest, VoteResponse } from './types.js';

export interface VoterState {
  readonly term: number;
  readonly votedFor: NodeId | null;
  readonly leader: NodeId | null;
}

/**
 * Leader lease (with CheckQuorum): a node that has heard from a live leader
 * within an election timeout ignores vote requests of higher terms; they come
 * from a node that could only disrupt the cluster. A leadership transfer
 * overrides the lease.
 */
export function isInLeaderLease(
  state: VoterState,
  electionElapsed: number,
  options: { readonly checkQuorum: boolean; readonly electionTicks: number },
): boolean {
  return options.checkQuorum && state.leader !== null && electionElapsed < options.electionTicks;
}

/**
 * Whether this node may give its vote to the requester, before the log check:
 * once per term (again to the same candidate, whose request may have been
 * duplicated), not while it follows a leader, and a pre-vote for a later term
 * whenever asked, since a pre-vote promises nothing.
 */
export function mayVoteFor(state: VoterState, request: VoteRequest): boolean {
  return state.votedFor === request.from || (state.votedFor === null && state.leader === null) || (request.preVote && request.term > state.term);
}

/** A vote response counts only for the election this node is running now. */
export function countsForCurrentElection(role: Role, term: number, response: VoteResponse): boolean {
  if (role === 'pre-candidate') return response.preVote && (response.term === term + 1 || !response.granted);
  if (role === 'candidate') return !response.preVote;
  return false;
}
