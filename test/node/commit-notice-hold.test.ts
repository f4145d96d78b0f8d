/**
 * The rule by which a peer link holds back a commit notice, alone: the node's
 * PeerLink runs it with a timer (peer-transport.test.ts), the simulator with
 * events of its own (every seed that chooses a commit-notice delay).
 */
import { describe, expect, it } from 'vitest';
import { CommitNoticeHold, isCommitNotice } from '../../src/node/commit-notice-hold.js';
import type { AppendRequest, Entry, Message } from '../../src/raft/types.js';

function append(prevLogIndex: number, entries: number, leaderCommit: number): AppendRequest {
  const list: Entry[] = Array.from({ length: entries }, (_, i) => ({
    index: prevLogIndex + 1 + i,
    term: 2,
    kind: 'command',
    data: new Uint8Array([i]),
  }));
  return { type: 'AppendRequest', from: 'n1', to: 'n2', term: 2, prevLogIndex, prevLogTerm: 2, entries: list, leaderCommit };
}

const vote: Message = {
  type: 'VoteRequest',
  from: 'n1',
  to: 'n2',
  term: 3,
  lastLogIndex: 9,
  lastLogTerm: 2,
  preVote: false,
  leadershipTransfer: false,
};

describe('holding a commit notice for the next append', () => {
  it('knows a commit notice: an append without entries, and nothing else', () => {
    expect(isCommitNotice(append(5, 0, 5))).toBe(true);
    expect(isCommitNotice(append(5, 1, 5))).toBe(false);
    expect(isCommitNotice(vote)).toBe(false);
  });

  it('folds a held notice into an append that reaches as far: the notice is never sent', () => {
    const hold = new CommitNoticeHold();
    expect(hold.hold(append(5, 0, 5))).toBe(1);
    expect(hold.before(append(5, 1, 5))).toBeNull();
    expect(hold.folded).toBe(1);
    // The wait is over: its deadline sends nothing.
    expect(hold.expire(1)).toBeNull();
  });

  it('sends a held notice before any message that does not carry its commit index, in order', () => {
    const hold = new CommitNoticeHold();
    const notice = append(5, 0, 5);
    hold.hold(notice);
    expect(hold.before(vote)).toBe(notice);
    hold.hold(notice);
    // An append that ends before the notice's index (a retry of an earlier one) does not let the follower commit as far.
    expect(hold.before(append(2, 2, 5))).toBe(notice);
    expect(hold.folded).toBe(0);
  });

  it('lets a newer notice take the place of a held one, under the first one’s deadline', () => {
    const hold = new CommitNoticeHold();
    const first = hold.hold(append(5, 0, 4));
    const newer = append(5, 0, 5);
    expect(hold.hold(newer)).toBeNull();
    expect(hold.folded).toBe(1);
    expect(first).not.toBeNull();
    expect(hold.expire(first ?? -1)).toBe(newer);
  });

  it('ignores the deadline of a wait that ended, even when a new wait has begun', () => {
    const hold = new CommitNoticeHold();
    const first = hold.hold(append(5, 0, 5)) ?? -1;
    hold.before(vote);
    const second = hold.hold(append(6, 0, 6)) ?? -1;
    expect(second).not.toBe(first);
    expect(hold.expire(first)).toBeNull();
    expect(hold.expire(second)).toEqual(append(6, 0, 6));
  });
});
