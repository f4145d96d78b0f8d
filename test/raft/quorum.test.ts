/**
 * The majority rule every quorum question goes through. committedIndex is
 * called after every acknowledgement, so it sorts into a buffer it reuses;
 * these specifications hold it to the plain definition (the quorum-th
 * largest match) for any config and any matches, asked again and again.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MajorityConfig } from '../../src/raft/quorum.js';

/** The definition: sort the matches, largest first, and take the quorum-th. */
function byDefinition(matches: readonly number[]): number {
  if (matches.length === 0) return 0;
  const sorted = [...matches].sort((a, b) => b - a);
  return sorted[Math.floor(matches.length / 2)] as number;
}

describe('MajorityConfig.committedIndex', () => {
  it('is the highest index a majority has matched, for any voters and matches, however often it is asked', () => {
    const rounds = fc.array(fc.array(fc.nat({ max: 50 }), { minLength: 0, maxLength: 9 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9 }), rounds, (size, askings) => {
        const voters = Array.from({ length: size }, (_, i) => `n${i + 1}`);
        const config = new MajorityConfig(voters);
        // The same config asked several times in a row: what one call leaves in the buffer must not leak into the next.
        for (const asked of askings) {
          const matches = voters.map((_, i) => asked[i] ?? 0);
          const match = new Map(voters.map((voter, i) => [voter, matches[i] as number]));
          expect(config.committedIndex((voter) => match.get(voter) ?? 0)).toBe(byDefinition(matches));
        }
      }),
    );
  });

  it('commits what two of three hold, not what one holds', () => {
    const config = new MajorityConfig(['n1', 'n2', 'n3']);
    const match: Record<string, number> = { n1: 9, n2: 7, n3: 3 };
    expect(config.committedIndex((voter) => match[voter] ?? 0)).toBe(7);
    match.n2 = 2;
    expect(config.committedIndex((voter) => match[voter] ?? 0)).toBe(3);
  });

  it('commits nothing with no voters', () => {
    expect(new MajorityConfig([]).committedIndex(() => 5)).toBe(0);
  });
});
