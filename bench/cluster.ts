/**
 * The cluster benchmark: closed-loop Put or Append load through the client
 * gRPC API of a real 3-node cluster on loopback (fsync on, as always),
 * delivery to subscribers while appends run, leader failover time, the
 * blip of planned leadership moves and client errors per failover with and
 * without requests held during elections, and a stability mode. It measures the way the etcd anchor (shared/anchors/etcd)
 * and the NATS JetStream anchor (shared/anchors/nats) do, so the numbers can
 * be set side by side.
 *
 *   npm run bench -- [--concurrency 1,16,64,256] [--ops put,append] [--duration 10] [--warmup 2] [--value-size 100]
 *                    [--keys 10000] [--subscribers 0,1,10] [--failover-trials 5] [--node-args="--tick-ms 20 ..."]
 *   npm run bench:stability -- [--stability-seconds 60]
 *   npm run bench -- --endpoints 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
 *   npm run bench -- --etcd ../shared/anchors/etcd     # each row also on etcd, then ratios
 *   npm run bench -- --ops append --subscribers 0,1,10 --nats ../shared/anchors/nats   # appends, delivery, failover vs JetStream
 *
 * Human-readable lines go to stderr, one JSON line with everything to stdout (last).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { useReadTransport, useWriteTransport } from './cluster/client.js';
import {
  type DeliveryRowResult,
  describeDeliveryRow,
  describeWriterCost,
  roundSuffix,
  runDeliveryRow,
  settleWriterCosts,
} from './cluster/delivery.js';
import { groupDeliveryRows, printRoundsTable } from './cluster/delivery-rounds.js';
import { EtcdAnchor, type EtcdFailover, type EtcdRow, type EtcdRowNotMeasured, type NotMeasured } from './cluster/etcd-anchor.js';
import { compare, type EtcdComparison, isMeasured, printComparison } from './cluster/etcd-compare.js';
import { type FailoverSummary, runFailover } from './cluster/failover.js';
import { type Goal, judgeGoals } from './cluster/goals.js';
import { describeLeadership, type LeadershipSummary, runLeadership } from './cluster/leadership.js';
import { describeCpu, describeRow, LOAD_OPS, type LoadOp, type RowResult, runLoadRow } from './cluster/load.js';
import { NATS_DURABILITY_NOTE, type NatsAck, NatsAnchor, type NatsFailover, type NatsRow } from './cluster/nats-anchor.js';
import { compareWithNats, type NatsComparison, printNatsComparison } from './cluster/nats-compare.js';
import { runStability, type StabilityResult } from './cluster/stability.js';
import { type BenchTarget, EndpointsTarget, SpawnedTarget } from './cluster/target.js';

const USAGE = `usage: npm run bench -- [options]
  --concurrency LIST       closed-loop workers per row (1,16,64,256)
  --ops LIST               what each row does: put, append (a value-size record), get (linearizable),
                           get-local (no Raft: the gRPC path alone, this load generator's ceiling) (put)
  --subscribers LIST       delivery rows, one per K (e.g. 0,1,10): appends at --delivery-concurrency,
                           each record stamped with its send time, while K Subscribe streams (COMMANDS
                           view, from the tail, spread over the nodes) read everything; K=0 is the
                           writers' baseline. Needs --value-size >= 8 (none)
  --delivery-concurrency LIST  writers in the delivery rows (64)
  --delivery-rounds N      run the delivery rows N times, every other round in reverse order; goals are
                           judged on the median over rounds, each against its own round's K=0 row (1)
  --write-transport T      how the load generator sends raftlog writes: calls (messages on one Calls
                           stream per node, as the client library does by default) or unary (one gRPC
                           call per write, as the etcd anchor must: etcd's API has nothing else) (calls)
  --read-transport T       how the load generator sends raftlog Gets (get and get-local rows): calls or
                           unary, as above (calls)
  --duration S             measured seconds per row (10)
  --warmup S               unmeasured seconds before each row (2)
  --value-size B           bytes per value (100)
  --keys N                 keys drawn uniformly from N (10000)
  --timeout-ms MS          per-request deadline (5000)
  --failover-trials N      leader kills, median reported; 0 = skip (5)
  --failover-concurrency C workers during failover (4)
  --failover-settle S      load before each kill (3)
  --failover-after S       load after the first success after the kill (2)
  --failover-subscribers K subscribers attached during each failover trial, the first on the leader
                           that gets killed; then the failover load appends (1 with --subscribers
                           or --nats, else 0)
  --leadership-trials N    transfers and graceful stops of the leader under put load, each (3); 0 = skip
  --hold-trials N          SIGKILLs of the leader per variant, requests held during elections and not
                           (--hold-without-leader-ms 0), each variant on a fresh cluster (3); 0 = skip
  --leadership-concurrency C  writers during those (16)
  --leadership-window S    writes sent this long after a move (or kill) are measured, and as long before (2)
  --stability-seconds S    stability mode instead of rows and failover: Put at C=256 for S seconds (0 = off)
  --stability-concurrency C  (256)
  --stability-poll-ms MS   Status poll interval of every node (200)
  --endpoints H:P,...      use a running cluster; no failover (we cannot restart nodes we did not start)
  --node-args="ARGS"       extra raftlog node flags for spawned nodes, e.g. --node-args="--tick-ms 20"
  --node-exec-argv="ARGS"  flags for node itself in spawned nodes, e.g. "--cpu-prof --cpu-prof-dir /tmp/prof"
  --node-main PATH         spawned nodes' entry point: src/node/main.ts through tsx (the default), or a
                           compiled main.js such as dist/node/main.js after npm run build (an installed
                           package runs that, without tsx)
  --log-level LEVEL        spawned nodes' log level (info)
  --etcd DIR               also measure the etcd anchor in DIR (cluster.sh, load.mjs, failover.mjs):
                           its own 3-member cluster, each row run on raftlog then on etcd with the
                           same load, failover too; prints raftlog/etcd ratios (rows and failover only)
  --nats DIR               also measure the NATS JetStream anchor in DIR (cluster.sh, load.mjs, failover.mjs;
                           npm ci done): its own private 3-node cluster; append rows as publish, delivery
                           rows as consume with K consumers, failover; prints raftlog/NATS ratios.
                           ${NATS_DURABILITY_NOTE}
  --nats-ack MODE          how the NATS consumers acknowledge: explicit (the anchor's default and README
                           figures) or none (like a raftlog subscriber, which acknowledges nothing) (explicit)`;

const { values: a } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,16,64,256' },
    ops: { type: 'string', default: 'put' },
    subscribers: { type: 'string', default: '' },
    'delivery-concurrency': { type: 'string', default: '64' },
    'delivery-rounds': { type: 'string', default: '1' },
    'write-transport': { type: 'string', default: 'calls' },
    'read-transport': { type: 'string', default: 'calls' },
    'failover-subscribers': { type: 'string' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    'value-size': { type: 'string', default: '100' },
    keys: { type: 'string', default: '10000' },
    'timeout-ms': { type: 'string', default: '5000' },
    'failover-trials': { type: 'string', default: '5' },
    'failover-concurrency': { type: 'string', default: '4' },
    'failover-settle': { type: 'string', default: '3' },
    'failover-after': { type: 'string', default: '2' },
    'leadership-trials': { type: 'string', default: '3' },
    'hold-trials': { type: 'string', default: '3' },
    'leadership-concurrency': { type: 'string', default: '16' },
    'leadership-window': { type: 'string', default: '2' },
    'stability-seconds': { type: 'string', default: '0' },
    'stability-concurrency': { type: 'string', default: '256' },
    'stability-poll-ms': { type: 'string', default: '200' },
    endpoints: { type: 'string' },
    'node-args': { type: 'string', default: '' },
    'node-exec-argv': { type: 'string', default: '' },
    'node-main': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    etcd: { type: 'string' },
    nats: { type: 'string' },
    'nats-ack': { type: 'string', default: 'explicit' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (a.help) {
  console.error(USAGE);
  process.exit(0);
}

function num(name: keyof typeof a, min: number): number {
  const n = Number(a[name]);
  if (!Number.isFinite(n) || n < min) {
    console.error(`--${name} must be a number >= ${min}, got ${String(a[name])}\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
}
const ops = a.ops.split(',').map((op) => op.trim()) as LoadOp[];
if (ops.some((op) => !LOAD_OPS.includes(op))) {
  console.error(`--ops must list some of ${LOAD_OPS.join(', ')}, got ${a.ops}`);
  process.exit(2);
}
function integers(name: 'concurrency' | 'delivery-concurrency' | 'subscribers', min: number): number[] {
  const text = a[name].trim();
  const xs = text === '' ? [] : text.split(',').map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < min)) {
    console.error(`--${name} must list integers >= ${min}, got ${text}`);
    process.exit(2);
  }
  return xs;
}
const concurrencies = integers('concurrency', 1);
const subscriberCounts = integers('subscribers', 0);
const deliveryConcurrencies = integers('delivery-concurrency', 1);
if (a['nats-ack'] !== 'explicit' && a['nats-ack'] !== 'none') {
  console.error(`--nats-ack must be explicit or none, got ${a['nats-ack']}`);
  process.exit(2);
}
const natsAck: NatsAck = a['nats-ack'];
if (a['write-transport'] !== 'unary' && a['write-transport'] !== 'calls') {
  console.error(`--write-transport must be unary or calls, got ${a['write-transport']}`);
  process.exit(2);
}
useWriteTransport(a['write-transport']);
if (a['read-transport'] !== 'unary' && a['read-transport'] !== 'calls') {
  console.error(`--read-transport must be unary or calls, got ${a['read-transport']}`);
  process.exit(2);
}
useReadTransport(a['read-transport']);
const o = {
  deliveryRounds: num('delivery-rounds', 1),
  durationS: num('duration', 0.1),
  warmupS: num('warmup', 0),
  valueSize: num('value-size', 0),
  keys: num('keys', 1),
  timeoutMs: num('timeout-ms', 1),
  failoverTrials: num('failover-trials', 0),
  failoverConcurrency: num('failover-concurrency', 1),
  failoverSettleS: num('failover-settle', 0),
  failoverAfterS: num('failover-after', 0),
  leadershipTrials: num('leadership-trials', 0),
  holdTrials: num('hold-trials', 0),
  leadershipConcurrency: num('leadership-concurrency', 1),
  leadershipWindowS: num('leadership-window', 0.1),
  stabilityS: num('stability-seconds', 0),
  stabilityConcurrency: num('stability-concurrency', 1),
  stabilityPollMs: num('stability-poll-ms', 10),
  failoverSubscribers:
    a['failover-subscribers'] !== undefined ? num('failover-subscribers', 0) : a.nats !== undefined || subscriberCounts.some((k) => k > 0) ? 1 : 0,
};
if ((a.etcd !== undefined || a.nats !== undefined) && o.stabilityS > 0) {
  console.error(`--etcd and --nats compare rows and failover; they do not apply to --stability-seconds\n\n${USAGE}`);
  process.exit(2);
}
if ((subscriberCounts.length > 0 || o.failoverSubscribers > 0) && o.valueSize < 8) {
  console.error(`delivery rows and failover subscribers stamp each record's first 8 bytes with its send time: --value-size must be >= 8`);
  process.exit(2);
}
const words = (s: string): string[] => s.split(/\s+/).filter(Boolean);
const nodeArgs = words(a['node-args']);
const execArgv = words(a['node-exec-argv']);

let target: BenchTarget | null = null;
/** A cluster of the hold comparison, while it runs. */
let holdTarget: BenchTarget | null = null;
let etcd: EtcdAnchor | null = null;
let nats: NatsAnchor | null = null;
// Ctrl-C or a kill must not leave node processes, anchor servers or temp dirs behind.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`\n${signal}: stopping the cluster${etcd || nats ? 's' : ''}`);
    void Promise.allSettled([target?.destroy(), holdTarget?.destroy(), etcd?.stop(), nats?.stop()]).finally(() => process.exit(130));
  });
}

const startedAt = new Date().toISOString();
const rows: RowResult[] = [];
let failover: FailoverSummary | { skipped: string } | null = null;
let leadership: LeadershipSummary | null = null;
let stability: StabilityResult | null = null;
const etcdRows: (EtcdRow | EtcdRowNotMeasured)[] = [];
let etcdFailover: EtcdFailover | NotMeasured = { na: `--failover-trials ${o.failoverTrials}` };
let comparison: EtcdComparison | null = null;
const delivery: DeliveryRowResult[] = [];
const natsRows: (NatsRow | NotMeasured)[] = [];
const natsDelivery: (NatsRow | NotMeasured)[] = [];
let natsFailover: NatsFailover | NotMeasured = { na: `--failover-trials ${o.failoverTrials}` };
let natsComparison: NatsComparison | null = null;
let goals: Goal[] = [];
try {
  // First, so a wrong DIR fails before any cluster starts.
  if (a.etcd !== undefined) etcd = await EtcdAnchor.prepare(a.etcd);
  if (a.nats !== undefined) nats = await NatsAnchor.prepare(a.nats, natsAck);
  if (a.endpoints !== undefined) {
    target = await EndpointsTarget.connect(
      a.endpoints
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean),
    );
    const found = target
      .tracked()
      .map((t) => `${t.name}=${t.pid}`)
      .join(' ');
    console.error(`using running cluster ${a.endpoints}; node pids for CPU: ${found || 'none visible'}`);
  } else {
    target = await SpawnedTarget.start({ size: 3, nodeArgs, logLevel: a['log-level'], execArgv, nodeMain: a['node-main'] }, (t) => (target = t));
    const pids = target
      .tracked()
      .map((t) => `${t.name}=${t.pid}`)
      .join(' ');
    console.error(
      `fresh 3-node cluster in ${(target as SpawnedTarget).cluster.dir}; pids ${pids}; loadgen pid ${process.pid}` +
        `${nodeArgs.length ? `; node args ${nodeArgs.join(' ')}` : ''}`,
    );
  }
  const t = target;
  if (etcd !== null) {
    console.error(`etcd anchor ${etcd.dir}: 3 members on ${etcd.endpoints.join(',')}, data in ${etcd.dataDir}`);
    await etcd.start();
  }
  if (nats !== null) {
    console.error(`NATS anchor ${nats.dir}: 3 nodes on ${nats.endpoints.join(',')}, data in ${nats.dataDir}; ${NATS_DURABILITY_NOTE}`);
    await nats.start();
  }
  const shape = { valueSize: o.valueSize, keys: o.keys };

  if (o.stabilityS > 0) {
    console.error(
      `stability: put c=${o.stabilityConcurrency} for ${o.stabilityS} s after ${o.warmupS} s warm-up, Status polls every ${o.stabilityPollMs} ms`,
    );
    stability = await runStability(t, {
      ...shape,
      concurrency: o.stabilityConcurrency,
      seconds: o.stabilityS,
      warmupS: o.warmupS,
      pollMs: o.stabilityPollMs,
      timeoutMs: o.timeoutMs,
    });
    const s = stability;
    const l = s.lat_ms;
    console.error(
      `stability c=${s.concurrency} ${s.seconds} s: leader changes ${s.leader_changes}, term changes ${s.term_changes} ` +
        `(term ${s.term_start} -> ${s.term_end}, delta ${s.term_delta}), leaderless polls ${s.leaderless_polls}/${s.polls}, ` +
        `elections in logs ${s.log_elections === null ? 'n/a' : s.log_elections.length}, status errors ${s.status_errors}, ` +
        `slowest Status ${s.status_max_ms} ms`,
    );
    console.error(
      `  ${s.ops_per_s} ops/s, p50 ${l.p50} p90 ${l.p90} p99 ${l.p99} p99.9 ${l.p999} max ${l.max} mean ${l.mean} ms, ` +
        `errors ${s.errors}, ${describeCpu(s.cpu, s.leader_end ?? undefined)}`,
    );
    for (const e of s.events) console.error(`  t=${e.t_s}s ${e.kind}: ${String(e.from)} -> ${String(e.to)}`);
    console.error(`target (0 leader changes, no new term): ${s.target_met ? 'met' : 'NOT met'}`);
  } else {
    for (const [op, concurrency] of ops.flatMap((op) => concurrencies.map((c) => [op, c] as const))) {
      const row = await runLoadRow({
        ...shape,
        op,
        concurrency,
        endpoints: t.endpoints,
        warmupS: o.warmupS,
        durationS: o.durationS,
        timeoutMs: o.timeoutMs,
        tracked: () => t.tracked(),
      });
      rows.push(row);
      console.error(describeRow(row));
      if (row.error_kinds !== undefined) console.error(`  errors: ${JSON.stringify(row.error_kinds)}`);
      // Right after raftlog's row, so both see the same machine conditions.
      if (etcd !== null) {
        const e = await etcd.row({ ...shape, op, concurrency, durationS: o.durationS, warmupS: o.warmupS, timeoutMs: o.timeoutMs });
        etcdRows.push(e);
        if (!isMeasured(e)) console.error(`etcd ${op} c=${concurrency}: n/a (${e.na})`);
      }
      if (nats !== null) {
        const n =
          op === 'append'
            ? await nats.appendRow({ concurrency, durationS: o.durationS, warmupS: o.warmupS, valueSize: o.valueSize, timeoutMs: o.timeoutMs })
            : { na: `the anchor has no ${op} (only append rows are measured on NATS)` };
        natsRows.push(n);
        if ('na' in n && op === 'append') console.error(`NATS append c=${concurrency}: n/a (${n.na})`);
      }
    }
    const deliveryPairs = deliveryConcurrencies.flatMap((c) => subscriberCounts.map((k) => [c, k] as const));
    const deliveryRuns = Array.from({ length: Math.floor(o.deliveryRounds) }, (_, round) =>
      (round % 2 === 0 ? deliveryPairs : [...deliveryPairs].reverse()).map(([c, k]) => [c, k, round] as const),
    ).flat();
    for (const [concurrency, subscribers, round] of deliveryRuns) {
      const row = await runDeliveryRow({
        endpoints: t.endpoints,
        concurrency,
        subscribers,
        round,
        valueSize: o.valueSize,
        warmupS: o.warmupS,
        durationS: o.durationS,
        timeoutMs: o.timeoutMs,
        tracked: () => t.tracked(),
      });
      delivery.push(row);
      settleWriterCosts(delivery, rows);
      console.error(describeDeliveryRow(row));
      for (const [i, p] of row.per_subscriber.entries()) {
        if (p.coverage_problems > 0 || p.resubscribes > 0 || p.acked_before_start > 0) {
          console.error(
            `  subscriber ${i} on ${p.nodes.join('->')}: ${p.coverage_problems} coverage problems ${JSON.stringify(p.problems)}, ` +
              `stream errors ${JSON.stringify(p.stream_errors)}, acked before its start ${p.acked_before_start}`,
          );
        }
      }
      if (row.error_kinds !== undefined) console.error(`  errors: ${JSON.stringify(row.error_kinds)}`);
      if (nats !== null) {
        const n = await nats.deliveryRow({
          concurrency,
          consumers: subscribers,
          durationS: o.durationS,
          warmupS: o.warmupS,
          valueSize: o.valueSize,
          timeoutMs: o.timeoutMs,
        });
        natsDelivery.push(n);
        if ('na' in n) console.error(`NATS deliver c=${concurrency} K=${subscribers}: n/a (${n.na})`);
      }
    }
    if (o.failoverTrials > 0 && !t.canKill) {
      failover = { skipped: 'a cluster given by --endpoints: its nodes cannot be killed and restarted safely from here' };
      console.error(`failover skipped: ${failover.skipped}`);
      etcdFailover = { na: 'no raftlog failover to compare with' };
    } else if (o.failoverTrials > 0) {
      const withSubscribers = o.failoverSubscribers > 0 ? ` with ${o.failoverSubscribers} subscriber(s) attached, the first on the leader` : '';
      console.error(
        `failover: ${o.failoverTrials} trials, ${o.failoverSubscribers > 0 ? 'append' : 'put'} c=${o.failoverConcurrency}` +
          `${withSubscribers}, SIGKILL the leader after ${o.failoverSettleS} s`,
      );
      failover = await runFailover(t, {
        ...shape,
        concurrency: o.failoverConcurrency,
        trials: o.failoverTrials,
        settleS: o.failoverSettleS,
        afterS: o.failoverAfterS,
        timeoutMs: o.timeoutMs,
        subscribers: o.failoverSubscribers,
        onTrial: (r) => {
          console.error(
            `  trial ${r.trial}: killed ${r.killed} -> ${r.new_leader}: unavail ${r.unavail_ms} ms, ` +
              `gap ${r.gap_ms} ms, term +${r.term_delta}, errors ${r.errors_after_kill}, caught up ${r.catch_up_ms} ms after restart`,
          );
          for (const s of r.subscribers ?? []) {
            console.error(
              `    subscriber on ${s.on_at_kill}${s.on_killed_node ? ' (the killed node)' : ''} -> ${s.nodes.join('->')}: ` +
                `kill -> next entry delivered ${s.next_delivery_ms} ms, -> first record sent after the kill ${s.fresh_delivery_ms} ms; ` +
                `${s.coverage_problems === 0 ? 'no gap in indexes' : `${s.coverage_problems} COVERAGE PROBLEMS ${JSON.stringify(s.problems)}`}, ` +
                `undelivered ${s.undelivered_after_drain} of ${s.acked} acked`,
            );
          }
        },
      });
      console.error(
        `failover median unavail ${failover.median_unavail_ms} ms, gap ${failover.median_gap_ms} ms ` +
          `(unavail ${JSON.stringify(failover.unavail_ms)}, term delta ${JSON.stringify(failover.term_delta)})` +
          (failover.subscribers > 0
            ? `; subscriber: kill -> next delivery median ${failover.median_subscriber_next_delivery_ms} ms, -> fresh record ` +
              `${failover.median_subscriber_fresh_delivery_ms} ms, coverage problems ${failover.subscriber_coverage_problems}, ` +
              `undelivered ${failover.subscriber_undelivered}`
            : ''),
      );
      if (etcd !== null) {
        console.error(`etcd failover: ${o.failoverTrials} trials, put c=${o.failoverConcurrency}`);
        etcdFailover = await etcd.failover(
          {
            ...shape,
            trials: o.failoverTrials,
            concurrency: o.failoverConcurrency,
            settleS: o.failoverSettleS,
            afterS: o.failoverAfterS,
          },
          (line) => console.error(`  etcd ${line}`),
        );
      }
      if (nats !== null) {
        console.error(
          `NATS failover: ${o.failoverTrials} trials, publish c=${o.failoverConcurrency} (stream leader SIGKILL; no consumers: the anchor has none in failover)`,
        );
        natsFailover = await nats.failover(
          {
            trials: o.failoverTrials,
            concurrency: o.failoverConcurrency,
            settleS: o.failoverSettleS,
            afterS: o.failoverAfterS,
            valueSize: o.valueSize,
          },
          (line) => console.error(`  nats ${line}`),
        );
      }
    }
    if (o.leadershipTrials > 0 || o.holdTrials > 0) {
      console.error(
        `leadership moves: ${o.leadershipTrials} transfers and ${o.leadershipTrials} graceful stops of the leader, ` +
          `put c=${o.leadershipConcurrency}, writes sent within ${o.leadershipWindowS} s after each move measured`,
      );
      leadership = await runLeadership(t, {
        ...shape,
        concurrency: o.leadershipConcurrency,
        timeoutMs: o.timeoutMs,
        moveTrials: o.leadershipTrials,
        holdTrials: o.holdTrials,
        settleS: o.failoverSettleS,
        windowS: o.leadershipWindowS,
        nodeArgs,
        logLevel: a['log-level'],
        onTarget: (held) => (holdTarget = held),
        log: (line) => console.error(line),
      });
      for (const line of describeLeadership(leadership)) console.error(line);
    }
    printTable(rows);
    printDeliveryTable(delivery);
    if (etcd !== null) {
      comparison = {
        dir: etcd.dir,
        endpoints: etcd.endpoints,
        rows: etcdRows,
        failover: etcdFailover,
        ...compare(rows, etcdRows, failover, etcdFailover),
      };
      printComparison(rows, comparison, failover);
    }
    if (nats !== null) {
      natsComparison = {
        dir: nats.dir,
        endpoints: nats.endpoints,
        note: NATS_DURABILITY_NOTE,
        consumer_ack: natsAck,
        rows: natsRows,
        delivery: natsDelivery,
        failover: natsFailover,
        ...compareWithNats(rows, natsRows, delivery, natsDelivery, failover, natsFailover),
      };
      printNatsComparison(rows, delivery, natsComparison, failover);
    }
    printRoundsTable(groupDeliveryRows(delivery), (i) => natsComparison?.delivery_ratios[i]?.e2e_p99_ratio ?? null);
    goals = judgeGoals(delivery, failover, natsComparison);
    for (const g of goals) console.error(`goal: ${g.goal} [${g.row}]: ${g.met === null ? 'n/a' : g.met ? 'met' : 'NOT met'} (${g.value})`);
  }

  console.log(
    JSON.stringify({
      bench: 'cluster',
      started_at: startedAt,
      target: t.kind,
      endpoints: t.endpoints.map((e) => e.endpoint),
      node_args: nodeArgs,
      log_level: t.kind === 'spawned' ? a['log-level'] : null,
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null, node: process.version },
      value_size: o.valueSize,
      write_transport: a['write-transport'],
      read_transport: a['read-transport'],
      keys: o.keys,
      duration_s: o.durationS,
      warmup_s: o.warmupS,
      rows,
      delivery,
      failover,
      stability,
      leadership,
      goals,
      ...(comparison !== null ? { etcd: comparison } : {}),
      ...(natsComparison !== null ? { nats: natsComparison } : {}),
    }),
  );
} catch (error) {
  if (!interrupted) {
    console.error(`bench failed: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  }
} finally {
  try {
    await target?.destroy();
  } finally {
    try {
      await etcd?.stop();
    } finally {
      await nats?.stop();
    }
  }
}

function printTable(rs: readonly RowResult[]): void {
  if (rs.length === 0) return;
  console.error('\n| row | ops/s | p50 ms | p90 | p99 | p99.9 | max | mean | errors | CPU %: loadgen / leader / followers / machine |');
  console.error('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rs) {
    const l = r.lat_ms;
    const leader = r.cpu.node_pct[r.leader];
    const followers = Object.entries(r.cpu.node_pct)
      .filter(([n]) => n !== r.leader)
      .map(([, p]) => p)
      .join(', ');
    console.error(
      `| ${r.op} c=${r.concurrency} | ${r.ops_per_s} | ${l.p50} | ${l.p90} | ${l.p99} | ${l.p999} | ${l.max} | ${l.mean} | ${r.errors} | ` +
        `${r.cpu.loadgen_pct} / ${leader ?? '?'} / ${followers} / ${r.cpu.machine_busy_pct} |`,
    );
  }
  console.error('');
}

function printDeliveryTable(rs: readonly DeliveryRowResult[]): void {
  if (rs.length === 0) return;
  console.error(
    '| row | writers/s | vs K=0 | write p50 / p99 ms | delivered/s each | e2e p50 / p90 / p99 / max ms | lag at end | ' +
      'undelivered after drain | coverage problems | CPU %: loadgen / machine |',
  );
  console.error('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rs) {
    const e = r.e2e_ms;
    const k0 = r.subscribers === 0;
    console.error(
      `| deliver c=${r.concurrency} K=${r.subscribers}${roundSuffix(r)} | ${r.ops_per_s} | ${r.writer_cost_pct === null ? '-' : describeWriterCost(r.writer_cost_pct)} | ` +
        `${r.lat_ms.p50} / ${r.lat_ms.p99} | ${k0 ? '-' : JSON.stringify(r.delivered_per_s)} | ` +
        `${k0 ? '-' : `${e.p50} / ${e.p90} / ${e.p99} / ${e.max}`} | ${k0 ? '-' : JSON.stringify(r.lag_at_end)} | ` +
        `${k0 ? '-' : `${JSON.stringify(r.undelivered_after_drain)} of ${r.acked_total}`} | ${k0 ? '-' : JSON.stringify(r.coverage_problems)} | ` +
        `${r.cpu.loadgen_pct} / ${r.cpu.machine_busy_pct} |`,
    );
  }
  console.error('');
}
