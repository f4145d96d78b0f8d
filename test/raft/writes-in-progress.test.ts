/**
 * The core with several writes in progress (etcd's asynchronous storage
 * writes): outputs are taken while earlier writes are on their way, each
 * holding only what no earlier one holds, and reported persisted in order.
 */
import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { AppendRequest, Entry } from '../../src/raft/types.js';

const ids = ['n1', 'n2', 'n3'];
const entry = (index: number, term: number): Entry => ({ index, term, kind: 'command', data: new Uint8Array([index]) });

function follower(): { core: RaftCore; storage: MemoryStorage } {
  const storage = new MemoryStorage({ voters: ids });
  return { core: new RaftCore({ id: 'n2', random: new SeededRandom(4), preVote: false }, storage), storage };
}

function append(term: number, prevLogIndex: number, prevLogTerm: number, entries: Entry[], leaderCommit: number): AppendRequest {
  return { type: 'AppendRequest', from: 'n1', to: 'n2', term, prevLogIndex, prevLogTerm, entries, leaderCommit };
}

describe('a core with several writes in progress', () => {
  it('hands out each entry in one write only, and acknowledges an append only in the output whose write holds it', () => {
    const { core } = follower();
    core.step(append(1, 0, 0, [entry(1, 1), entry(2, 1)], 0));
    const first = core.takeOutput();
    core.step(append(1, 2, 1, [entry(3, 1)], 0));
    const second = core.takeOutput();
    expect(first.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(second.entries.map((e) => e.index)).toEqual([3]);
    expect(first.messages).toEqual([expect.objectContaining({ type: 'AppendResponse', matchIndex: 2 })]);
    expect(second.messages).toEqual([expect.objectContaining({ type: 'AppendResponse', matchIndex: 3 })]);
    expect(core.writesPending()).toBe(2);
    expect(core.hasOutput()).toBe(false);
  });

  it('hands out committed entries once, while the writes that hold them are still in progress', () => {
    const { core } = follower();
    core.step(append(1, 0, 0, [entry(1, 1), entry(2, 1)], 0));
    core.takeOutput();
    core.step(append(1, 2, 1, [], 2));
    const commit = core.takeOutput();
    expect(commit.committed.map((e) => e.index)).toEqual([1, 2]);
    expect(core.status().appliedIndex).toBe(2);
    core.step(append(1, 2, 1, [], 2));
    const again = core.takeOutput();
    expect(again.committed).toEqual([]);
  });

  it('refuses a write reported persisted out of order', () => {
    const { core } = follower();
    core.step(append(1, 0, 0, [entry(1, 1)], 0));
    core.takeOutput();
    core.step(append(1, 1, 1, [entry(2, 1)], 0));
    const second = core.takeOutput();
    expect(() => core.persisted(second)).toThrow(/out of order/);
  });

  it('writes the replacement of entries a write in progress holds in a later write, and never takes the old write for it', () => {
    const { core, storage } = follower();
    core.step(append(1, 0, 0, [entry(1, 1), entry(2, 1), entry(3, 1)], 0));
    const old = core.takeOutput();
    // A new leader of term 2 replaces 2..3 while the write of 1..3 (term 1) is in progress.
    core.step({ ...append(2, 1, 1, [entry(2, 2)], 0), from: 'n3' });
    const replacement = core.takeOutput();
    expect(replacement.entries.map((e) => `${e.index}/${e.term}`)).toEqual(['2/2']);

    storage.save(old.hardState, old.entries);
    core.persisted(old);
    // The old write's last entry (3/1) is no longer in the log: nothing it held after 1 counts as stored.
    expect(core.termAt(2)).toBe(2);
    expect(core.lastIndex()).toBe(2);
    storage.save(replacement.hardState, replacement.entries);
    core.persisted(replacement);
    expect(storage.lastIndex()).toBe(2);
    expect(storage.term(2)).toBe(2);
  });

  it('sends no early message while an earlier write of its new term is still in progress', () => {
    const storage = new MemoryStorage({ voters: ids });
    const leader = new RaftCore({ id: 'n1', random: new SeededRandom(3), preVote: false }, storage);
    while (leader.status().role !== 'candidate') leader.tick();
    const campaign = leader.takeOutput(); // term 1 and the self-vote, not yet durable
    leader.step({ type: 'VoteResponse', from: 'n2', to: 'n1', term: 1, preVote: false, granted: true });
    const won = leader.takeOutput();
    expect(leader.status().role).toBe('leader');
    expect(won.earlyMessages).toEqual([]);
    expect(won.messages.some((m) => m.type === 'AppendRequest')).toBe(true);
    storage.save(campaign.hardState, campaign.entries);
    leader.persisted(campaign);
    storage.save(won.hardState, won.entries);
    leader.persisted(won);
    leader.step({ type: 'AppendResponse', from: 'n2', to: 'n1', term: 1, success: true, matchIndex: 1, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 });
    leader.propose(new Uint8Array([1]));
    expect(leader.takeOutput().earlyMessages.some((m) => m.type === 'AppendRequest')).toBe(true);
  });
});
