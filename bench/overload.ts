/**
 * The overload benchmark (issue 11, backpressure): open-loop Put load far
 * above capacity against a fresh 3-node cluster (fsync on) per value of the
 * leader's backlog bound, --max-uncommitted-bytes, run one after the other
 * in this process and printed side by side. A bound of 1 GiB is, at these
 * rates, no bound at all: the "before" case.
 *
 * Requests leave at --rate per second whatever the replies do (open loop),
 * each sent once over the raw gRPC stub with a --deadline-ms deadline, so a
 * refusal (RESOURCE_EXHAUSTED) is counted as such instead of being retried
 * as the client library would. What should hold with a bound: admitted
 * requests answered in bounded time, refusals answered at once, the
 * leader's memory flat; without one, latency and memory grow with the
 * backlog until requests die at their deadline.
 *
 *   npm run bench:overload -- [--bounds 16384,262144,4194304,1073741824] [--rate 5000] [--duration 20]
 *                             [--deadline-ms 5000] [--max-in-flight 20000] [--value-size 100]
 *
 * Reading the figures: the bound limits the leader's Raft backlog only. Compare
 * "leader uncommitted" with the bound in entries to see whether it engaged at
 * all. When "peak in flight" sits at --max-in-flight, requests wait in front of
 * the node's handler (TCP and HTTP/2 buffers, where no bound applies), and
 * every latency is about max-in-flight / answers per second. When the send lag
 * and the generator's event-loop delay are large, the generator, not the
 * cluster, set the pace: on a 2-core machine it shares the cores with the nodes.
 *
 * Human-readable lines go to stderr, one JSON line with everything to stdout (last).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { SpawnedTarget } from './cluster/target.js';
import { boundLabel, errorLines, sideBySide, summaryLine, timelineLines } from './overload/report.js';
import { runVariant, type VariantOptions, type VariantResult } from './overload/variant.js';

const USAGE = `usage: npm run bench:overload -- [options]
  --bounds LIST          --max-uncommitted-bytes of each variant, run in this order (16384,262144,4194304,1073741824)
  --rate N               open-loop Puts per second (5000: above capacity here; far higher rates measure
                         this generator and its in-flight cap rather than the cluster)
  --duration S           seconds of open-loop load per variant (20)
  --deadline-ms MS       deadline of every request (5000)
  --max-in-flight N      requests in flight past which due ones are skipped (and counted) (20000)
  --value-size B         bytes per value (100)
  --keys N               keys drawn uniformly from N (10000)
  --closed-concurrency C closed-loop workers of the capacity reference before each open loop (64)
  --closed-duration S    seconds of that reference; 0 = none (5)
  --sample-ms MS         period of the RSS and Status samples of every node (500)
  --node-args="ARGS"     extra raftlog node flags for every variant
  --node-exec-argv="ARGS"  flags for node itself in every node process, e.g. "--trace-gc"
  --log-level LEVEL      nodes' log level (info)
  --keep-logs DIR        copy every node's log file to DIR (as <bound>-<node>.log) before its cluster is removed`;

const { values: a } = parseArgs({
  options: {
    bounds: { type: 'string', default: '16384,262144,4194304,1073741824' },
    rate: { type: 'string', default: '5000' },
    duration: { type: 'string', default: '20' },
    'deadline-ms': { type: 'string', default: '5000' },
    'max-in-flight': { type: 'string', default: '20000' },
    'value-size': { type: 'string', default: '100' },
    keys: { type: 'string', default: '10000' },
    'closed-concurrency': { type: 'string', default: '64' },
    'closed-duration': { type: 'string', default: '5' },
    'sample-ms': { type: 'string', default: '500' },
    'node-args': { type: 'string', default: '' },
    'node-exec-argv': { type: 'string', default: '' },
    'log-level': { type: 'string', default: 'info' },
    'keep-logs': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (a.help) {
  console.error(USAGE);
  process.exit(0);
}

type NumericFlag =
  | 'rate'
  | 'duration'
  | 'deadline-ms'
  | 'max-in-flight'
  | 'value-size'
  | 'keys'
  | 'closed-concurrency'
  | 'closed-duration'
  | 'sample-ms';
function num(name: NumericFlag, min: number, integer = false): number {
  const n = Number(a[name]);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    console.error(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${a[name]}\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
}
const bounds = a.bounds.split(',').map((b) => Number(b.trim()));
if (bounds.length === 0 || bounds.some((b) => !Number.isInteger(b) || b < 1)) {
  console.error(`--bounds must list positive integers (bytes), got ${a.bounds}\n\n${USAGE}`);
  process.exit(2);
}
const base: Omit<VariantOptions, 'boundBytes'> = {
  ratePerS: num('rate', 1),
  durationS: num('duration', 1, true),
  deadlineMs: num('deadline-ms', 1),
  maxInFlight: num('max-in-flight', 1, true),
  valueSize: num('value-size', 0, true),
  keys: num('keys', 1, true),
  closedConcurrency: num('closed-concurrency', 1, true),
  closedDurationS: num('closed-duration', 0),
  sampleMs: num('sample-ms', 50),
  nodeArgs: a['node-args'].split(/\s+/).filter(Boolean),
  logLevel: a['log-level'],
  execArgv: a['node-exec-argv'].split(/\s+/).filter(Boolean),
  keepLogsDir: a['keep-logs'] ?? null,
};

let current: SpawnedTarget | null = null;
// Ctrl-C, a kill or a crash must not leave node processes or temp dirs behind.
let stopping = false;
const stopAndExit = (why: string, code: number): void => {
  if (stopping) return;
  stopping = true;
  console.error(`\n${why}: stopping the cluster`);
  void (current?.destroy() ?? Promise.resolve()).finally(() => process.exit(code));
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stopAndExit(signal, 130));
process.on('uncaughtException', (error) => {
  console.error(error);
  stopAndExit('uncaught exception', 1);
});
process.on('unhandledRejection', (error) => {
  console.error(error);
  stopAndExit('unhandled rejection', 1);
});

const startedAt = new Date().toISOString();
const results: VariantResult[] = [];
try {
  console.error(
    `overload: open-loop Put at ${base.ratePerS}/s for ${base.durationS} s per variant, ${base.valueSize} B values, ` +
      `deadline ${base.deadlineMs} ms, in flight at most ${base.maxInFlight}; bounds ${bounds.map(boundLabel).join(', ')}; loadgen pid ${process.pid}`,
  );
  for (const boundBytes of bounds) {
    console.error(`\nvariant --max-uncommitted-bytes ${boundBytes} (${boundLabel(boundBytes)})`);
    const v = await runVariant(
      { ...base, boundBytes },
      (t) => (current = t),
      (line) => console.error(line),
    );
    results.push(v);
    console.error(summaryLine(v));
    for (const line of errorLines(v)) console.error(line);
    for (const line of timelineLines(v)) console.error(line);
  }
  console.error('');
  for (const line of sideBySide(results)) console.error(line);
  console.error('');
  console.log(
    JSON.stringify({
      bench: 'overload',
      started_at: startedAt,
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null, node: process.version },
      rate_per_s: base.ratePerS,
      duration_s: base.durationS,
      deadline_ms: base.deadlineMs,
      max_in_flight: base.maxInFlight,
      value_size: base.valueSize,
      keys: base.keys,
      closed_concurrency: base.closedConcurrency,
      closed_duration_s: base.closedDurationS,
      sample_ms: base.sampleMs,
      node_args: base.nodeArgs,
      node_exec_argv: base.execArgv,
      log_level: base.logLevel,
      variants: results,
    }),
  );
} catch (error) {
  if (!stopping) {
    console.error(`overload bench failed: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  }
} finally {
  // runVariant tears its cluster down itself; this covers a failure before it could.
  await (current as SpawnedTarget | null)?.destroy();
}
