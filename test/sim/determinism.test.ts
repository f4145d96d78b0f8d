/**
 * A seed is a complete description of a run: replaying it gives the same trace
 * byte for byte, whatever ran before it in the same process. That is what
 * makes a failing seed from a batch debuggable with --trace.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runSeeds } from './batch.js';
import { realCore } from './default-core.js';
import { runSeedsInProcesses } from './seed-processes.js';
import { runSimulation } from './simulation.js';

function traceOf(seed: number): { hash: string; lines: number; text: string } {
  const lines: string[] = [];
  runSimulation({ seed, coreFactory: realCore, trace: (line) => lines.push(line) });
  const text = lines.join('\n');
  return { hash: createHash('sha256').update(text).digest('hex'), lines: lines.length, text };
}

describe('deterministic replay', () => {
  it('gives the same trace, byte for byte, when a seed is run twice (3 and 5 nodes)', () => {
    for (const seed of [20, 21]) {
      const first = traceOf(seed);
      const second = traceOf(seed);
      expect(first.lines).toBeGreaterThan(1000);
      expect(second.hash).toBe(first.hash);
    }
  });

  it('does not depend on what ran earlier in the same process', () => {
    const alone = traceOf(8);
    runSimulation({ seed: 3, coreFactory: realCore });
    runSimulation({ seed: 4, coreFactory: realCore });
    expect(traceOf(8).hash).toBe(alone.hash);
  });

  it('gives different runs for different seeds', () => {
    expect(traceOf(10).hash).not.toBe(traceOf(12).hash);
  });

  it('produces the same outcome with and without tracing', () => {
    const traced = runSimulation({ seed: 31, coreFactory: realCore, trace: () => {} });
    const quiet = runSimulation({ seed: 31, coreFactory: realCore });
    expect(quiet.events).toBe(traced.events);
    expect(quiet.endTime).toBe(traced.endTime);
    expect(quiet.maxCommitted).toBe(traced.maxCommitted);
    expect(quiet.stats).toEqual(traced.stats);
  });

  it('traces the interesting events and skips plain ticks', () => {
    const { text } = traceOf(5);
    expect(text).toMatch(/becomes leader in term \d+/);
    expect(text).toMatch(/recv n\d->n\d AppendRequest/);
    expect(text).toMatch(/drop n\d->n\d \w+ .*\((loss|partition|n\d is down)\)/);
    expect(text).toMatch(/CRASH \(down for \d+\)/);
    expect(text).toMatch(/RESTART from term=\d+/);
    expect(text).toMatch(/partition \{/);
    expect(text).toMatch(/client proposes "p\d+/);
    expect(text).toMatch(/apply /);
    expect(text).toContain('faults stop');
    expect(text).not.toMatch(/\btick\b/);
    // A removed member's id back with a fresh disk: the old process gone, the new one starting from nothing.
    expect(text).toMatch(/n\d+ comes back with a fresh disk under its old id/);
    expect(text).toMatch(/RESTART from term=0 vote=- commit=0, log \.\.0/);
  });
});

describe('seeds split across child processes (as the seed batches run)', () => {
  it('sum to the same totals as the same seeds run one after another', async () => {
    const serial = runSeeds({ start: 40, count: 12, coreFactory: realCore });
    const split = await runSeedsInProcesses({ start: 40, count: 12 }, 3);
    expect(split.seedsRun).toBe(12);
    expect(split.failures).toEqual([]);
    expect(split.totals).toEqual(serial.totals);
  });

  it("report a process's failing seed as the serial run does", async () => {
    // Scenario: a caller that sends an output's messages before its write completes, with writes asynchronous.
    const range = { start: 0, count: 30, scenario: { asyncPersist: true }, callerBug: 'send-before-persist' } as const;
    const serial = runSeeds({ ...range, coreFactory: realCore, keepGoing: true });
    const split = await runSeedsInProcesses(range, 2);
    expect(serial.failures.length).toBeGreaterThan(0);
    expect(split.failures.map((f) => [f.seed, f.violation?.property])).toEqual(
      serial.failures.map((f) => [f.seed, f.violation?.property]).filter(([seed]) => split.failures.some((f) => f.seed === seed)),
    );
    expect(split.failures[0]?.seed).toBe(serial.failures[0]?.seed);
  });
});
