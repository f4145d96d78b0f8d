/**
 * One soak run: a fresh 3-node cluster under closed-loop Put load for a fixed
 * time, sampled every interval (each node's RSS, data-dir size and indexes),
 * with a follower restarted now and then while the load keeps running.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { StatusReply } from '../../src/node/client-proto.js';
import { BenchClient } from '../cluster/client.js';
import { closedLoop, errorKind, now } from '../cluster/load.js';
import { type LatencyStats, latencyStats, r1 } from '../cluster/stats.js';
import { SpawnedTarget } from '../cluster/target.js';
import { dirBytes, readRssBytes, toMiB } from './footprint.js';
import { type RestartResult, restartNode } from './restart.js';

export interface SoakOptions {
  readonly durationS: number;
  readonly intervalS: number;
  readonly concurrency: number;
  readonly keys: number;
  readonly valueSize: number;
  /** 0 = never restart. */
  readonly restartEveryS: number;
  readonly timeoutMs: number;
  readonly nodeArgs: readonly string[];
  readonly logLevel: string;
  readonly execArgv: readonly string[];
}

export interface NodeSample {
  readonly node: string;
  readonly role: string | null;
  readonly pid: number | null;
  readonly rss_mib: number | null;
  readonly data_mib: number;
  readonly commit: number | null;
  readonly applied: number | null;
  readonly last: number | null;
  /** First log index the node still holds, when its Status reports one (not before compaction is wired). */
  readonly first: number | null;
}

export interface IntervalSample {
  readonly t_s: number;
  /** Puts acknowledged since the start. */
  readonly writes: number;
  /** Puts acknowledged in this interval, per second. */
  readonly writes_per_s: number;
  readonly errors: number;
  readonly lat_ms: LatencyStats;
  readonly nodes: readonly NodeSample[];
}

export interface NodeSummary {
  /** Over the samples after the first interval: the first snapshot is due within it at the default thresholds. */
  readonly rss_min_mib: number | null;
  readonly rss_max_mib: number | null;
  readonly rss_last_mib: number | null;
  readonly data_max_mib: number;
  readonly data_last_mib: number;
}

export interface SoakRun {
  readonly node_args: readonly string[];
  /** Spawn → a leader, on empty data dirs: the fixed part of every restart time. */
  readonly cluster_start_ms: number;
  readonly seconds: number;
  readonly writes: number;
  readonly writes_per_s: number;
  readonly errors: number;
  readonly error_kinds: Record<string, number>;
  readonly lat_ms: LatencyStats;
  readonly nodes: Record<string, NodeSummary>;
  readonly restarts: readonly RestartResult[];
  readonly samples: readonly IntervalSample[];
}

/** Spawns a cluster, soaks it, tears it down. onTarget sees the cluster (and null after teardown) so a signal handler can clean up. */
export async function runSoak(o: SoakOptions, print: (line: string) => void, onTarget: (t: SpawnedTarget | null) => void): Promise<SoakRun> {
  let target: SpawnedTarget | null = null;
  try {
    const t0 = now();
    target = await SpawnedTarget.start({ size: 3, nodeArgs: o.nodeArgs, logLevel: o.logLevel, execArgv: o.execArgv }, (t) => {
      target = t;
      onTarget(t);
    });
    // Spawn to leader on empty data dirs: the fixed start-up cost (node, tsx, gRPC, an election) that every restart pays too.
    const cluster_start_ms = Math.round(now() - t0);
    const pids = target
      .tracked()
      .map((t) => `${t.name}=${t.pid}`)
      .join(' ');
    print(
      `fresh 3-node cluster in ${target.cluster.dir}, leader ${cluster_start_ms} ms after spawn; ` +
        `node pids ${pids}; node args: ${o.nodeArgs.join(' ') || '(none)'}`,
    );
    return { cluster_start_ms, ...(await soak(target, o, print)) };
  } catch (error) {
    if (target !== null) print(describeNodes(target));
    throw error;
  } finally {
    await (target as SpawnedTarget | null)?.destroy();
    onTarget(null);
  }
}

async function soak(target: SpawnedTarget, o: SoakOptions, print: (line: string) => void): Promise<Omit<SoakRun, 'cluster_start_ms'>> {
  const load = new BenchClient(target.endpoints, o.timeoutMs);
  // Status polls on channels of their own, so they never queue behind the Puts.
  const monitor = new BenchClient(target.endpoints);
  const stop = new AbortController();
  let tEnd = Infinity;
  let writes = 0;
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  const allLatencies: number[] = [];
  let windowLatencies: number[] = [];
  let windowErrors = 0;
  const restarts: RestartResult[] = [];
  const samples: IntervalSample[] = [];
  let loadRun: Promise<void> = Promise.resolve();
  let restarter: Promise<void> = Promise.resolve();
  try {
    if ((await load.findLeaderWithin(15_000)) === null) throw new Error('no leader within 15 s of the cluster starting');
    const startedAt = now();
    loadRun = closedLoop(
      load,
      { op: 'put', concurrency: o.concurrency, keys: o.keys, valueSize: o.valueSize },
      (ok, t0, t1, error) => {
        if (t1 > tEnd) return;
        if (ok) {
          writes++;
          allLatencies.push(t1 - t0);
          windowLatencies.push(t1 - t0);
        } else {
          errors++;
          windowErrors++;
          const kind = errorKind(error);
          errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
        }
      },
      () => stop.signal.aborted,
    );
    restarter = o.restartEveryS > 0 ? restartFollowers(target, monitor, o, startedAt, stop.signal, restarts, print) : restarter;

    let writesBefore = 0;
    let tBefore = startedAt;
    for (let k = 1; ; k++) {
      const dueS = Math.min(k * o.intervalS, o.durationS);
      await delay(Math.max(0, startedAt + dueS * 1000 - now()));
      const tNow = now();
      if (dueS >= o.durationS) tEnd = tNow;
      const count = writes;
      const latencies = windowLatencies;
      const windowErrs = windowErrors;
      windowLatencies = [];
      windowErrors = 0;
      const sample: IntervalSample = {
        t_s: r1((tNow - startedAt) / 1000),
        writes: count,
        writes_per_s: Math.round((count - writesBefore) / ((tNow - tBefore) / 1000)),
        errors: windowErrs,
        lat_ms: latencyStats(latencies),
        nodes: await sampleNodes(target, monitor),
      };
      samples.push(sample);
      for (const line of describeSample(sample)) print(line);
      writesBefore = count;
      tBefore = tNow;
      if (dueS >= o.durationS) break;
    }
    const seconds = (tEnd - startedAt) / 1000;
    stop.abort();
    await loadRun;
    await restarter;
    return {
      node_args: o.nodeArgs,
      seconds: r1(seconds),
      writes,
      writes_per_s: Math.round(writes / seconds),
      errors,
      error_kinds: errorKinds,
      lat_ms: latencyStats(allLatencies),
      nodes: summarizeNodes(target.cluster.ids, samples),
      restarts,
      samples,
    };
  } finally {
    // On failures too: no worker or restart may outlive the run.
    stop.abort();
    await loadRun.catch(() => undefined);
    await restarter.catch(() => undefined);
    load.close();
    monitor.close();
  }
}

/**
 * Every restartEveryS, SIGTERM one follower and start it again, taking the
 * nodes in turn (skipping the leader: restarting it measures failover, which
 * `npm run bench` already does). None starts in the last 5 s of the run, so
 * every restart is measured under load.
 */
async function restartFollowers(
  target: SpawnedTarget,
  monitor: BenchClient,
  o: SoakOptions,
  startedAt: number,
  stopped: AbortSignal,
  out: RestartResult[],
  print: (line: string) => void,
): Promise<void> {
  const ids = target.cluster.ids;
  let lastVictim = -1;
  for (let k = 1; k * o.restartEveryS <= o.durationS - 5; k++) {
    try {
      await delay(Math.max(0, startedAt + k * o.restartEveryS * 1000 - now()), undefined, { signal: stopped });
    } catch {
      return; // aborted: the run is over
    }
    const statuses = await Promise.all(monitor.members.map((m) => monitor.status(m, 2_000).catch(() => null)));
    const followers = new Set(statuses.filter((s): s is StatusReply => s?.role === 'follower').map((s) => s.node));
    // The first follower after the one restarted last, so every node gets its turn whoever leads.
    const victim = ids.map((_, i) => ids[(lastVictim + 1 + i) % ids.length] as string).find((id) => followers.has(id));
    if (victim === undefined) {
      print(`t=${r1((now() - startedAt) / 1000)}s restart skipped: no follower answered Status`);
      continue;
    }
    lastVictim = ids.indexOf(victim);
    try {
      const r = await restartNode(target, victim, startedAt);
      out.push(r);
      print(describeRestart(r));
    } catch (error) {
      // Nothing awaits this loop until the end, so a failure must not escape it as an unhandled rejection.
      print(`t=${r1((now() - startedAt) / 1000)}s restart of ${victim} not measured: ${(error as Error).message}`);
    }
  }
}

async function sampleNodes(target: SpawnedTarget, monitor: BenchClient): Promise<NodeSample[]> {
  return Promise.all(
    target.cluster.ids.map(async (id, i) => {
      const member = monitor.members[i];
      // ProcessCluster spawns node itself with tsx loaded by --import: no wrapper process, so this pid is the node's.
      const pid = target.cluster.pid(id) ?? null;
      const [status, rss, data] = await Promise.all([
        member === undefined ? null : monitor.status(member, 2_000).catch(() => null),
        pid === null ? null : readRssBytes(pid),
        dirBytes(join(target.cluster.dir, id)),
      ]);
      return {
        node: id,
        role: status?.role ?? null,
        pid,
        rss_mib: toMiB(rss),
        data_mib: toMiB(data) as number,
        commit: status?.commitIndex ?? null,
        applied: status?.appliedIndex ?? null,
        last: status?.lastLogIndex ?? null,
        first: firstIndexOf(status),
      };
    }),
  );
}

/** Status does not report a first index yet; read it under either likely name once it does. */
function firstIndexOf(status: StatusReply | null): number | null {
  const s = status as (StatusReply & { firstIndex?: unknown; firstLogIndex?: unknown }) | null;
  const v = s?.firstIndex ?? s?.firstLogIndex;
  return typeof v === 'number' ? v : null;
}

export function summarizeNodes(ids: readonly string[], samples: readonly IntervalSample[]): Record<string, NodeSummary> {
  const out: Record<string, NodeSummary> = {};
  for (const id of ids) {
    const mine = samples.map((s) => s.nodes.find((n) => n.node === id)).filter((n): n is NodeSample => n !== undefined);
    const rss = mine
      .slice(1)
      .map((n) => n.rss_mib)
      .filter((x): x is number => x !== null);
    const data = mine.map((n) => n.data_mib);
    out[id] = {
      rss_min_mib: rss.length === 0 ? null : Math.min(...rss),
      rss_max_mib: rss.length === 0 ? null : Math.max(...rss),
      rss_last_mib: mine.at(-1)?.rss_mib ?? null,
      data_max_mib: data.length === 0 ? 0 : Math.max(...data),
      data_last_mib: mine.at(-1)?.data_mib ?? 0,
    };
  }
  return out;
}

export function describeSample(s: IntervalSample): string[] {
  return s.nodes.map((n) => {
    const role = n.role === 'leader' ? 'L' : n.role === 'follower' ? 'F' : n.role === null ? 'down' : n.role;
    return (
      `t=${s.t_s.toFixed(1).padStart(6)}s ${n.node}(${role}) writes ${s.writes} +${s.writes_per_s}/s ` +
      `p99 ${s.lat_ms.p99 ?? '-'} ms err ${s.errors} | rss ${n.rss_mib ?? '-'} MiB ` +
      `data ${n.data_mib} MiB commit ${n.commit ?? '-'} applied ${n.applied ?? '-'} last ${n.last ?? '-'} ` +
      `first ${n.first ?? '-'}`
    );
  });
}

export function describeRestart(r: RestartResult): string {
  return (
    `t=${r.t_s.toFixed(1).padStart(6)}s restart ${r.node}: stop ${r.stop_ms} ms, up ${r.up_ms ?? '-'} ms, ` +
    `caught up to commit ${r.commit_before} in ${r.caught_up_ms ?? '-'} ms (log last ${r.last_log_before})` +
    (r.error === undefined ? '' : ` FAILED: ${r.error}`)
  );
}

/** Exit state and last log lines of every node: why a cluster did not come up or fell over. */
function describeNodes(target: SpawnedTarget): string {
  return target.cluster.ids
    .map((id) => {
      const child = target.cluster.processes.get(id);
      const state = child === undefined ? 'not running' : child.exitCode !== null ? `exited ${child.exitCode}` : (child.signalCode ?? 'running');
      let tail = '';
      try {
        const lines = readFileSync(join(target.cluster.dir, `${id}.log`), 'utf8')
          .trimEnd()
          .split('\n');
        // A flag the node rejects is reported on a line of its own, above the usage text.
        const complaint = lines.filter((line) => line.startsWith('raftlog node')).slice(-1);
        tail = [...complaint, ...lines.slice(-3).filter((line) => !complaint.includes(line))].join('\n    ');
      } catch {
        tail = '(no log)';
      }
      return `  ${id}: ${state}\n    ${tail}`;
    })
    .join('\n');
}
