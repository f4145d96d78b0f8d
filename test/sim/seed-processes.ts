import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type BatchSummary, mergeSummaries } from './batch.js';
import type { Scenario } from './scenario.js';
import type { CallerBug } from './simulation.js';

/** What a seed process runs: seeds [start, start + count) of the real core. */
export interface SeedRange {
  readonly start: number;
  readonly count: number;
  readonly scenario?: Partial<Scenario>;
  /** A deliberately broken caller (to show that a process's failure reaches the summary). */
  readonly callerBug?: CallerBug;
}

/**
 * Runs the real core against seeds [start, start + count) in child
 * processes, one contiguous share each. Seeds are independent and each run is
 * deterministic (determinism.test.ts), so splitting them changes nothing but
 * the wall time: the suite's test files run one at a time on a 2-core
 * machine, and a sweep of thousands of seeds would otherwise leave a core
 * idle. Processes, not worker threads: threads sped a sweep up by about a
 * tenth here, processes by about a quarter (the simulator allocates heavily,
 * and threads of one process share its garbage collector's helpers).
 */
export async function runSeedsInProcesses(range: SeedRange, processes = defaultProcesses()): Promise<BatchSummary> {
  const shares = Math.max(1, Math.min(processes, range.count));
  const ranges: SeedRange[] = [];
  for (let i = 0, start = range.start; i < shares; i++) {
    const count = Math.floor(range.count / shares) + (i < range.count % shares ? 1 : 0);
    ranges.push({ ...range, start, count });
    start += count;
  }
  return mergeSummaries(await Promise.all(ranges.map(runInProcess)));
}

function defaultProcesses(): number {
  return Math.min(4, availableParallelism());
}

function runInProcess(range: SeedRange): Promise<BatchSummary> {
  const child = fork(fileURLToPath(new URL('./seed-process.ts', import.meta.url)), [JSON.stringify(range)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise<BatchSummary>((resolve, reject) => {
    let summary: BatchSummary | undefined;
    child.once('message', (message) => {
      summary = message as BatchSummary;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (summary !== undefined) resolve(summary);
      else
        reject(
          new Error(
            `seed process for seeds ${range.start}..${range.start + range.count - 1} ended (code ${code}, signal ${signal}) without a summary`,
          ),
        );
    });
  });
}
