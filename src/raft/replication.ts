import type { RaftLog } from './log.js';
import type { AppendRequest, AppendResponse } from './types.js';

export type AppendReply = Pick<AppendResponse, 'success' | 'matchIndex' | 'rejectedIndex' | 'hintIndex' | 'hintTerm'>;

/**
 * A follower's side of AppendEntries (Raft paper, Figure 2): the consistency
 * check on prevLogIndex/prevLogTerm, then appending with a conflicting suffix
 * replaced, then the commit index. A rejection carries a hint for fast
 * backtracking: the largest index at or below the rejected one whose term is
 * at most the leader's prevLogTerm, and that term.
 */
export function acceptAppend(log: RaftLog, request: AppendRequest): AppendReply {
  if (request.prevLogIndex < log.committed) {
    // Everything up to our commit index is known to match any current leader's log.
    return { success: true, matchIndex: log.committed, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 };
  }
  if (!log.matchTerm(request.prevLogIndex, request.prevLogTerm)) {
    const hintIndex = log.findConflictByTerm(Math.min(request.prevLogIndex, log.lastIndex()), request.prevLogTerm);
    return {
      success: false,
      matchIndex: 0,
      rejectedIndex: request.prevLogIndex,
      hintIndex,
      hintTerm: log.termAt(hintIndex) ?? 0,
    };
  }
  log.appendFromLeader(request.entries);
  const lastNew = request.prevLogIndex + request.entries.length;
  log.commitTo(Math.min(request.leaderCommit, lastNew));
  return { success: true, matchIndex: lastNew, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 };
}

/**
 * The leader's side of a rejection's hint: the highest index at which the
 * two logs may still agree. With the follower's term at its hint index, the
 * leader skips its own entries of later terms as well.
 */
export function probeIndexFromHint(log: RaftLog, response: AppendResponse): number {
  return response.hintTerm > 0 ? log.findConflictByTerm(response.hintIndex, response.hintTerm) : response.hintIndex;
}
