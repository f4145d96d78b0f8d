// A child process of seed-processes.ts: runs its share of seeds and sends the summary back.
import { runSeeds } from './batch.js';
import { realCore } from './default-core.js';
import type { SeedRange } from './seed-processes.js';

const range = JSON.parse(process.argv[2] ?? '{}') as SeedRange;
const parent = process.ppid;
const summary = runSeeds({
  start: range.start,
  count: range.count,
  coreFactory: realCore,
  ...(range.scenario !== undefined ? { scenario: range.scenario } : {}),
  ...(range.callerBug !== undefined ? { callerBug: range.callerBug } : {}),
  // The seeds run synchronously, so a parent that died (a test timed out) is noticed between seeds.
  onResult: () => {
    if (process.ppid !== parent) process.exit(1);
  },
});
// A violation is an Error, and an Error crosses to another process as its message alone: send its fields.
const failures = summary.failures.map((failure) => {
  const v = failure.violation;
  if (v === null) return failure;
  const { name, message, stack, property, time, node, detail } = v;
  return { ...failure, violation: { name, message, stack, property, time, node, detail } };
});
process.send?.({ ...summary, failures }, () => process.disconnect());
