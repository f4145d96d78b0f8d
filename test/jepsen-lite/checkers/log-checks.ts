import type { ClientEvent } from '../history.js';

/** One committed entry as ReadLog returned it, reduced to what the checks compare. */
export interface FinalEntry {
  readonly index: number;
  readonly term: number;
  readonly kind: string;
  /** The record of an Append, as text; "" for other kinds. */
  readonly record: string;
  /** The key of a Put, Delete or CompareAndSwap, as text; "" otherwise. */
  readonly key: string;
  /** The value a Put wrote, or a CompareAndSwap's new value, as text; "" otherwise. */
  readonly value: string;
}

/**
 * What one node showed at the end: the committed entries it still holds (its
 * window, firstIndex..commitIndex; entries before firstIndex were compacted
 * into a snapshot) and its state machine.
 */
export interface NodeFinal {
  readonly node: string;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly digest: string;
  /** The first index the node still held when its log was read (1 when nothing was compacted). */
  readonly firstIndex: number;
  /** The index of its latest snapshot, 0 when it has none. */
  readonly snapshotIndex: number;
  /** Its committed entries from firstIndex on, as read. */
  readonly entries: readonly FinalEntry[];
}

export interface CheckVerdict {
  readonly name: string;
  readonly valid: boolean;
  /** One line for the summary. */
  readonly summary: string;
  /** Every problem found, one per line. */
  readonly problems: readonly string[];
}

const MAX_PROBLEMS_LISTED = 50;

/** A verdict from the problems found: valid when there are none; the summary names the first, and at most 50 are listed. */
export function verdict(name: string, okSummary: string, problems: string[], context = ''): CheckVerdict {
  const listed =
    problems.length > MAX_PROBLEMS_LISTED
      ? [...problems.slice(0, MAX_PROBLEMS_LISTED), `… and ${problems.length - MAX_PROBLEMS_LISTED} more`]
      : problems;
  const tail = context === '' ? '' : `; ${context}`;
  return {
    name,
    valid: problems.length === 0,
    summary: problems.length === 0 ? `${okSummary}${tail}` : `${problems.length} problem(s); first: ${problems[0]}${tail}`,
    problems: listed,
  };
}

export const sameEntry = (a: FinalEntry, b: FinalEntry) =>
  a.index === b.index && a.term === b.term && a.kind === b.kind && a.record === b.record && a.key === b.key && a.value === b.value;

export const describeEntry = (e: FinalEntry) => `term ${e.term} ${e.kind} ${e.record || e.key}${e.value === '' ? '' : `=${e.value}`}`;

/** "first..last" of the entries a node holds, or "none" when it holds no committed entry. */
export function windowOf(final: NodeFinal): string {
  const first = final.entries[0];
  const last = final.entries[final.entries.length - 1];
  return first === undefined || last === undefined ? `none (first index ${final.firstIndex})` : `${first.index}..${last.index}`;
}

const windows = (finals: readonly NodeFinal[]) => `windows ${finals.map((f) => `${f.node} ${windowOf(f)}`).join(', ')}`;

/**
 * Committed logs agree, as far as the nodes still hold them. With compaction
 * a node keeps only a window firstIndex..commitIndex, so:
 * - each window is gap-free: firstIndex, firstIndex+1, …, up to the commit index;
 * - on every index that two or more nodes still hold, their entries are
 *   identical (State Machine Safety as clients can see it);
 * - after healing every node has committed the same last index.
 * Indexes compacted on every node are compared by the state digests only.
 */
export function checkLogAgreement(finals: readonly NodeFinal[]): CheckVerdict {
  const problems: string[] = [];
  for (const final of finals) {
    for (let i = 0; i < final.entries.length; i++) {
      const entry = final.entries[i] as FinalEntry;
      if (entry.index !== final.firstIndex + i) {
        problems.push(
          `${final.node}: its window from ${final.firstIndex} skips: entry ${i + 1} of it has index ${entry.index}, expected ${final.firstIndex + i}`,
        );
        break;
      }
    }
    const expected = Math.max(0, final.commitIndex - final.firstIndex + 1);
    if (final.entries.length !== expected) {
      problems.push(
        `${final.node}: commit index ${final.commitIndex} and first index ${final.firstIndex}, so ${expected} committed entries held, but ${final.entries.length} read`,
      );
    }
  }
  let compared = 0;
  const byIndex = finals.map((f) => new Map(f.entries.map((e) => [e.index, e])));
  for (let a = 0; a < finals.length; a++) {
    for (let b = a + 1; b < finals.length; b++) {
      const x = finals[a] as NodeFinal;
      const yEntries = byIndex[b] as Map<number, FinalEntry>;
      for (const ex of x.entries) {
        const ey = yEntries.get(ex.index);
        if (ey === undefined) continue;
        compared++;
        if (!sameEntry(ex, ey)) {
          problems.push(`${x.node} and ${(finals[b] as NodeFinal).node} differ at index ${ex.index}: ${describeEntry(ex)} vs ${describeEntry(ey)}`);
          break;
        }
      }
    }
  }
  const ends = new Set(finals.map((f) => f.commitIndex));
  if (ends.size > 1) {
    problems.push(`logs did not converge after healing: committed up to ${finals.map((f) => `${f.node} ${f.commitIndex}`).join(', ')}`);
  }
  const held = finals.filter((f) => f.entries.length > 0);
  const lowest = Math.min(...held.map((f) => f.firstIndex));
  const commit = finals[0]?.commitIndex ?? 0;
  const compactedEverywhere = held.length === 0 ? commit : lowest - 1;
  const ok =
    `${finals.length} nodes agree on every index two or more hold (${compared} pairs of entries compared), all committed up to ${commit}` +
    (compactedEverywhere > 0 ? `; 1..${compactedEverywhere} compacted on every node, covered by the digests only` : '');
  return verdict('log agreement', ok, problems, windows(finals));
}

/** Replicas at the same applied index have the same state digest. */
export function checkDigests(finals: readonly NodeFinal[]): CheckVerdict {
  const problems: string[] = [];
  const byIndex = new Map<number, NodeFinal[]>();
  for (const final of finals) byIndex.set(final.appliedIndex, [...(byIndex.get(final.appliedIndex) ?? []), final]);
  for (const [index, group] of byIndex) {
    const digests = new Set(group.map((f) => f.digest));
    if (digests.size > 1) {
      problems.push(`at applied index ${index} the digests differ: ${group.map((f) => `${f.node} ${f.digest.slice(0, 12)}`).join(', ')}`);
    }
  }
  const indexes = [...byIndex.keys()].join(', ');
  return verdict('state digests', `equal at applied index ${indexes}`, problems);
}

/** The committed log as read while the run went on (see LogTailer): each index read once, from some node. */
export interface ObservedLog {
  /** In index order; indexes missing were compacted on every node asked before they could be read. */
  readonly entries: readonly FinalEntry[];
  /** How many indexes were skipped so. */
  readonly missed: number;
  /** Answers that broke ReadLog's contract (a page not starting where asked). */
  readonly anomalies: readonly string[];
}

/** The committed log as the checks know it: what the nodes hold at the end, and what was read during the run. */
export interface CommittedLog {
  /** By index; an index up to lastCommitted that is missing was compacted on every node before anyone read it. */
  readonly entries: ReadonlyMap<number, FinalEntry>;
  /** How many of them some node still held at the end. */
  readonly heldAtEnd: number;
  /** The highest commit index any node reported at the end. */
  readonly lastCommitted: number;
  /** The tailer's anomalies, and indexes read during the run as one entry but held at the end as another. */
  readonly problems: readonly string[];
}

/**
 * Puts together the committed log from the nodes' windows at the end (equal
 * where they overlap, or log agreement fails; the first node's copy is
 * taken) and what was read during the run, which must agree with them.
 */
export function committedLog(finals: readonly NodeFinal[], observed?: ObservedLog): CommittedLog {
  const problems: string[] = [...(observed?.anomalies ?? [])];
  const entries = new Map<number, FinalEntry>();
  for (const final of finals) for (const entry of final.entries) if (!entries.has(entry.index)) entries.set(entry.index, entry);
  const heldAtEnd = entries.size;
  for (const entry of observed?.entries ?? []) {
    const held = entries.get(entry.index);
    if (held === undefined) entries.set(entry.index, entry);
    else if (!sameEntry(held, entry))
      problems.push(`index ${entry.index} was read during the run as ${describeEntry(entry)}, but is ${describeEntry(held)} at the end`);
  }
  return { entries, heldAtEnd, lastCommitted: Math.max(0, ...finals.map((f) => f.commitIndex)), problems };
}

/**
 * The append workload's promises, against the committed log: every
 * acknowledged append is there exactly once at the index it was acknowledged
 * with; no failed append is there; nothing is there twice or that no client
 * appended.
 *
 * With compaction no node holds the whole log at the end, so the log checked
 * is what the nodes still hold (their windows; equal where they overlap, or
 * log agreement fails) together with what was read during the run, which
 * must agree with the windows. An acknowledged append whose index is in
 * neither was compacted everywhere before anyone read it: it is counted as
 * "not checkable by log", never as present. The equal digests do show that
 * the nodes applied the same records there (append records are hashed into
 * the digest chain), but not that those are the records the clients were
 * told; a failed append or a duplicate there goes unseen, and the summary
 * says so. An acknowledged index beyond every node's commit index is a lost
 * append.
 */
export function checkAppends(history: readonly ClientEvent[], finals: readonly NodeFinal[], observed?: ObservedLog): CheckVerdict {
  const { entries: log, heldAtEnd, lastCommitted, problems: logProblems } = committedLog(finals, observed);
  const problems: string[] = [...logProblems];
  const acknowledged = new Map<string, number | undefined>();
  const failed = new Set<string>();
  const invoked = new Set<string>();
  let indeterminate = 0;
  let duplicates = 0;
  for (const event of history) {
    if (event.f !== 'append') continue;
    const value = String(event.value);
    if (event.type === 'invoke') invoked.add(value);
    else if (event.type === 'ok') {
      acknowledged.set(value, event.index);
      if (event.duplicate === true) duplicates++;
    } else if (event.type === 'fail') failed.add(value);
    else indeterminate++;
  }
  const positions = new Map<string, number[]>();
  for (const entry of [...log.values()].sort((a, b) => a.index - b.index)) {
    if (entry.kind !== 'LOG_ENTRY_KIND_APPEND') continue;
    positions.set(entry.record, [...(positions.get(entry.record) ?? []), entry.index]);
  }
  let compacted = 0;
  let present = 0;
  for (const [value, index] of acknowledged) {
    const found = positions.get(value) ?? [];
    if (found.length > 1) problems.push(`acknowledged append ${value} is in the log ${found.length} times, at ${found.join(', ')}`);
    else if (found.length === 1 && found[0] !== index)
      problems.push(`acknowledged append ${value} was acknowledged at index ${index} but is at ${found[0]}`);
    else if (found.length === 1) present++;
    else if (index !== undefined && index <= lastCommitted && !log.has(index)) compacted++;
    else problems.push(`acknowledged append ${value} (index ${index}) is lost: not in the log`);
  }
  for (const value of failed) {
    const found = positions.get(value);
    if (found !== undefined) problems.push(`failed append ${value} is in the log at ${found.join(', ')}`);
  }
  let indeterminatePresent = 0;
  for (const [value, found] of positions) {
    if (!invoked.has(value)) problems.push(`the log holds ${JSON.stringify(value)} at ${found.join(', ')}, which no client appended`);
    else if (!acknowledged.has(value) && found.length > 1)
      problems.push(`append ${value} is in the log ${found.length} times, at ${found.join(', ')}`);
    else if (!acknowledged.has(value) && !failed.has(value)) indeterminatePresent++;
  }
  const known = [...log.keys()].filter((i) => i <= lastCommitted).length;
  const sources =
    observed === undefined
      ? 'held by some node at the end'
      : `held by some node at the end (${heldAtEnd}) or read during the run (${observed.entries.length} read, ${observed.missed} compacted before they could be)`;
  const scope =
    known === lastCommitted
      ? `checked against all ${lastCommitted} committed entries`
      : `checked against the ${known} of ${lastCommitted} committed entries ${sources}; ` +
        `${compacted} acknowledged compacted on every node before they were read, not checkable by log (nor failed appends or duplicates there)`;
  return verdict(
    'appends',
    `${present} of ${acknowledged.size} acknowledged present once at their index` +
      `${duplicates > 0 ? ` (${duplicates} acknowledged to a retry, as duplicates of an earlier attempt the cluster had applied)` : ''}; ` +
      `${failed.size} failed, none present; ` +
      `${indeterminatePresent} of ${indeterminate} indeterminate present; ${scope}`,
    problems,
  );
}
