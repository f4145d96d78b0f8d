/**
 * The log checkers on hand-made final states: with compaction each node holds
 * only a window of the committed log, and the checks must still catch nodes
 * that disagree where their windows overlap, a window with a hole, logs that
 * did not converge, and appends that were lost or duplicated, while accepting
 * windows that merely start at different indexes.
 */
import { describe, expect, it } from 'vitest';
import { checkAppends, checkDigests, checkLogAgreement, type FinalEntry, type NodeFinal } from './checkers/log-checks.js';
import { compactionArgs, countSnapshotEvents, describeCompaction } from './compaction.js';
import type { ClientEvent, OperationType } from './history.js';

const APPEND = 'LOG_ENTRY_KIND_APPEND';

/** The committed log every correct node holds a window of: index i holds append "a<i>". */
const entry = (index: number, record = `a${index}`, term = 1): FinalEntry => ({ index, term, kind: APPEND, record, key: '', value: '' });

const range = (first: number, last: number): number[] => Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);

/** A node that holds first..commit of the common log, unless `entries` says otherwise. */
function node(name: string, first: number, commit: number, entries: readonly FinalEntry[] = range(first, commit).map((i) => entry(i))): NodeFinal {
  return {
    node: name,
    commitIndex: commit,
    appliedIndex: commit,
    digest: `digest-at-${commit}`,
    firstIndex: first,
    snapshotIndex: first > 1 ? first - 1 : 0,
    entries,
  };
}

/** n1 never compacted, n2 compacted below 6, n3 installed a snapshot at 8. */
const staggered = (): NodeFinal[] => [node('n1', 1, 10), node('n2', 6, 10), node('n3', 9, 10)];

describe('log agreement over compacted windows', () => {
  it('accepts windows that start at different indexes and agree wherever two or more overlap', () => {
    const verdict = checkLogAgreement(staggered());
    expect(verdict.problems).toEqual([]);
    expect(verdict.valid).toBe(true);
    expect(verdict.summary).toContain('windows n1 1..10, n2 6..10, n3 9..10');
    // n1–n2 share 6..10, n1–n3 and n2–n3 share 9..10.
    expect(verdict.summary).toContain('(9 pairs of entries compared)');
    expect(verdict.summary).not.toContain('compacted on every node');
  });

  it('says which indexes no node holds any more, and that only the digests cover them', () => {
    const verdict = checkLogAgreement([node('n1', 5, 10), node('n2', 6, 10), node('n3', 11, 10, [])]);
    expect(verdict.valid).toBe(true);
    expect(verdict.summary).toContain('1..4 compacted on every node, covered by the digests only');
    expect(verdict.summary).toContain('n3 none (first index 11)');
  });

  it('fails when two nodes hold different entries at an index inside their overlap', () => {
    const n2 = node(
      'n2',
      6,
      10,
      range(6, 10).map((i) => (i === 8 ? entry(8, 'forged', 2) : entry(i))),
    );
    const verdict = checkLogAgreement([node('n1', 1, 10), n2, node('n3', 9, 10)]);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual([`n1 and n2 differ at index 8: term 1 ${APPEND} a8 vs term 2 ${APPEND} forged`]);
    expect(verdict.summary).toContain('windows n1 1..10, n2 6..10, n3 9..10');
  });

  it('fails when a window skips an index, even if every entry it holds agrees with the others', () => {
    const holed = node(
      'n2',
      6,
      10,
      [6, 7, 9, 10].map((i) => entry(i)),
    );
    const verdict = checkLogAgreement([node('n1', 1, 10), holed, node('n3', 9, 10)]);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toContain('n2: its window from 6 skips: entry 3 of it has index 9, expected 8');
    expect(verdict.problems).toContain('n2: commit index 10 and first index 6, so 5 committed entries held, but 4 read');
  });

  it('fails when a window ends before the commit index the node reported', () => {
    const verdict = checkLogAgreement([
      node('n1', 1, 10),
      node(
        'n2',
        6,
        10,
        range(6, 9).map((i) => entry(i)),
      ),
    ]);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual(['n2: commit index 10 and first index 6, so 5 committed entries held, but 4 read']);
  });

  it('fails when the nodes did not converge on one commit index after the heal', () => {
    const verdict = checkLogAgreement([node('n1', 1, 10), node('n2', 6, 10), node('n3', 6, 8)]);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual(['logs did not converge after healing: committed up to n1 10, n2 10, n3 8']);
  });
});

describe('state digests', () => {
  it('accepts equal digests at an equal applied index, and rejects different ones', () => {
    expect(checkDigests(staggered()).valid).toBe(true);
    const forged = { ...node('n2', 6, 10), digest: 'other' };
    const verdict = checkDigests([node('n1', 1, 10), forged]);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems[0]).toMatch(/^at applied index 10 the digests differ: n1 .*, n2 other$/);
  });
});

/** One client per append: [value, outcome, acknowledged index]. The logs above hold value "a<i>" at index i. */
function appends(ops: readonly (readonly [string, OperationType, number?])[]): ClientEvent[] {
  return ops.flatMap(([value, type, index], process) => [
    { process, type: 'invoke' as const, f: 'append' as const, key: null, value, time: process * 10, node: 'n1' },
    { process, type, f: 'append' as const, key: null, value, time: process * 10 + 5, node: 'n1', ...(index === undefined ? {} : { index }) },
  ]);
}

const valueAt = (i: number) => `a${i}`;

describe('appends against the windows held', () => {
  it('checks every acknowledged append when some node still holds the whole log', () => {
    const history = appends(range(1, 10).map((i) => [valueAt(i), 'ok', i] as const));
    const verdict = checkAppends(history, staggered());
    expect(verdict.problems).toEqual([]);
    expect(verdict.summary).toContain('10 of 10 acknowledged present once at their index');
    expect(verdict.summary).toContain('checked against all 10 committed entries');
  });

  it('counts acknowledged appends compacted on every node as not checkable, never as present', () => {
    const history = appends(range(1, 10).map((i) => [valueAt(i), 'ok', i] as const));
    const verdict = checkAppends(history, [node('n1', 5, 10), node('n2', 7, 10)]);
    expect(verdict.valid).toBe(true);
    expect(verdict.summary).toContain('6 of 10 acknowledged present once at their index');
    expect(verdict.summary).toContain(
      'the 6 of 10 committed entries held by some node at the end; 4 acknowledged compacted on every node before they were read, not checkable by log',
    );
  });

  it('checks compacted appends against the log read during the run, leaving only what was never read uncheckable', () => {
    const history = appends(range(1, 10).map((i) => [valueAt(i), 'ok', i] as const));
    // The tailer read 1..2, missed 3..4 (compacted everywhere before it got there), and read 5..8.
    const observed = { entries: [1, 2, 5, 6, 7, 8].map((i) => entry(i)), missed: 2, anomalies: [] };
    const verdict = checkAppends(history, [node('n1', 7, 10), node('n2', 8, 10)], observed);
    expect(verdict.problems).toEqual([]);
    expect(verdict.summary).toContain('8 of 10 acknowledged present once at their index');
    expect(verdict.summary).toContain(
      'the 8 of 10 committed entries held by some node at the end (4) or read during the run (6 read, 2 compacted before they could be); 2 acknowledged compacted on every node before they were read',
    );
  });

  it('fails when what was read during the run differs from what the nodes hold at the end, and on a lost append only the tailer saw the index of', () => {
    const history = appends([
      [valueAt(2), 'ok', 2],
      ['lost-at-3', 'ok', 3],
      [valueAt(8), 'ok', 8],
      ...[1, 3, 7, 9, 10].map((i) => [valueAt(i), 'info'] as const),
    ]);
    const observed = {
      entries: [entry(1), entry(2), entry(3), entry(8, 'rewritten', 3)],
      missed: 0,
      anomalies: ['n2 answered ReadLog from 4 with entry 6 where 4 was due'],
    };
    const verdict = checkAppends(history, [node('n1', 7, 10)], observed);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual([
      'n2 answered ReadLog from 4 with entry 6 where 4 was due',
      `index 8 was read during the run as term 3 ${APPEND} rewritten, but is term 1 ${APPEND} a8 at the end`,
      'acknowledged append lost-at-3 (index 3) is lost: not in the log',
    ]);
  });

  it('fails on an acknowledged append missing from a held index, and on one acknowledged beyond every commit index', () => {
    const history = appends([
      [valueAt(7), 'ok', 7],
      ['lost-at-8', 'ok', 8],
      ['beyond', 'ok', 11],
    ]);
    const log = [node('n1', 5, 10)];
    const verdict = checkAppends(history, log);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toContain('acknowledged append lost-at-8 (index 8) is lost: not in the log');
    expect(verdict.problems).toContain('acknowledged append beyond (index 11) is lost: not in the log');
  });

  it('fails on a failed append at an index only one node still holds, and on a value the held log has twice', () => {
    const log = (i: number) => (i === 3 || i === 9 ? entry(i, 'twice') : entry(i));
    const n1 = node('n1', 1, 10, range(1, 10).map(log));
    const n2 = node('n2', 6, 10, range(6, 10).map(log));
    const history = appends([[valueAt(2), 'fail'], ['twice', 'info'], ...[1, 4, 5, 6, 7, 8, 10].map((i) => [valueAt(i), 'info'] as const)]);
    const verdict = checkAppends(history, [n1, n2]);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual(['failed append a2 is in the log at 2', 'append twice is in the log 2 times, at 3, 9']);
  });
});

describe('appends with retries (exactly-once writes): no record in the log twice', () => {
  it('fails when a retried append is in the log twice, whether its call was acknowledged or ended unknown', () => {
    // A write whose answer was lost is sent again under the same producer stamp; a cluster that applied both copies
    // would leave the record at two indexes. Here a3 (acknowledged at 3) is at 8 too, and a5 (unknown outcome) at 9 too.
    const copies = (i: number) => (i === 8 ? entry(8, valueAt(3)) : i === 9 ? entry(9, valueAt(5)) : entry(i));
    const history = appends([...[1, 2, 3, 4, 6, 7, 10].map((i) => [valueAt(i), 'ok', i] as const), [valueAt(5), 'info']]);
    const verdict = checkAppends(history, [node('n1', 1, 10, range(1, 10).map(copies)), node('n2', 6, 10, range(6, 10).map(copies))]);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual(['acknowledged append a3 is in the log 2 times, at 3, 8', 'append a5 is in the log 2 times, at 5, 9']);
  });
});

describe('compaction settings and snapshot events', () => {
  it('passes only the flags that were asked for, so the node defaults apply otherwise', () => {
    expect(compactionArgs({ snapshotEntries: null, retainEntries: null })).toEqual([]);
    expect(compactionArgs({ snapshotEntries: 100, retainEntries: 20 })).toEqual(['--snapshot-entries', '100', '--retain-entries', '20']);
    expect(compactionArgs({ snapshotEntries: 0, retainEntries: null })).toEqual(['--snapshot-entries', '0']);
    expect(describeCompaction({ snapshotEntries: 100, retainEntries: 20 })).toBe('snapshot every 100 entries, retain 20');
    expect(describeCompaction({ snapshotEntries: null, retainEntries: null })).toBe('node defaults');
    expect(describeCompaction({ snapshotEntries: 0, retainEntries: 5 })).toBe('never snapshot or compact');
  });

  it('counts snapshot events in a node log, skipping other events and lines that are not JSON', () => {
    const log = [
      '{"level":30,"event":"snapshot","index":100,"msg":"snapshot at 100"}',
      '{"level":30,"event":"snapshot-written","index":200}',
      '{"level":30,"event":"snapshot","index":200}',
      '{"level":30,"event":"snapshot-installed","index":300}',
      '{"level":30,"event":"snapshot-sent","peer":"n2","index":300}',
      '{"level":30,"event":"snapshot-restored","index":300}',
      'node:internal/process: a crash trace mentioning "event":"snapshot" in passing',
      '{"level":30,"event":"role-change"}',
      '',
    ].join('\n');
    expect(countSnapshotEvents(log)).toEqual({ taken: 2, sent: 1, installed: 1, restored: 1 });
  });
});
