/**
 * Each checker is fed a broken history directly and must report it: a checker
 * is trusted only after it has caught a bug. Each also accepts the legal
 * history next to it, so that it cannot pass by reporting everything.
 */
import { describe, expect, it } from 'vitest';
import type { Entry, HardState } from '../../src/raft/types.js';
import {
  CommitChecker,
  CommitDurabilityChecker,
  DurableStateChecker,
  ElectionSafetyChecker,
  InvariantViolation,
  LogMatchingChecker,
  type LogTail,
  type LogView,
  type PropertyName,
  ReadChecker,
  SnapshotChecker,
  StateMachineChecker,
  throughCompaction,
} from './invariants.js';
import { LivenessChecker } from './liveness.js';

const clock = { now: 42 };
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const cmd = (index: number, term: number, text: string): Entry => ({ index, term, kind: 'command', data: bytes(text) });
const noop = (index: number, term: number): Entry => ({ index, term, kind: 'noop', data: new Uint8Array(0) });

/** A log given as the term of each entry, from index 1. */
function logOf(...terms: number[]): LogView {
  return { termAt: (index) => (index === 0 ? 0 : (terms[index - 1] ?? null)) };
}

function tailOf(node: string, ...terms: number[]): LogTail {
  const voters = ['n1', 'n2', 'n3'];
  return { node, lastIndex: terms.length, lastTerm: terms[terms.length - 1] ?? 0, voters, members: voters, ...logOf(...terms) };
}

function violationOf(action: () => void): InvariantViolation {
  try {
    action();
  } catch (error) {
    if (error instanceof InvariantViolation) return error;
    throw error;
  }
  throw new Error('expected an invariant violation, but the checker accepted the history');
}

function expectViolation(property: PropertyName, node: string | null, action: () => void): InvariantViolation {
  const violation = violationOf(action);
  expect(violation.property).toBe(property);
  expect(violation.node).toBe(node);
  expect(violation.time).toBe(42);
  return violation;
}

describe('Election Safety checker', () => {
  it('reports a second leader elected in the same term', () => {
    const check = new ElectionSafetyChecker(clock);
    check.observeLeader('n1', 3);
    const v = expectViolation('Election Safety', 'n2', () => check.observeLeader('n2', 3));
    expect(v.detail).toContain('n1 was already elected in term 3');
  });

  it('reports it even when the first leader has long since stepped down or crashed', () => {
    const check = new ElectionSafetyChecker(clock);
    check.observeLeader('n1', 3);
    check.observeLeader('n2', 4);
    expectViolation('Election Safety', 'n3', () => check.observeLeader('n3', 3));
  });

  it('accepts one leader per term, seen any number of times', () => {
    const check = new ElectionSafetyChecker(clock);
    expect(check.observeLeader('n1', 1)).toBe(true);
    expect(check.observeLeader('n1', 1)).toBe(false);
    expect(check.observeLeader('n2', 2)).toBe(true);
    expect(check.observeLeader('n1', 3)).toBe(true);
  });
});

describe('Log Matching checker', () => {
  it('reports two different entries stored under one index and term', () => {
    const check = new LogMatchingChecker(clock);
    check.observeAppend('n1', [cmd(1, 1, 'x'), cmd(2, 1, 'y')], 0);
    const v = expectViolation('Log Matching', 'n2', () => check.observeAppend('n2', [cmd(1, 1, 'x'), cmd(2, 1, 'z')], 0));
    expect(v.detail).toContain('2/1');
  });

  it('reports an entry whose kind differs from the one registered', () => {
    const check = new LogMatchingChecker(clock);
    check.observeAppend('n1', [noop(1, 1)], 0);
    expectViolation('Log Matching', 'n2', () => check.observeAppend('n2', [cmd(1, 1, '')], 0));
  });

  it('reports logs that share an entry but differ before it', () => {
    const check = new LogMatchingChecker(clock);
    check.observeAppend('n1', [cmd(3, 2, 'c')], 1); // n1: ..., 2/1, 3/2
    const v = expectViolation('Log Matching', 'n2', () => check.observeAppend('n2', [cmd(3, 2, 'c')], 2)); // n2: ..., 2/2, 3/2
    expect(v.detail).toContain('follows an entry of term 1');
  });

  it('reports a write that is not contiguous or whose terms go down', () => {
    const check = new LogMatchingChecker(clock);
    expectViolation('Log Matching', 'n1', () => check.observeAppend('n1', [cmd(1, 1, 'a'), cmd(3, 1, 'b')], 0));
    expectViolation('Log Matching', 'n1', () => check.observeAppend('n1', [cmd(1, 2, 'a'), cmd(2, 1, 'b')], 0));
    expectViolation('Log Matching', 'n1', () => check.observeAppend('n1', [cmd(5, 2, 'a')], 3));
  });

  it('accepts the same entries stored by many nodes and rewritten by later terms', () => {
    const check = new LogMatchingChecker(clock);
    check.observeAppend('n1', [noop(1, 1), cmd(2, 1, 'a')], 0);
    check.observeAppend('n2', [noop(1, 1)], 0);
    check.observeAppend('n2', [cmd(2, 1, 'a')], 1);
    check.observeAppend('n3', [noop(1, 1), cmd(2, 2, 'b')], 0);
    check.observeAppend('n1', [cmd(2, 2, 'b'), noop(3, 3)], 1);
  });
});

describe('commit checker: commit index, committed entries, Leader Completeness', () => {
  it('reports a commit index that falls within one life, and allows a restart to resume lower', () => {
    const check = new CommitChecker(clock);
    check.observeCommit('n1', 1, 3, 1, logOf(1, 1, 1));
    expectViolation('Commit Monotonicity', 'n1', () => check.observeCommit('n1', 1, 2, 1, logOf(1, 1, 1)));
    const fresh = new CommitChecker(clock);
    fresh.observeCommit('n1', 1, 3, 1, logOf(1, 1, 1));
    fresh.observeCommit('n1', 2, 1, 1, logOf(1, 1, 1));
  });

  it('reports a commit index beyond the entries the node holds', () => {
    const check = new CommitChecker(clock);
    expectViolation('Commit Validity', 'n1', () => check.observeCommit('n1', 1, 3, 1, logOf(1, 1)));
  });

  it('reports two nodes committing different terms at one index', () => {
    const check = new CommitChecker(clock);
    check.observeCommit('n1', 1, 2, 2, logOf(1, 2));
    const v = expectViolation('State Machine Safety', 'n2', () => check.observeCommit('n2', 1, 2, 3, logOf(1, 3)));
    expect(v.detail).toContain('n1 committed index 2 with term 2');
  });

  it('reports a leader of a later term elected without a committed entry', () => {
    const check = new CommitChecker(clock);
    check.observeCommit('n1', 1, 2, 2, logOf(1, 2)); // 2/2 committed by n1, leader of term 2
    const v = expectViolation('Leader Completeness', 'n3', () => check.observeLeader('n3', 3, logOf(1)));
    expect(v.detail).toContain('without committed entry 2/2');
  });

  it('does not expect an entry committed in term 4 from a stale leader of term 3', () => {
    const check = new CommitChecker(clock);
    check.observeCommit('n1', 1, 2, 4, logOf(1, 4));
    // n2 won term 3 with votes cast before term 4 began, and only now counts them: legal, it cannot commit anything.
    check.observeLeader('n2', 3, logOf(1));
  });

  it('reports a commit that a leader of a later term already in office does not hold', () => {
    const check = new CommitChecker(clock);
    check.observeLeader('n3', 5, logOf(1, 3));
    const v = expectViolation('Leader Completeness', 'n3', () => check.observeCommit('n1', 1, 2, 4, logOf(1, 4)));
    expect(v.detail).toContain('leader of the later term 5');
  });

  it('reports a write that overwrites or truncates an entry at or below the commit index', () => {
    const check = new CommitChecker(clock);
    const stored = logOf(1, 1, 1);
    expectViolation('Committed Entries Never Change', 'n1', () => check.observeOverwrite('n1', [cmd(2, 2, 'x')], 2, stored));
    expectViolation('Committed Entries Never Change', 'n1', () => check.observeOverwrite('n1', [cmd(1, 1, 'a')], 2, stored));
    // Rewriting identical terms beyond the commit index, or conflicts above it, is legal.
    check.observeOverwrite('n1', [cmd(3, 2, 'x')], 2, stored);
    check.observeOverwrite('n1', [cmd(2, 1, 'b'), cmd(3, 1, 'c')], 2, stored);
  });

  it('reports a durable log that, up to its durable commit index, is not the committed log', () => {
    const check = new CommitChecker(clock);
    check.observeCommit('n1', 1, 3, 2, logOf(1, 2, 2));
    // n2 stored commit index 3 over a log holding 2/1 where 2/2 was committed.
    const v = expectViolation('State Machine Safety', 'n2', () => check.observeDurableLog('n2', 3, logOf(1, 1, 2), 1));
    expect(v.detail).toContain('index 2, where n1 committed term 2');
    // n3 stored commit index 3 over a log that ends at 2.
    expectViolation('Commit Validity', 'n3', () => check.observeDurableLog('n3', 3, logOf(1, 2), 1));
  });

  it('accepts a durable log holding the committed entries, and leaves unobserved commits to the commit checks', () => {
    const check = new CommitChecker(clock);
    check.observeCommit('n1', 1, 2, 2, logOf(1, 2));
    check.observeDurableLog('n2', 2, logOf(1, 2, 3), 1);
    // Index 3 is not known to be committed yet: nothing to compare it with.
    check.observeDurableLog('n2', 3, logOf(1, 2, 3), 1);
    // Only the indexes from `from` on are compared.
    check.observeDurableLog('n3', 2, logOf(9, 2), 2);
  });
});

describe('commit durability (Leader Completeness at commit time)', () => {
  // Figure 8 of the Raft paper, three nodes: n1 (leader of term 4) re-replicates its
  // entry 2/2 to n3 and counts it committed, while n2 holds 2/3.
  it('reports a committed entry that a node lacking it could still be elected over', () => {
    const check = new CommitDurabilityChecker(clock);
    const logs = [tailOf('n1', 1, 2, 4), tailOf('n2', 1, 3), tailOf('n3', 1, 2)];
    const v = expectViolation('Leader Completeness', 'n2', () => check.observeNewCommit(2, 2, 'n1', logs));
    expect(v.detail).toContain('n3 (2/2)');
  });

  it('accepts the commit once an entry of the leader’s own term is on a majority', () => {
    const check = new CommitDurabilityChecker(clock);
    check.observeNewCommit(3, 4, 'n1', [tailOf('n1', 1, 2, 4), tailOf('n2', 1, 3), tailOf('n3', 1, 2, 4)]);
  });
});

describe('commit durability across configurations', () => {
  const withVoters = (tail: LogTail, voters: string[]): LogTail => ({ ...tail, voters, members: voters });

  it('reports a commit that no quorum of the committing configuration holds: a learner counted', () => {
    const check = new CommitDurabilityChecker(clock);
    // n1 leads voters n1, n2, n3; n4 is a learner holding 2/2, n2 and n3 do not.
    const logs = [tailOf('n1', 1, 2), tailOf('n2', 1), tailOf('n3', 1), withVoters(tailOf('n4', 1, 2), ['n1', 'n2', 'n3'])];
    const v = expectViolation('Commit Quorum', 'n1', () => check.observeNewCommit(2, 2, 'n1', logs, ['n1', 'n2', 'n3']));
    expect(v.detail).toContain('only n1 of its voters n1, n2, n3');
  });

  it('counts a candidate’s votes in its own configuration: a candidate whose config has grown can need more votes', () => {
    const check = new CommitDurabilityChecker(clock);
    // 2/2 is on n1, n2, n3 of voters n1..n5 (as n4 and n5 see it); n4 lacks it but only n4 and n5 would vote for it: 2 of 5.
    const five = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const logs = [
      withVoters(tailOf('n1', 1, 2), five),
      withVoters(tailOf('n2', 1, 2), five),
      withVoters(tailOf('n3', 1, 2), five),
      withVoters(tailOf('n4', 1), five),
      withVoters(tailOf('n5', 1), five),
    ];
    check.observeNewCommit(2, 2, 'n1', logs, five);
    // With n4's own (stale) config of n3, n4, n5 the same logs would elect it: reported.
    const stale = [...logs.slice(0, 3), withVoters(tailOf('n4', 1), ['n3', 'n4', 'n5']), withVoters(tailOf('n5', 1), ['n3', 'n4', 'n5'])];
    expectViolation('Leader Completeness', 'n4', () => check.observeNewCommit(2, 2, 'n1', stale, five));
  });
});

describe('State Machine Safety checker', () => {
  it('reports two nodes applying different entries at one index', () => {
    const check = new StateMachineChecker(clock);
    check.observeApply('n1', cmd(1, 1, 'a'));
    const v = expectViolation('State Machine Safety', 'n2', () => check.observeApply('n2', cmd(1, 1, 'b')));
    expect(v.detail).toContain('n1 applied 1/1 command "a"');
  });

  it('reports a node skipping or repeating an index within one life', () => {
    const check = new StateMachineChecker(clock);
    check.observeApply('n1', cmd(1, 1, 'a'));
    expectViolation('State Machine Safety', 'n1', () => check.observeApply('n1', cmd(3, 1, 'c')));
    const again = new StateMachineChecker(clock);
    again.observeApply('n1', cmd(1, 1, 'a'));
    expectViolation('State Machine Safety', 'n1', () => again.observeApply('n1', cmd(1, 1, 'a')));
  });

  it('accepts a restarted node re-applying the same entries from the start', () => {
    const check = new StateMachineChecker(clock);
    check.observeApply('n1', cmd(1, 1, 'a'));
    check.observeApply('n1', cmd(2, 1, 'b'));
    check.startLife('n1', 0);
    check.observeApply('n1', cmd(1, 1, 'a'));
    check.observeApply('n1', cmd(2, 1, 'b'));
  });
});

describe('snapshot checker', () => {
  const config = { voters: ['n1', 'n2', 'n3'] };
  /** A commit checker that saw entries of terms 1, 1, 2 committed by n1. */
  function committed(): CommitChecker {
    const commit = new CommitChecker(clock);
    commit.observeCommit('n1', 1, 3, 2, logOf(1, 1, 2));
    return commit;
  }

  it('reports two nodes holding different states at one applied index, however they got there', () => {
    const check = new SnapshotChecker(clock);
    check.observeState('n1', 3, 0xaaaa);
    const v = expectViolation('State Machine Safety', 'n2', () =>
      check.observeSnapshot('n2', 'installed', { index: 3, term: 2, config }, 0xbbbb, 0, committed()),
    );
    expect(v.detail).toContain('n1 held 0x0000aaaa');
  });

  it('reports a snapshot whose last entry is not the committed one, or that nothing committed covers', () => {
    const check = new SnapshotChecker(clock);
    const v = expectViolation('Snapshot Safety', 'n1', () => check.observeSnapshot('n1', 'taken', { index: 3, term: 1, config }, 1, 3, committed()));
    expect(v.detail).toContain('term 2 is committed at index 3');
    expectViolation('Snapshot Safety', 'n1', () => check.observeSnapshot('n1', 'taken', { index: 4, term: 2, config }, 1, 4, committed()));
  });

  it('reports a snapshot taken at an index the state machine has not applied, and compaction past the snapshot', () => {
    const check = new SnapshotChecker(clock);
    expectViolation('Snapshot Safety', 'n1', () => check.observeSnapshot('n1', 'taken', { index: 3, term: 2, config }, 1, 2, committed()));
    expectViolation('Snapshot Safety', 'n1', () => check.observeCompaction('n1', 4, 3));
  });

  it('accepts equal states at equal indexes and compaction up to the snapshot', () => {
    const check = new SnapshotChecker(clock);
    check.observeState('n1', 3, 7);
    check.observeSnapshot('n2', 'taken', { index: 3, term: 2, config }, 7, 3, committed());
    check.observeSnapshot('n3', 'installed', { index: 3, term: 2, config }, 7, 0, committed());
    check.observeCompaction('n2', 3, 3);
  });

  it('reads a compacted log through the committed log, and answers null where nothing was committed', () => {
    const view = throughCompaction(logOf(0, 0, 0, 0, 3), () => 5, committed());
    expect([1, 2, 3, 4, 5].map((i) => view.termAt(i))).toEqual([1, 1, 2, 0, 3]);
    const beyond = throughCompaction(logOf(), () => 6, committed());
    expect(beyond.termAt(4)).toBeNull();
  });
});

describe('durable state checker', () => {
  const hs = (term: number, votedFor: string | null, commit: number): HardState => ({ term, votedFor, commit });

  it('reports a persisted term that goes back', () => {
    expectViolation('Durable State', 'n1', () => new DurableStateChecker(clock).observeSave('n1', hs(3, null, 0), hs(2, null, 0)));
  });

  it('reports a persisted vote that changes within a term', () => {
    const check = new DurableStateChecker(clock);
    expectViolation('Durable State', 'n1', () => check.observeSave('n1', hs(3, 'n2', 0), hs(3, 'n3', 0)));
    expectViolation('Durable State', 'n1', () => check.observeSave('n1', hs(3, 'n2', 0), hs(3, null, 0)));
  });

  it('reports a persisted commit index that goes back', () => {
    expectViolation('Durable State', 'n1', () => new DurableStateChecker(clock).observeSave('n1', hs(3, null, 5), hs(3, null, 4)));
  });

  it('accepts a vote cast in a term, and a new term clearing it', () => {
    const check = new DurableStateChecker(clock);
    check.observeSave('n1', hs(3, null, 0), hs(3, 'n2', 0));
    check.observeSave('n1', hs(3, 'n2', 0), hs(4, null, 1));
  });
});

describe('read checker', () => {
  it('reports a stale read: released below what was committed when it was asked', () => {
    const check = new ReadChecker(clock);
    check.asked('n1', 1, 'r1', 7);
    const v = expectViolation('Read Index Safety', 'n1', () => check.released('n1', 1, 'r1', 5, 9));
    expect(v.detail).toContain('a stale read');
  });

  it('reports a read served before the node applied up to its index', () => {
    const check = new ReadChecker(clock);
    check.asked('n1', 1, 'r1', 5);
    expectViolation('Read Index Safety', 'n1', () => check.released('n1', 1, 'r1', 6, 5));
  });

  it('reports a read released twice, never asked, or released by a later life', () => {
    const check = new ReadChecker(clock);
    check.asked('n1', 1, 'r1', 5);
    check.released('n1', 1, 'r1', 5, 5);
    expectViolation('Read Index Safety', 'n1', () => check.released('n1', 1, 'r1', 5, 5));
    check.asked('n2', 1, 'r2', 5);
    expectViolation('Read Index Safety', 'n2', () => check.released('n2', 2, 'r2', 5, 5));
  });

  it('reports the release of a read that was never asked', () => {
    const check = new ReadChecker(clock);
    expectViolation('Read Index Safety', 'n1', () => check.released('n1', 1, 'r9', 1, 1));
  });
});

describe('liveness checker', () => {
  it('reports a cluster that elects no leader within the bound after the heal', () => {
    const c = { now: 1000 };
    const check = new LivenessChecker(c, 1000, 500, () => 2);
    c.now = 1500;
    check.check(() => 'state');
    c.now = 1501;
    const v = violationOf(() => check.check(() => 'n1: follower'));
    expect(v.property).toBe('Liveness');
    expect(v.detail).toContain('no leader was elected within 500');
    expect(v.detail).toContain('n1: follower');
  });

  it('reports a leader whose proposals never reach a majority', () => {
    const c = { now: 1000 };
    const check = new LivenessChecker(c, 1000, 500, () => 2);
    check.observeLeader();
    check.proposalAccepted('p1');
    check.observeApply('n1', 'p1');
    c.now = 2000;
    expect(violationOf(() => check.check(() => '')).detail).toContain('no proposal made after t=1000 was applied by a majority');
  });

  it('is satisfied by a proposal made after the heal and applied by a majority', () => {
    const c = { now: 900 };
    const check = new LivenessChecker(c, 1000, 500, () => 2);
    check.proposalAccepted('before-heal');
    check.observeApply('n1', 'before-heal');
    check.observeApply('n2', 'before-heal');
    expect(check.satisfied).toBe(false);
    c.now = 1100;
    check.proposalAccepted('p1');
    check.observeApply('n1', 'p1');
    check.observeApply('n1', 'p1');
    expect(check.satisfied).toBe(false);
    check.observeApply('n3', 'p1');
    expect(check.satisfied).toBe(true);
    c.now = 5000;
    check.check(() => '');
  });
});
