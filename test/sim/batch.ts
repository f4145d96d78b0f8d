import { type ClusterStats, emptyStats } from './cluster.js';
import { chooseScenario, type Scenario } from './scenario.js';
import type { CoreFactory } from './sim-core.js';
import type { CallerBug, SimulationResult } from './simulation.js';
import { defaultNodeCount, runSimulation } from './simulation.js';

export interface BatchOptions {
  readonly start: number;
  readonly count: number;
  readonly coreFactory: CoreFactory;
  /** Fixes the cluster size; by default it alternates 3 and 5 by seed. */
  readonly nodeCount?: number;
  readonly scenario?: Partial<Scenario>;
  /** A deliberately broken caller (test only). */
  readonly callerBug?: CallerBug;
  /** Stop at the first failing seed (default) or run them all. */
  readonly keepGoing?: boolean;
  /** Called after each seed. */
  readonly onResult?: (result: SimulationResult) => void;
}

export interface BatchSummary {
  readonly seedsRun: number;
  readonly failures: readonly SimulationResult[];
  readonly elapsedMs: number;
  readonly totals: {
    readonly events: number;
    readonly committed: number;
    readonly leadersElected: number;
    readonly crashes: number;
    readonly partitions: number;
    readonly readsReleased: number;
    /** Seeds that ran with asynchronous persistence. */
    readonly asyncSeeds: number;
    /** Every counter of the runs' ClusterStats, summed. */
    readonly stats: ClusterStats;
  };
}

type Totals = BatchSummary['totals'];
type RunningTotals = { -readonly [K in keyof Totals]: Totals[K] };

function emptyTotals(): RunningTotals {
  return { events: 0, committed: 0, leadersElected: 0, crashes: 0, partitions: 0, readsReleased: 0, asyncSeeds: 0, stats: emptyStats() };
}

/** One run's contribution to a batch's totals. */
function totalsOf(result: SimulationResult): Totals {
  const { stats } = result;
  return {
    events: result.events,
    committed: result.maxCommitted,
    leadersElected: stats.leadersElected,
    crashes: stats.crashes,
    partitions: stats.partitions,
    readsReleased: stats.readsReleased,
    asyncSeeds: result.scenario.asyncPersist ? 1 : 0,
    stats,
  };
}

function addTotals(into: RunningTotals, from: Totals): void {
  into.events += from.events;
  into.committed += from.committed;
  into.leadersElected += from.leadersElected;
  into.crashes += from.crashes;
  into.partitions += from.partitions;
  into.readsReleased += from.readsReleased;
  into.asyncSeeds += from.asyncSeeds;
  for (const key of Object.keys(into.stats) as (keyof ClusterStats)[]) into.stats[key] += from.stats[key];
}

export function runSeeds(options: BatchOptions): BatchSummary {
  const started = performance.now();
  const failures: SimulationResult[] = [];
  let seedsRun = 0;
  const totals = emptyTotals();
  for (let seed = options.start; seed < options.start + options.count; seed++) {
    const result = runSimulation({
      seed,
      coreFactory: options.coreFactory,
      ...(options.scenario !== undefined ? { scenario: options.scenario } : {}),
      ...(options.nodeCount !== undefined ? { nodeCount: options.nodeCount } : {}),
      ...(options.callerBug !== undefined ? { callerBug: options.callerBug } : {}),
    });
    seedsRun++;
    addTotals(totals, totalsOf(result));
    options.onResult?.(result);
    if (result.violation !== null) {
      failures.push(result);
      if (options.keepGoing !== true) break;
    }
  }
  return { seedsRun, failures, elapsedMs: performance.now() - started, totals };
}

/** One summary of several batches over disjoint seed ranges, failures in seed order. */
export function mergeSummaries(summaries: readonly BatchSummary[]): BatchSummary {
  const totals = emptyTotals();
  let seedsRun = 0;
  let elapsedMs = 0;
  const failures: SimulationResult[] = [];
  for (const summary of summaries) {
    seedsRun += summary.seedsRun;
    elapsedMs = Math.max(elapsedMs, summary.elapsedMs);
    failures.push(...summary.failures);
    addTotals(totals, summary.totals);
  }
  failures.sort((a, b) => a.seed - b.seed);
  return { seedsRun, failures, elapsedMs, totals };
}

/** A failing run as text: the violation, the scenario, and the events leading up to it. */
export function formatFailure(result: SimulationResult): string {
  const v = result.violation;
  if (v === null) return `seed ${result.seed} passed`;
  return [
    `seed ${result.seed} (${result.nodeCount} nodes) FAILED: ${v.property}`,
    `  at t=${v.time} on ${v.node ?? 'the cluster'}: ${v.detail}`,
    `  last ${result.recentEvents.length} events:`,
    ...result.recentEvents.map((line) => `    ${line}`),
    `  replay: ${replayCommand(result)}`,
  ].join('\n');
}

/** The command that replays `result`'s run, with the options that made it differ from the seed's own choices. */
export function replayCommand(result: SimulationResult): string {
  const s = result.scenario;
  const flags = [`--seed ${result.seed}`, '--trace'];
  if (result.nodeCount !== defaultNodeCount(result.seed)) flags.push(`--nodes ${result.nodeCount}`);
  if (s.asyncPersist !== chooseScenario(result.seed, result.nodeCount).asyncPersist) {
    flags.push(`--async-persist ${s.asyncPersist ? 'on' : 'off'}`);
  }
  if (s.commitNoticeDelay !== chooseScenario(result.seed, result.nodeCount).commitNoticeDelay) {
    flags.push(`--commit-notice-delay ${s.commitNoticeDelay}`);
  }
  if (s.readIds === 'per-node-life') flags.push('--reuse-read-ids');
  if (s.reusedIdHazards) flags.push('--reused-id-hazards');
  return `npm run sim -- ${flags.join(' ')}`;
}
