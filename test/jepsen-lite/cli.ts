/**
 * npm run jepsen -- [options]: one jepsen-lite run against a fresh local
 * cluster. Prints a summary and exits 0 only when every checker passed.
 */
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { FAILPOINTS } from '../../src/node/failpoints.js';
import { NEMESIS_KINDS, type NemesisKind } from './nemesis.js';
import { checkNetnsAvailable } from './netns-network.js';
import { JEPSEN_DEFAULTS, type JepsenOptions, runJepsen } from './run.js';
import { formatSummary } from './summary.js';
import { PLANTED_BUGS, type PlantedBug } from './workloads/subscriber-journal.js';

/** A transport flag's parser: unary or calls. */
const transport =
  (name: string) =>
  (value: string): 'unary' | 'calls' => {
    if (value !== 'unary' && value !== 'calls') throw new InvalidArgumentError(`${name} must be unary or calls`);
    return value;
  };

const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};

const nonNegativeInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};

const nemesisList = (value: string): NemesisKind[] => {
  if (value === 'none') return [];
  if (value === 'all') return [...NEMESIS_KINDS];
  const kinds = value.split(',').map((k) => k.trim());
  for (const kind of kinds) {
    if (!(NEMESIS_KINDS as readonly string[]).includes(kind)) {
      throw new InvalidArgumentError(`unknown nemesis "${kind}"; choose from ${NEMESIS_KINDS.join(', ')}, all or none`);
    }
  }
  return kinds as NemesisKind[];
};

async function main(): Promise<void> {
  const program = new Command('jepsen')
    .description('Attack a real raftlog cluster with faults while clients work, then check what they saw.')
    .addOption(
      new Option('--workload <name>', 'register, append, or subscribe (appends read by subscribers and crashing durable consumers)')
        .choices(['register', 'append', 'subscribe'])
        .default(JEPSEN_DEFAULTS.workload),
    )
    .option(
      '--nemesis <kinds>',
      `comma-separated: ${NEMESIS_KINDS.join(', ')}; or all (every one of them, membership included), none. ` +
        'membership adds (as a learner, then promotes), removes (the leader half the time) and replaces (kills, adds a spare, removes) ' +
        'members through the Cluster API, keeping 3 to --max-nodes voters; the final checks cover the final configuration',
      nemesisList,
      [...JEPSEN_DEFAULTS.nemesis],
    )
    .option('--time <seconds>', 'seconds of workload under faults', positiveInt('--time'), JEPSEN_DEFAULTS.timeSeconds)
    .addOption(new Option('--nodes <n>', 'founding cluster size (members n1..nN)').choices(['3', '5']).default('3'))
    .addOption(
      new Option(
        '--max-nodes <n>',
        'with the membership nemesis: slots n1..nN, so 3 to N voters (at least --nodes); a removed id never comes back, so a slot hosts n4, then n4.2, ...',
      )
        .choices(['4', '5'])
        .default(String(JEPSEN_DEFAULTS.maxNodes)),
    )
    .option('--concurrency <n>', 'client workers', positiveInt('--concurrency'), JEPSEN_DEFAULTS.concurrency)
    .option('--rate <ops>', 'target operations per second, all clients', positiveInt('--rate'), JEPSEN_DEFAULTS.rate)
    .option('--keys <n>', 'register keys in use at once', positiveInt('--keys'), JEPSEN_DEFAULTS.keys)
    .option('--ops-per-key <n>', 'operations before a key is retired for a fresh one', positiveInt('--ops-per-key'), JEPSEN_DEFAULTS.opsPerKey)
    .addOption(
      new Option('--read <mode>', 'linearizable, or local (stale reads: expect a failure)')
        .choices(['linearizable', 'local'])
        .default(JEPSEN_DEFAULTS.readMode),
    )
    .option(
      '--read-transport <t>',
      "register: how reads travel: calls (through the client library, on the worker's node's Calls stream, the library's default) or unary (one Get call each)",
      transport('--read-transport'),
    )
    .option('--op-timeout <ms>', 'deadline of every client call', positiveInt('--op-timeout'), JEPSEN_DEFAULTS.opTimeoutMs)
    .option('--seed <n>', "seed of the schedule and the clients' choices", positiveInt('--seed'), JEPSEN_DEFAULTS.seed)
    .option('--fault-interval <ms>', 'mean quiet time before each fault of a kind', positiveInt('--fault-interval'), JEPSEN_DEFAULTS.faultIntervalMs)
    .option('--fault-min <ms>', 'shortest fault', positiveInt('--fault-min'), JEPSEN_DEFAULTS.minFaultMs)
    .option('--fault-max <ms>', 'longest fault', positiveInt('--fault-max'), JEPSEN_DEFAULTS.maxFaultMs)
    .option(
      '--liveness-timeout <ms>',
      'after healing, a leader and a write must come within this',
      positiveInt('--liveness-timeout'),
      JEPSEN_DEFAULTS.livenessTimeoutMs,
    )
    .option('--checker-timeout <ms>', 'linearizability search budget per key', positiveInt('--checker-timeout'), JEPSEN_DEFAULTS.checkerTimeoutMs)
    .option('--node-log-level <level>', "the nodes' --log-level", JEPSEN_DEFAULTS.nodeLogLevel)
    .option(
      '--snapshot-entries <n>',
      "passed to every node: snapshot every N applied entries and compact (0: never; default: the node's)",
      nonNegativeInt('--snapshot-entries'),
    )
    .option(
      '--retain-entries <m>',
      "passed to every node: log entries kept behind a snapshot (default: the node's)",
      nonNegativeInt('--retain-entries'),
    )
    .option(
      '--retries',
      'append: append through the client library with exactlyOnce, retrying a write whose outcome was unknown with the same producer stamp ' +
        "(each call's deadline 5 × --op-timeout); the subscribe workload always does",
    )
    .option(
      '--write-transport <t>',
      "append --retries: how the client library sends the appends: calls (one Calls stream per node, the library's default) or unary (one gRPC call each)",
      transport('--write-transport'),
    )
    .option(
      '--subscribers <n>',
      'subscribe: plain subscribers from index 1, the first streams pinned to the nodes in turn (default: one per node)',
      positiveInt('--subscribers'),
    )
    .option('--consumers <n>', 'subscribe: durable consumers that commit, crash and resume', nonNegativeInt('--consumers'), JEPSEN_DEFAULTS.consumers)
    .addOption(
      new Option('--bug <name>', "subscribe: plant a bug in the test's own subscriber code, which the checker must report (the run fails)").choices([
        ...PLANTED_BUGS,
      ]),
    )
    .addOption(
      new Option('--mutation <name>', 'plant a bug in every node through its failpoint (the checkers must catch it: the run should fail)').choices(
        Object.keys(FAILPOINTS).filter((name) => name.startsWith('bug-')),
      ),
    )
    .option(
      '--soak <seconds>',
      'a long run: --time SECONDS on 5 nodes with every nemesis (disk and membership included) and compaction every 1000 entries, ' +
        "each node's memory sampled; flags given beside it win",
      positiveInt('--soak'),
    )
    .addOption(
      new Option(
        '--network <mode>',
        'proxy: nodes on 127.0.0.1 behind TCP fault proxies (every fault); netns: each node in a network namespace with its own address, ' +
          "partitions by moving links between bridges, one-way cuts and slowness through the transport's failpoints (root only)",
      )
        .choices(['proxy', 'netns'])
        .default(JEPSEN_DEFAULTS.network),
    )
    .option('--out <dir>', 'output folder (default: a new folder under jepsen-results/)')
    .parse();
  const o = program.opts<{
    workload: JepsenOptions['workload'];
    nemesis: NemesisKind[];
    time: number;
    nodes: string;
    maxNodes: string;
    concurrency: number;
    rate: number;
    keys: number;
    opsPerKey: number;
    read: JepsenOptions['readMode'];
    opTimeout: number;
    seed: number;
    faultInterval: number;
    faultMin: number;
    faultMax: number;
    livenessTimeout: number;
    checkerTimeout: number;
    nodeLogLevel: string;
    snapshotEntries?: number;
    retainEntries?: number;
    retries?: boolean;
    writeTransport?: 'unary' | 'calls';
    readTransport?: 'unary' | 'calls';
    subscribers?: number;
    consumers: number;
    bug?: PlantedBug;
    mutation?: string;
    soak?: number;
    network: 'proxy' | 'netns';
    out?: string;
  }>();
  if (o.soak !== undefined) {
    const given = (name: string) => program.getOptionValueSource(name) === 'cli';
    if (!given('time')) o.time = o.soak;
    if (!given('nodes')) o.nodes = '5';
    if (!given('nemesis')) {
      o.nemesis = [...NEMESIS_KINDS];
    }
    if (!given('snapshotEntries')) o.snapshotEntries = 1000;
    if (!given('retainEntries')) o.retainEntries = 100;
  }
  if (o.faultMax < o.faultMin) program.error('--fault-max must not be below --fault-min');
  if (o.bug !== undefined && o.workload !== 'subscribe')
    program.error('--bug plants a bug in the subscribe workload: use it with --workload subscribe');
  if (o.nemesis.includes('membership') && Number(o.maxNodes) < Number(o.nodes)) program.error('--max-nodes must not be below --nodes');
  if (o.network === 'netns') await checkNetnsAvailable().catch((error: Error) => program.error(error.message));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = resolve(o.out ?? join('jepsen-results', `${stamp}-${o.workload}-seed${o.seed}`));
  const result = await runJepsen({
    workload: o.workload,
    nemesis: o.nemesis,
    timeSeconds: o.time,
    nodes: Number(o.nodes),
    maxNodes: Number(o.maxNodes),
    concurrency: o.concurrency,
    rate: o.rate,
    keys: o.keys,
    opsPerKey: o.opsPerKey,
    readMode: o.read,
    readTransport: o.readTransport ?? JEPSEN_DEFAULTS.readTransport,
    opTimeoutMs: o.opTimeout,
    seed: o.seed,
    out,
    faultIntervalMs: o.faultInterval,
    minFaultMs: o.faultMin,
    maxFaultMs: o.faultMax,
    livenessTimeoutMs: o.livenessTimeout,
    checkerTimeoutMs: o.checkerTimeout,
    nodeLogLevel: o.nodeLogLevel,
    snapshotEntries: o.snapshotEntries ?? JEPSEN_DEFAULTS.snapshotEntries,
    retainEntries: o.retainEntries ?? JEPSEN_DEFAULTS.retainEntries,
    retries: o.retries === true,
    writeTransport: o.writeTransport ?? 'calls',
    subscribers: o.subscribers ?? JEPSEN_DEFAULTS.subscribers,
    consumers: o.consumers,
    plantedBug: o.bug ?? JEPSEN_DEFAULTS.plantedBug,
    mutation: o.mutation ?? JEPSEN_DEFAULTS.mutation,
    network: o.network,
    log: (line) => process.stdout.write(`[${new Date().toISOString().slice(11, 23)}] ${line}\n`),
  });
  process.stdout.write(`${formatSummary(result)}\n`);
  process.exitCode = result.valid ? 0 : 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`jepsen-lite: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 2;
});
