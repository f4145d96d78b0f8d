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
}

/** What one node showed at the end: its committed log and its state machine. */
export interface NodeFinal {
  readonly node: string;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly digest: string;
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

function verdict(name: string, okSummary: string, problems: string[]): CheckVerdict {
  const listed = problems.length > MAX_PROBLEMS_LISTED ? [...problems.slice(0, MAX_PROBLEMS_LISTED), `… and ${problems.length - MAX_PROBLEMS_LISTED} more`] : problems;
  return {
    name,
    valid: problems.length === 0,
    summary: problems.length === 0 ? okSummary : `${problems.length} problem(s); first: ${problems[0]}`,
    problems: listed,
  };
}

const sameEntry = (a: FinalEntry, b: FinalEntry) =>
  a.index === b.index && a.term === b.term && a.kind === b.kind && a.record === b.record && a.key === b.key;

/**
 * Committed logs agree: of any two nodes, one log is a prefix of the other
 * (State Machine Safety as clients can see it), and after healing every log
 * has the same length. Each log must also be gap-free from index 1.
 */
export function checkLogAgreement(finals: readonly NodeFinal[]): CheckVerdict {
  const problems: string[] = [];
  for (const final of finals) {
    final.entries.forEach((entry, i) => {
      if (entry.index !== i + 1) problems.push(`${final.node}: entry ${i + 1} of its log has index ${entry.index}`);
    });
    if (final.entries.length !== final.commitIndex) {
      problems.push(`${final.node}: commit index ${final.commitIndex} but ${final.entries.length} committed entries read`);
    }
  }
  for (let a = 0; a < finals.length; a++) {
    for (let b = a + 1; b < finals.length; b++) {
      const x = finals[a] as NodeFinal;
      const y = finals[b] as NodeFinal;
      const common = Math.min(x.entries.length, y.entries.length);
      for (let i = 0; i < common; i++) {
        const ex = x.entries[i] as FinalEntry;
        const ey = y.entries[i] as FinalEntry;
        if (!sameEntry(ex, ey)) {
          problems.push(
            `${x.node} and ${y.node} differ at index ${ex.index}: term ${ex.term} ${ex.kind} ${ex.record || ex.key} vs term ${ey.term} ${ey.kind} ${ey.record || ey.key}`,
          );
          break;
        }
      }
    }
  }
  const lengths = new Set(finals.map((f) => f.entries.length));
  if (lengths.size > 1) {
    problems.push(`logs did not converge after healing: ${finals.map((f) => `${f.node} ${f.entries.length}`).join(', ')} entries`);
  }
  const length = finals[0]?.entries.length ?? 0;
  return verdict('log agreement', `${finals.length} nodes hold the same ${length} committed entries`, problems);
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

/**
 * The append workload's promises, against the final committed log: every
 * acknowledged append is there exactly once at the index it was acknowledged
 * with; no failed append is there; nothing is there twice or that no client
 * appended.
 */
export function checkAppends(history: readonly ClientEvent[], log: readonly FinalEntry[]): CheckVerdict {
  const problems: string[] = [];
  const acknowledged = new Map<string, number | undefined>();
  const failed = new Set<string>();
  const invoked = new Set<string>();
  let indeterminate = 0;
  for (const event of history) {
    if (event.f !== 'append') continue;
    const value = String(event.value);
    if (event.type === 'invoke') invoked.add(value);
    else if (event.type === 'ok') acknowledged.set(value, event.index);
    else if (event.type === 'fail') failed.add(value);
    else indeterminate++;
  }
  const positions = new Map<string, number[]>();
  for (const entry of log) {
    if (entry.kind !== 'LOG_ENTRY_KIND_APPEND') continue;
    positions.set(entry.record, [...(positions.get(entry.record) ?? []), entry.index]);
  }
  for (const [value, index] of acknowledged) {
    const found = positions.get(value) ?? [];
    if (found.length === 0) problems.push(`acknowledged append ${value} (index ${index}) is lost: not in the log`);
    else if (found.length > 1) problems.push(`acknowledged append ${value} is in the log ${found.length} times, at ${found.join(', ')}`);
    else if (found[0] !== index) problems.push(`acknowledged append ${value} was acknowledged at index ${index} but is at ${found[0]}`);
  }
  for (const value of failed) {
    const found = positions.get(value);
    if (found !== undefined) problems.push(`failed append ${value} is in the log at ${found.join(', ')}`);
  }
  let indeterminatePresent = 0;
  for (const [value, found] of positions) {
    if (!invoked.has(value)) problems.push(`the log holds ${JSON.stringify(value)} at ${found.join(', ')}, which no client appended`);
    else if (!acknowledged.has(value) && found.length > 1) problems.push(`append ${value} is in the log ${found.length} times, at ${found.join(', ')}`);
    else if (!acknowledged.has(value) && !failed.has(value)) indeterminatePresent++;
  }
  return verdict(
    'appends',
    `${acknowledged.size} acknowledged all present once at their index; ${failed.size} failed, none present; ` +
      `${indeterminatePresent} of ${indeterminate} indeterminate present`,
    problems,
  );
}
