/**
 * npm run sim -- --seeds 1000 [--start N] [--nodes 3|5] [--async-persist on|off] [--commit-notice-delay T] [--keep-going] [--plant BUG]
 * npm run sim -- --seed N --trace [--nodes 3|5] [--async-persist on|off] [--commit-notice-delay T] [--plant BUG]
 *
 * --async-persist forces durable writes to be asynchronous (on) or
 * synchronous (off); by default each seed chooses (about half are on).
 * --commit-notice-delay holds commit notices up to T time units (0: sent at
 * once) by the nodes' peer-link rule; by default each seed chooses.
 * --reused-id-hazards delivers messages meant for a removed member's old
 * process to its id's new one (back with a fresh disk) in any order, not only
 * in the order a peer link keeps (Scenario.reusedIdHazards).
 *
 * Runs seeded simulations of the real core (or of one with a planted bug),
 * prints seeds per second and the first failing seed; exits 1 on a failure.
 */
import { parseArgs } from 'node:util';
import { formatFailure, runSeeds } from './batch.js';
import { realCore } from './default-core.js';
import { isPlantedBugName, PLANTED_BUGS } from './planted-bugs.js';
import type { Scenario } from './scenario.js';
import type { CoreFactory } from './sim-core.js';
import { describeScenario, runSimulation } from './simulation.js';

// `--trace | head` closes the pipe early: stop quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: sim [--seeds COUNT] [--start FIRST] | --seed N [--trace]; options: --nodes 3|5, --async-persist on|off, --commit-notice-delay T, --keep-going, --reuse-read-ids, --reused-id-hazards, --plant ${Object.keys(PLANTED_BUGS).join('|')}\n`,
  );
  process.exit(2); // nothing large has been written yet
}

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) usage(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    start: { type: 'string' },
    seed: { type: 'string' },
    trace: { type: 'boolean', default: false },
    nodes: { type: 'string' },
    'keep-going': { type: 'boolean', default: false },
    plant: { type: 'string' },
    'reuse-read-ids': { type: 'boolean', default: false },
    'reused-id-hazards': { type: 'boolean', default: false },
    'async-persist': { type: 'string' },
    'commit-notice-delay': { type: 'string' },
  },
  strict: true,
});

let coreFactory: CoreFactory = realCore;
if (values.plant !== undefined) {
  if (!isPlantedBugName(values.plant)) usage(`unknown planted bug ${values.plant}`);
  coreFactory = PLANTED_BUGS[values.plant].coreFactory;
  process.stdout.write(`planted bug: ${PLANTED_BUGS[values.plant].description}\n`);
}
const nodeCount = values.nodes === undefined ? undefined : integer('nodes', values.nodes, 3);
if (nodeCount !== undefined && nodeCount !== 3 && nodeCount !== 5) usage('--nodes must be 3 or 5');
const asyncPersist = values['async-persist'];
if (asyncPersist !== undefined && asyncPersist !== 'on' && asyncPersist !== 'off') {
  usage(`--async-persist must be on or off, got ${asyncPersist}`);
}
const noticeDelay = values['commit-notice-delay'];
/** What the command line changes in the scenarios the seeds choose. */
const overrides: Partial<Scenario> = {
  ...(values['reuse-read-ids'] ? { readIds: 'per-node-life' as const } : {}),
  ...(values['reused-id-hazards'] ? { reusedIdHazards: true } : {}),
  ...(asyncPersist !== undefined ? { asyncPersist: asyncPersist === 'on' } : {}),
  ...(noticeDelay !== undefined ? { commitNoticeDelay: integer('commit-notice-delay', noticeDelay, 0) } : {}),
};
const scenarioOption = Object.keys(overrides).length > 0 ? { scenario: overrides } : {};

function replayOne(): number {
  const seed = integer('seed', values.seed, 0);
  const out: string[] = [];
  const result = runSimulation({
    seed,
    coreFactory,
    ...scenarioOption,
    ...(nodeCount !== undefined ? { nodeCount } : {}),
    ...(values.trace ? { trace: (line: string) => out.push(line) } : {}),
  });
  if (values.trace) process.stdout.write(`${out.join('\n')}\n`);
  if (result.violation !== null) {
    process.stdout.write(`${values.trace ? `seed ${seed} FAILED: ${result.violation.message}` : formatFailure(result)}\n`);
    return 1;
  }
  if (!values.trace) process.stdout.write(`${describeScenario(result.scenario)}\n`);
  process.stdout.write(
    `seed ${seed} passed: ${result.events} events, committed ${result.maxCommitted} entries, ${result.stats.leadersElected} leaders, ` +
      `${result.stats.crashes} crashes, ${result.stats.partitions} partitions, liveness met at t=${result.livenessMetAt ?? '-'}\n`,
  );
  return 0;
}

function runMany(): number {
  const start = integer('start', values.start, 0);
  const count = integer('seeds', values.seeds, 100);
  let lastReport = performance.now();
  const summary = runSeeds({
    start,
    count,
    coreFactory,
    keepGoing: values['keep-going'],
    ...scenarioOption,
    ...(nodeCount !== undefined ? { nodeCount } : {}),
    onResult: (result) => {
      const now = performance.now();
      if (now - lastReport > 2000 && process.stderr.isTTY) {
        process.stderr.write(`  ... seed ${result.seed}\n`);
        lastReport = now;
      }
    },
  });
  const seconds = summary.elapsedMs / 1000;
  const t = summary.totals;
  const n = Math.max(1, summary.seedsRun);
  process.stdout.write(
    `${summary.seedsRun} seeds (${start}..${start + summary.seedsRun - 1}) in ${seconds.toFixed(1)} s: ${(summary.seedsRun / seconds).toFixed(1)} seeds/s\n` +
      `per seed on average: ${Math.round(t.events / n)} events, ${(t.committed / n).toFixed(0)} committed entries, ` +
      `${(t.leadersElected / n).toFixed(1)} leaders, ${(t.crashes / n).toFixed(1)} crashes, ${(t.partitions / n).toFixed(1)} partitions, ` +
      `${(t.readsReleased / n).toFixed(0)} reads served` +
      '\n' +
      `persistence: ${asyncPersist === undefined ? 'from the seed' : `forced ${asyncPersist}`}, asynchronous in ${t.asyncSeeds} of ${summary.seedsRun} seeds` +
      (t.asyncSeeds > 0
        ? ` (per async seed: ${(t.stats.writes / t.asyncSeeds).toFixed(0)} writes, ` +
          `${(t.stats.writesBehindOthers / t.asyncSeeds).toFixed(0)} of them started behind others in progress, ` +
          `${(t.stats.deliveriesDuringWrite / t.asyncSeeds).toFixed(0)} messages stepped during a write, ` +
          `${(t.stats.writesReplacedInFlight / t.asyncSeeds).toFixed(2)} writes replaced in flight, ` +
          `${(t.stats.crashesLosingWrite / t.asyncSeeds).toFixed(1)} crashes losing writes, ` +
          `${(t.stats.crashesAfterWrite / t.asyncSeeds).toFixed(1)} just after some completed)`
        : '') +
      '\n' +
      `snapshots: ${t.stats.snapshotsTaken} taken, ${t.stats.entriesCompacted} entries compacted, ` +
      `${t.stats.snapshotsSent} sent to followers (${t.stats.snapshotsLost} lost on the way), ${t.stats.snapshotsInstalled} installed, ` +
      `${t.stats.restartsFromSnapshot} restarts restored from one\n` +
      `membership: ${t.stats.configChangesProposed} changes asked, ${t.stats.configChangesAccepted} appended, ${t.stats.leadersRemoved} leaders removed, ` +
      `${t.stats.votersStranded} voters stranded by a change, ${t.stats.freshDiskRejoins} removed ids back with a fresh disk ` +
      `(${t.stats.rejoinsWithStaleVoter} while a stale voter still listed them; ${t.stats.removedIdsRefused} adds of them refused)\n` +
      `commit notices: ${t.stats.noticesHeld} held back, ${t.stats.noticesFolded} of them never sent (a later notice or append carried their commit index)\n`,
  );
  const first = summary.failures[0];
  if (first === undefined) {
    process.stdout.write('no violations\n');
    return 0;
  }
  process.stdout.write(`${summary.failures.length} failing seed(s); first failing seed: ${first.seed}\n${formatFailure(first)}\n`);
  return 1;
}

// exitCode rather than exit(): a large trace piped to another process must be flushed first.
process.exitCode = values.seed !== undefined ? replayOne() : runMany();
