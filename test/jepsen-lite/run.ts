import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StatusReply, WriteReply } from '../../src/node/client-proto.js';
import { failpointEnvironment, setFailpoint } from '../support/failpoint-control.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { checkLinearizability, formatViolation } from './checkers/linearizability.js';
import {
  type CheckVerdict,
  checkAppends,
  checkDigests,
  checkLogAgreement,
  committedLog,
  type NodeFinal,
  type ObservedLog,
} from './checkers/log-checks.js';
import { checkConsumerPositions, checkSubscriptions } from './checkers/subscribe-checks.js';
import { type CompactionReport, compactionArgs, compactionReport, describeCompaction } from './compaction.js';
import { FaultNetwork } from './fault-proxy.js';
import { type ClientEvent, formatHistory } from './history.js';
import { LogTailer } from './log-tailer.js';
import type { MembershipReport } from './membership-nemesis.js';
import { Nemesis, type NemesisKind } from './nemesis.js';
import { NetnsNetwork } from './netns-network.js';
import { idInSlot, slotOf } from './node-slots.js';
import { readHeldLog } from './read-log.js';
import { writeRecheckFiles } from './recheck-files.js';
import { HistoryRecorder } from './recorder.js';
import { renderReport } from './report-html.js';
import { describeConfiguration, Roster } from './roster.js';
import { type RssFigures, RssSampler } from './rss-sampler.js';
import { runAppendWorkload } from './workloads/append.js';
import { type ReadMode, runRegisterWorkload } from './workloads/register.js';
import { runSubscribeWorkload, type SubscribeOutcome, type SubscriptionReport } from './workloads/subscribe.js';
import { formatJournal, type PlantedBug } from './workloads/subscriber-journal.js';

export type WorkloadName = 'register' | 'append' | 'subscribe';
/** proxy: nodes on 127.0.0.1 reach each other through fault proxies; netns: each node in a network namespace with its own address. */
export type NetworkMode = 'proxy' | 'netns';

export interface JepsenOptions {
  readonly workload: WorkloadName;
  readonly nemesis: readonly NemesisKind[];
  /** Seconds of workload under faults, before the final heal. */
  readonly timeSeconds: number;
  /** Founding members, n1..nN. */
  readonly nodes: number;
  /** With the membership nemesis: members run in slots n1..nM (ids n3, n3.2, ...: node-slots.ts), and it keeps 3..M voters. */
  readonly maxNodes: number;
  readonly concurrency: number;
  /** Target operations per second, all clients together. */
  readonly rate: number;
  readonly keys: number;
  readonly opsPerKey: number;
  readonly readMode: ReadMode;
  /** register: how reads travel (unary Get calls, or the client library's Calls streams). */
  readonly readTransport: 'unary' | 'calls';
  readonly opTimeoutMs: number;
  readonly seed: number;
  readonly out: string;
  /** Mean quiet time between two faults of one kind, and how long a fault lasts. */
  readonly faultIntervalMs: number;
  readonly minFaultMs: number;
  readonly maxFaultMs: number;
  /** After healing, a leader and a successful write must come within this. */
  readonly livenessTimeoutMs: number;
  /** Per key; a key not decided in time is "unknown", which fails the run. */
  readonly checkerTimeoutMs: number;
  readonly nodeLogLevel: string;
  /** The nodes' --snapshot-entries (0: never); null: not passed, the node's default applies. */
  readonly snapshotEntries: number | null;
  /** The nodes' --retain-entries; null: not passed. */
  readonly retainEntries: number | null;
  /** append: through the client library with exactlyOnce, retrying writes whose outcome was unknown (the subscribe workload always does). */
  readonly retries: boolean;
  /** append --retries: how the client library sends the appends. */
  readonly writeTransport: 'unary' | 'calls';
  /** subscribe: plain subscribers from index 1, pinned first to the founders in turn; null: one per founder. */
  readonly subscribers: number | null;
  /** subscribe: durable consumers that crash and resume. */
  readonly consumers: number;
  /** subscribe: a bug planted in the test's own subscriber code, which the checker must catch; null for none. */
  readonly plantedBug: PlantedBug | null;
  /** A bug planted in the nodes through a failpoint (see src/node/failpoints.ts, the bug-* names); null for none. */
  readonly mutation: string | null;
  /** How faults reach the network: TCP proxies (default) or network namespaces and bridges (root only; slowness and one-way cuts through failpoints). */
  readonly network?: NetworkMode;
  readonly log: (line: string) => void;
}

export const JEPSEN_DEFAULTS = {
  workload: 'register',
  nemesis: ['partition', 'kill'],
  timeSeconds: 60,
  nodes: 3,
  maxNodes: 5,
  concurrency: 10,
  rate: 200,
  keys: 4,
  opsPerKey: 200,
  readMode: 'linearizable',
  readTransport: 'calls',
  opTimeoutMs: 1_000,
  seed: 1,
  faultIntervalMs: 6_000,
  minFaultMs: 2_000,
  maxFaultMs: 6_000,
  livenessTimeoutMs: 30_000,
  checkerTimeoutMs: 60_000,
  nodeLogLevel: 'info',
  snapshotEntries: null,
  retainEntries: null,
  retries: false,
  writeTransport: 'calls',
  subscribers: null,
  consumers: 2,
  plantedBug: null,
  mutation: null,
  network: 'proxy',
} as const satisfies Partial<JepsenOptions>;

export interface OperationCounts {
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
}

export interface CheckerResult {
  readonly name: string;
  readonly valid: boolean | 'unknown';
  readonly summary: string;
  readonly details: string;
}

export interface JepsenResult {
  readonly valid: boolean;
  readonly out: string;
  readonly counts: Readonly<Record<string, OperationCounts>>;
  readonly faults: Readonly<Record<string, number>>;
  readonly checkers: readonly CheckerResult[];
  /** The compaction settings, and per node its snapshots and final log window (null when the run ended before the logs were read). */
  readonly compaction: CompactionReport | null;
  /** What the membership nemesis changed, and the final configuration; null when it did not run. */
  readonly membership: MembershipReport | null;
  /** The subscribe workload's readers: what each received, reconnects, crashes; null for other workloads. */
  readonly subscriptions: SubscriptionReport | null;
  /** Each node's resident memory sampled during the workload (MiB); null when the run ended before it started. */
  readonly memory: RssFigures | null;
  readonly durationSeconds: number;
}

/** Every node listens on this port at its own address in --network netns (each namespace has its ports to itself). */
const NETNS_NODE_PORT = 7000;

/** The membership nemesis never takes the voters below this. */
const MIN_VOTERS = 3;

/**
 * How many ids a slot has (n3, n3.2, ... n3.<this>). A membership step starts
 * every --fault-interval on average and takes at most one new id, and the new
 * ids spread over the free slots: each slot gets half the run's expected
 * steps (at least 100), which is ample.
 * Every node's RAFTLOG_TEST_PEER_ROUTES lists each id of the other slots
 * (about 24 bytes each): capped so that it stays well below Linux's 128 KiB
 * for one environment string. A slot that used all its ids offers none.
 */
function generationsPerSlot(options: JepsenOptions): number {
  const steps = (options.timeSeconds * 1000) / options.faultIntervalMs;
  return Math.min(1_000, Math.max(100, Math.ceil(steps / 2)));
}

/** Runs one jepsen-lite test: a real cluster behind fault proxies, a workload, faults, a heal, the checks, the report. */
export async function runJepsen(options: JepsenOptions): Promise<JepsenResult> {
  const started = Date.now();
  const membershipChanges = options.nemesis.includes('membership');
  if (membershipChanges && (options.maxNodes < options.nodes || options.maxNodes <= MIN_VOTERS)) {
    throw new Error(`the membership nemesis needs --max-nodes (${options.maxNodes}) of at least --nodes (${options.nodes}) and above ${MIN_VOTERS}`);
  }
  const founders = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
  // Every slot a member may run in gets its proxies (or namespace) up front: a node added later is reached through them
  // too. A slot hosts one id after another (n4, n4.2, ...), since a removed id never becomes a member again.
  const slots = Array.from({ length: membershipChanges ? options.maxNodes : options.nodes }, (_, i) => `n${i + 1}`);
  const generations = membershipChanges ? generationsPerSlot(options) : 1;
  await mkdir(join(options.out, 'nodes'), { recursive: true });
  const recorder = new HistoryRecorder();
  let cluster: ProcessCluster | null = null;
  let roster: Roster | null = null;
  /** Every id started during the run (the founders, then each member added): its log, and the end-of-run checks. */
  const everyId = (): readonly string[] => roster?.ids ?? founders;
  const netns = options.network === 'netns';
  const network = netns
    ? await NetnsNetwork.create(slots)
    : await FaultNetwork.start(
        slots,
        (slot) => {
          if (cluster === null) throw new Error('the cluster is not started yet');
          // The id the slot hosts now (before the roster exists, the founder of that name).
          return Number(cluster.address(roster?.currentOf(slot) ?? slot).split(':')[1]);
        },
        options.seed,
      );
  const checkers: CheckerResult[] = [];
  let history: ClientEvent[] = [];
  let nemesis: Nemesis | null = null;
  let finals: NodeFinal[] = [];
  let tailer: LogTailer | null = null;
  let membership: MembershipReport | null = null;
  let subscribed: SubscribeOutcome | null = null;
  let rss: RssSampler | null = null;
  let memory: RssFigures | null = null;
  // Ends the subscribe workload's readers if the run fails before they are done.
  const abortReaders = new AbortController();
  const compactionSettings = { snapshotEntries: options.snapshotEntries, retainEntries: options.retainEntries };
  // Failpoint control (an HTTP port per node) only where a fault or a planted bug needs it: the nodes run as in production otherwise.
  // With --network netns, slowness and one-way cuts are the transport's failpoints too (no tc netem, no packet filters).
  const failpointControl =
    options.nemesis.includes('disk') ||
    options.mutation !== null ||
    (options.network === 'netns' && (options.nemesis.includes('slow') || options.nemesis.includes('partition')));
  try {
    // Restarted nodes get the same flags: ProcessCluster keeps them.
    const failpoints = failpointControl ? failpointEnvironment(options.mutation === null ? undefined : `${options.mutation}=on`) : {};
    const routing =
      network instanceof NetnsNetwork
        ? {
            // Each node in its namespace, at its own address: peers dial each other directly, over the bridge.
            addressOf: (id: string) => `${network.ipOf(id)}:${NETNS_NODE_PORT}`,
            spawnPrefixOf: (id: string) => network.spawnPrefix(id),
            // The failpoint control must be reachable from the root namespace, not on the namespace's own loopback.
            envOf: (id: string) =>
              failpointControl
                ? { ...failpoints, RAFTLOG_FAILPOINTS_LISTEN: `${network.ipOf(id)}:0`, RAFTLOG_FAILPOINTS_LISTEN_OFF_LOOPBACK: '1' }
                : {},
          }
        : {
            // A node reaches each peer through the proxy of that direction; it listens on its own address.
            // (A node added later joins with --join: its --peers, which would name a founder of its own slot, is not used.)
            peersOf: (id: string, addresses: ReadonlyMap<string, string>) =>
              founders
                .filter((peer) => peer === id || slotOf(peer) !== slotOf(id))
                .map((peer) => `${peer}=${peer === id ? addresses.get(id) : network.address(id, peer)}`)
                .join(','),
            // The same proxies for every id, founders and members added later alike, whatever address the configuration records:
            // every id the other slots may ever host, since a node reads its routes once, when it starts.
            envOf: (id: string) => ({ RAFTLOG_TEST_PEER_ROUTES: peerRoutes(id, slots, generations, network), ...failpoints }),
          };
    cluster = await ProcessCluster.start(options.nodes, ['--cluster', 'jepsen-lite', ...compactionArgs(compactionSettings)], {
      logLevel: options.nodeLogLevel,
      ...routing,
      // A member that joined, restarted, finds the cluster through whoever is a member now.
      rejoinViaOf: () => roster?.runningMembers() ?? [],
    });
    const live = cluster;
    const members = new Roster(live, slots, founders, generations);
    roster = members;
    const leader = await live.waitForLeader(founders, 60_000);
    if (network instanceof NetnsNetwork) {
      options.log(
        `network namespaces ${network.prefix}n*: ${slots.map((slot) => `${slot} ${network.ipOf(slot)}`).join(', ')}; clients on ${network.subnet}.254`,
      );
    }
    options.log(
      `cluster of ${founders.length} up, leader ${leader}; ${options.workload} workload for ${options.timeSeconds} s, nemesis ${options.nemesis.join(',') || 'none'}` +
        `${membershipChanges ? ` (members in slots ${slots.join(' ')}, ${generations} ids each)` : ''}, ${describeCompaction(compactionSettings)}`,
    );

    nemesis = new Nemesis({
      kinds: options.nemesis,
      cluster: live,
      network,
      recorder,
      roster: members,
      minVoters: MIN_VOTERS,
      maxVoters: slots.length,
      seed: options.seed,
      intervalMs: options.faultIntervalMs,
      minFaultMs: options.minFaultMs,
      maxFaultMs: options.maxFaultMs,
      log: options.log,
      setFailpoint: (id, name, action) => setFailpoint(live, id, name, action, 5_000),
    });
    const endAt = Date.now() + options.timeSeconds * 1000;
    const workloadOptions = {
      cluster: live,
      recorder,
      // Clients talk to the members of the moment; one removed meanwhile just fails their calls.
      nodes: () => members.members(),
      concurrency: options.concurrency,
      rate: options.rate,
      opTimeoutMs: options.opTimeoutMs,
      seed: options.seed,
      stopped: () => Date.now() >= endAt,
    };
    nemesis.start();
    rss = new RssSampler(live, () => members.members());
    rss.start();
    // The append and subscription checkers need the log's content, which compaction removes from every node before the end.
    if (options.workload !== 'register') {
      tailer = new LogTailer(live, () => members.members());
      tailer.start();
    }
    let markHealed: () => void = () => {};
    const healed = new Promise<void>((resolve) => (markHealed = resolve));
    const workload: Promise<SubscribeOutcome | null> =
      options.workload === 'register'
        ? runRegisterWorkload({
            ...workloadOptions,
            keys: options.keys,
            opsPerKey: options.opsPerKey,
            readMode: options.readMode,
            readTransport: options.readTransport,
          }).then(() => null)
        : options.workload === 'append'
          ? runAppendWorkload({ ...workloadOptions, retries: options.retries, writeTransport: options.writeTransport }).then(() => null)
          : runSubscribeWorkload({
              ...workloadOptions,
              subscribers: options.subscribers ?? founders.length,
              consumers: options.consumers,
              founders,
              bug: options.plantedBug,
              healed,
              drainTimeoutMs: options.livenessTimeoutMs,
              abort: abortReaders.signal,
            });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, endAt - Date.now())));
    options.log('healing every fault');
    memory = rss.stop();
    [subscribed] = await Promise.all([workload, nemesis.stopAndHeal(options.livenessTimeoutMs).finally(markHealed)]);
    const observed = await tailer?.stop();
    membership = nemesis.membershipReport;
    // The final checks cover the members of the final configuration (the founders when it never changed).
    const finalMembers = membership?.final == null ? members.members() : [...membership.final.voters, ...membership.final.learners];
    if (membership !== null) options.log(`final configuration: ${membership.final === null ? 'not read' : describeConfiguration(membership.final)}`);

    checkers.push(await checkLiveness(live, finalMembers, options.livenessTimeoutMs));
    const collected = await collectFinals(live, finalMembers, options.livenessTimeoutMs);
    finals = collected.finals;
    if (membership !== null) checkers.push(checkFinalConfiguration(membership, finals, collected.missing, live, members.ids, slots.length));
    else if (collected.missing.length > 0) throw new Error(`no final status and log from ${collected.missing.join('; ')}`);
    history = recorder.clientEvents();
    if (options.workload === 'register') checkers.push(linearizability(history, options.checkerTimeoutMs));
    // With compaction the appends are checked against the windows the nodes still hold and what the tailer
    // read; those compacted on every node before anyone read them are counted as not checkable (see checkAppends).
    if (options.workload !== 'register') checkers.push(fromVerdict(checkAppends(history, finals, observed)));
    if (subscribed !== null) checkers.push(...subscriptionCheckers(history, subscribed, finals, observed));
    checkers.push(fromVerdict(checkLogAgreement(finals)), fromVerdict(checkDigests(finals)));
  } finally {
    rss?.stop();
    abortReaders.abort();
    await nemesis?.stopAndHeal().catch(() => {});
    await (tailer as LogTailer | null)?.stop();
    const stopped = cluster as ProcessCluster | null;
    if (stopped !== null) {
      await Promise.all(everyId().map((id) => copyFile(join(stopped.dir, `${id}.log`), join(options.out, 'nodes', `${id}.log`)).catch(() => {})));
      await stopped.destroy();
    }
    await network.close();
  }

  const logs = new Map<string, string>();
  for (const id of everyId()) logs.set(id, await readFile(join(options.out, 'nodes', `${id}.log`), 'utf8').catch(() => ''));
  const compaction = finals.length === 0 ? null : compactionReport(compactionSettings, finals, logs);
  const events = recorder.events;
  const counts = countOperations(history);
  const faults = Object.fromEntries(nemesis?.injected ?? []);
  const valid = checkers.every((c) => c.valid === true);
  const durationSeconds = (Date.now() - started) / 1000;
  const settings: Record<string, string | number> = {
    workload: options.workload,
    nemesis: options.nemesis.join(',') || 'none',
    network: netns ? 'network namespaces (links moved between bridges)' : 'TCP fault proxies',
    time: `${options.timeSeconds} s`,
    nodes: options.nodes,
    ...(membershipChanges ? { 'member slots': slots.join(' '), 'member ids': everyId().join(' ') } : {}),
    concurrency: options.concurrency,
    rate: `${options.rate} ops/s`,
    seed: options.seed,
    'op timeout': `${options.opTimeoutMs} ms`,
    compaction: describeCompaction(compactionSettings),
    ...(options.workload === 'register'
      ? { keys: options.keys, 'ops per key': options.opsPerKey, reads: `${options.readMode}, as ${options.readTransport}` }
      : {}),
    ...(options.workload === 'append'
      ? { retries: options.retries ? `exactly-once, retried while unknown (writes as ${options.writeTransport})` : 'none' }
      : {}),
    ...(options.workload === 'subscribe'
      ? {
          retries: 'exactly-once, retried while unknown',
          subscribers: `${options.subscribers ?? options.nodes} plain, ${options.consumers} durable consumers`,
          ...(options.plantedBug === null ? {} : { 'planted bug': options.plantedBug }),
        }
      : {}),
    ...(options.mutation === null ? {} : { 'planted node bug': options.mutation }),
  };
  await writeFile(join(options.out, 'history.jsonl'), formatHistory(events));
  await writeRecheckFiles(options.out, events, finals);
  const readers = subscribed?.records ?? [];
  if (readers.length > 0) await mkdir(join(options.out, 'subscribers'), { recursive: true });
  for (const record of readers) await writeFile(join(options.out, 'subscribers', `${record.name}.jsonl`), formatJournal(record));
  const subscriptions = subscribed?.report ?? null;
  await writeFile(
    join(options.out, 'results.json'),
    JSON.stringify({ valid, settings, counts, faults, membership, subscriptions, checkers, compaction, memory, durationSeconds }, null, 2) + '\n',
  );
  await writeFile(
    join(options.out, 'report.html'),
    renderReport({
      title: `jepsen-lite: ${options.workload}, ${options.nemesis.join('+') || 'no faults'}, ${options.nodes} nodes, seed ${options.seed}`,
      settings,
      events,
      checkers: checkers.map((c) => ({ name: c.name, valid: c.valid, summary: c.summary, details: c.details })),
    }),
  );
  return { valid, out: options.out, counts, faults, checkers, compaction, membership, subscriptions, memory, durationSeconds };
}

/** RAFTLOG_TEST_PEER_ROUTES of node `id`: towards every id of every other slot, the proxy from its slot to that one. */
function peerRoutes(id: string, slots: readonly string[], generations: number, network: FaultNetwork): string {
  const routes: string[] = [];
  for (const slot of slots) {
    if (slot === slotOf(id)) continue;
    const address = network.address(id, slot);
    for (let generation = 1; generation <= generations; generation++) routes.push(`${idInSlot(slot, generation)}=${address}`);
  }
  return routes.join(',');
}

/**
 * After the heal, the leader reported a committed configuration with
 * MIN_VOTERS..maxVoters voters, every member of it converged (one applied
 * index, one digest), and no other node is still running; and no member's
 * process ended by itself during the run.
 */
function checkFinalConfiguration(
  membership: MembershipReport,
  finals: readonly NodeFinal[],
  missing: readonly string[],
  cluster: ProcessCluster,
  /** Every id started during the run. */
  ids: readonly string[],
  maxVoters: number,
): CheckerResult {
  const name = 'final configuration';
  const { final, unexpectedExits } = membership;
  if (final === null) {
    return { name, valid: false, summary: 'no leader reported a committed configuration after the heal', details: '' };
  }
  const problems: string[] = [];
  if (final.voters.length < MIN_VOTERS || final.voters.length > maxVoters) {
    problems.push(`${final.voters.length} voters, outside ${MIN_VOTERS}..${maxVoters}`);
  }
  const members = [...final.voters, ...final.learners];
  if (missing.length > 0) problems.push(`no final status from ${missing.join('; ')}`);
  const applied = new Set(finals.map((f) => f.appliedIndex));
  const digests = new Set(finals.map((f) => f.digest));
  if (applied.size > 1 || digests.size > 1) {
    problems.push(`members did not converge: ${finals.map((f) => `${f.node} applied ${f.appliedIndex} digest ${f.digest.slice(0, 12)}`).join(', ')}`);
  }
  const strays = ids.filter((id) => !members.includes(id) && cluster.isRunning(id));
  if (strays.length > 0) problems.push(`not members but still running: ${strays.join(', ')}`);
  if (unexpectedExits.length > 0) problems.push(`members exited by themselves during the run: ${unexpectedExits.join('; ')}`);
  const index = finals[0]?.appliedIndex ?? 0;
  return {
    name,
    valid: problems.length === 0,
    summary:
      problems.length === 0
        ? `${describeConfiguration(final)} (configuration index ${final.configIndex}, leader ${final.leader ?? 'none'}); all ${members.length} at applied index ${index} with one digest`
        : `${describeConfiguration(final)}: ${problems.join('; ')}`,
    details: problems.join('\n'),
  };
}

/** The subscribe workload's checkers, over the committed log put together from the final windows and the tailer. */
function subscriptionCheckers(
  history: readonly ClientEvent[],
  subscribed: SubscribeOutcome,
  finals: readonly NodeFinal[],
  observed: ObservedLog | undefined,
): CheckerResult[] {
  const log = committedLog(finals, observed);
  return [fromVerdict(checkSubscriptions({ history, subscribers: subscribed.records, log })), fromVerdict(checkConsumerPositions(history))];
}

function fromVerdict(verdict: CheckVerdict): CheckerResult {
  return { name: verdict.name, valid: verdict.valid, summary: verdict.summary, details: verdict.problems.join('\n') };
}

function linearizability(history: readonly ClientEvent[], timeoutMs: number): CheckerResult {
  const started = Date.now();
  const result = checkLinearizability(
    history.filter((e) => e.f !== 'append'),
    { timeoutMs },
  );
  const bad = result.keys.filter((k) => k.valid !== true);
  const ms = Date.now() - started;
  const summary =
    result.valid === true
      ? `${result.keys.length} keys linearizable (${ms} ms)`
      : `${bad.filter((k) => k.valid === false).length} of ${result.keys.length} keys not linearizable` +
        `${bad.some((k) => k.valid === 'unknown') ? `, ${bad.filter((k) => k.valid === 'unknown').length} undecided in time` : ''}: ${bad.map((k) => k.key).join(', ')}`;
  return {
    name: 'linearizability',
    valid: result.valid,
    summary,
    details: bad.map((k) => (k.valid === false ? formatViolation(k) : `${k.key}: undecided within ${timeoutMs} ms`)).join('\n\n'),
  };
}

/** After the heal, within the bound: every member follows one leader, and a write through it commits. */
async function checkLiveness(cluster: ProcessCluster, nodes: readonly string[], timeoutMs: number): Promise<CheckerResult> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let leader: string | null = null;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      leader ??= await cluster.waitForLeader(nodes, Math.max(1, deadline - Date.now()));
      const leaderAt = Date.now() - started;
      await cluster.call<WriteReply>(leader, 'put', { key: Buffer.from('jepsen-lite-liveness'), value: Buffer.from('1') }, 2_000);
      return {
        name: 'liveness after heal',
        valid: true,
        summary: `leader ${leader} after ${(leaderAt / 1000).toFixed(1)} s, a write committed after ${((Date.now() - started) / 1000).toFixed(1)} s (bound ${timeoutMs / 1000} s)`,
        details: '',
      };
    } catch (error) {
      lastError = (error as Error).message;
      leader = null;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return {
    name: 'liveness after heal',
    valid: false,
    summary: `no leader with a committed write within ${timeoutMs / 1000} s of healing: ${lastError}`,
    details: lastError,
  };
}

/**
 * Waits until every node has applied the same commit index (bounded), then
 * reads each one's committed log and state. A node that does not answer is
 * returned in `missing`, with why.
 */
async function collectFinals(
  cluster: ProcessCluster,
  nodes: readonly string[],
  timeoutMs: number,
): Promise<{ finals: NodeFinal[]; missing: string[] }> {
  const deadline = Date.now() + timeoutMs;
  let statuses: StatusReply[] = [];
  while (Date.now() < deadline) {
    statuses = await Promise.all(nodes.map((id) => cluster.status(id))).catch(() => []);
    const indexes = new Set(statuses.flatMap((s) => [s.commitIndex, s.appliedIndex]));
    if (statuses.length === nodes.length && indexes.size === 1) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const missing: string[] = [];
  // Not converged in time: take them as they are, and let the log checks say how they differ.
  if (statuses.length !== nodes.length) {
    const answers = await Promise.allSettled(nodes.map((id) => cluster.status(id)));
    statuses = [];
    answers.forEach((answer, i) => {
      if (answer.status === 'fulfilled') statuses.push(answer.value);
      else
        missing.push(
          `${nodes[i]}: ${(answer.reason as Error).message}${cluster.isRunning(nodes[i] as string) ? '' : ' (its process is not running)'}`,
        );
    });
  }
  const finals: NodeFinal[] = [];
  for (const status of statuses) {
    const { firstIndex, entries } = await readHeldLog(cluster, status.node, status.firstLogIndex, status.commitIndex);
    // A snapshot taken since the status moved the log's start: report the snapshot that did it.
    const { snapshotIndex } = firstIndex === status.firstLogIndex ? status : await cluster.status(status.node);
    finals.push({
      node: status.node,
      commitIndex: status.commitIndex,
      appliedIndex: status.appliedIndex,
      digest: status.digest,
      firstIndex,
      snapshotIndex,
      entries,
    });
  }
  return { finals, missing };
}

function countOperations(events: readonly ClientEvent[]): Record<string, OperationCounts> {
  const counts: Record<string, { ok: number; fail: number; info: number }> = {};
  for (const event of events) {
    if (event.type === 'invoke') continue;
    const row = (counts[event.f] ??= { ok: 0, fail: 0, info: 0 });
    row[event.type]++;
  }
  return counts;
}
