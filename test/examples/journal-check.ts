/**
 * The exactly-once check of the key-files example: its journal must list
 * every index that changed a key exactly once, in increasing order, and
 * nothing else. An index listed twice is an entry applied twice.
 */

/** Every index listed more than once, ascending. */
export function duplicatedIndexes(journaled: readonly number[]): number[] {
  const seen = new Map<number, number>();
  for (const index of journaled) seen.set(index, (seen.get(index) ?? 0) + 1);
  return [...seen]
    .filter(([, count]) => count > 1)
    .map(([index]) => index)
    .sort((a, b) => a - b);
}

/** What is wrong with the journal (its indexes in file order) against the indexes that changed a key; empty when nothing is. */
export function journalProblems(journaled: readonly number[], changing: readonly number[]): string[] {
  const problems: string[] = [];
  const lines = new Map<number, number[]>();
  for (const [i, index] of journaled.entries()) lines.set(index, [...(lines.get(index) ?? []), i + 1]);
  for (const index of duplicatedIndexes(journaled)) {
    const at = lines.get(index) as number[];
    problems.push(`duplicate: index ${index} journaled ${at.length} times (lines ${at.join(', ')}): applied more than once`);
  }
  for (let i = 1; i < journaled.length; i++) {
    const [before, index] = [journaled[i - 1] as number, journaled[i] as number];
    if (index <= before) problems.push(`order: index ${index} on line ${i + 1} follows ${before} on line ${i}`);
  }
  const expected = new Set(changing);
  for (const index of changing) if (!lines.has(index)) problems.push(`missing: index ${index} changed a key and is not in the journal`);
  for (const index of lines.keys()) if (!expected.has(index)) problems.push(`unexpected: index ${index} is in the journal and changed no key`);
  return problems;
}
