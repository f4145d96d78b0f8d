/**
 * Drives the NATS JetStream anchor (shared/anchors/nats: cluster.sh,
 * load.mjs, failover.mjs) from the cluster benchmark, so JetStream gets the
 * same load as raftlog on the same machine in the same run: append rows map
 * to `load.mjs --op publish`, delivery rows to `--op consume --consumers K`.
 * The anchor lives outside the project and is used only with --nats DIR.
 *
 * Its cluster gets a private data dir and free client, route and monitoring
 * ports (cluster.sh reads them from the environment), so an anchor someone
 * else runs on this machine is neither measured nor stopped by us; and every
 * nats-server started on that data dir is gone when stop() returns.
 *
 * JetStream acknowledges a publish before any fsync (the anchor's README
 * shows it): its figures are not of comparable durability.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePortGroups, parseLastJson, runAnchorProcess } from './anchor-process.js';
import { sleep } from './client.js';
import type { NotMeasured } from './etcd-anchor.js';
import type { LatencyStats } from './stats.js';

export const NATS_DURABILITY_NOTE = 'NATS acknowledges before fsync (not comparable durability)';

/** load.mjs's JSON line: the fields the comparison reads; the rest is kept as it came. */
export interface NatsRow {
  readonly op: 'publish' | 'consume';
  readonly concurrency: number;
  readonly ops_per_s: number;
  readonly errors: number;
  readonly lat_ms: LatencyStats;
  /** consume only: per consumer. */
  readonly delivered_per_s?: number[];
  readonly e2e_ms?: LatencyStats;
  readonly lag_at_end?: number[];
  readonly undelivered_after_drain?: number[];
  readonly [field: string]: unknown;
}

/** failover.mjs's summary line. */
export interface NatsFailover {
  readonly summary: 'failover';
  readonly trials: number;
  readonly median_unavail_ms: number | null;
  readonly median_gap_ms: number | null;
  readonly unavail_ms: (number | null)[];
  readonly [field: string]: unknown;
}

export interface NatsLoad {
  readonly concurrency: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly valueSize: number;
  readonly timeoutMs: number;
}

export interface NatsFailoverLoad {
  readonly trials: number;
  readonly concurrency: number;
  readonly settleS: number;
  readonly afterS: number;
  readonly valueSize: number;
}

/** How the anchor's consumers acknowledge: explicit (its default, the README's figures) or none (closer to a raftlog subscriber, which acks nothing). */
export type NatsAck = 'explicit' | 'none';

/** cluster.sh's default client port; routes and monitoring follow 10 and 20 above. */
const DEFAULT_CLIENT_PORT = 24221;

export class NatsAnchor {
  private child: ChildProcess | null = null;
  private stopped: Promise<void> | null = null;

  private constructor(
    readonly dir: string,
    readonly dataDir: string,
    private readonly clientPort0: number,
    readonly ack: NatsAck,
  ) {}

  /** Checks the anchor's files and dependencies and reserves a data dir and ports; starts nothing. */
  static async prepare(dir: string, ack: NatsAck): Promise<NatsAnchor> {
    const abs = resolve(dir);
    for (const file of ['cluster.sh', 'load.mjs']) {
      if (!existsSync(join(abs, file))) throw new Error(`--nats ${dir}: no ${file} in ${abs}`);
    }
    // cluster.sh would run npm install itself: better to say so than to reach the registry mid-benchmark.
    if (!existsSync(join(abs, 'node_modules', 'nats'))) throw new Error(`--nats ${dir}: its dependencies are missing; run \`cd ${abs} && npm ci\``);
    const port0 = await freePortGroups(DEFAULT_CLIENT_PORT, 3, 10, 'NATS');
    return new NatsAnchor(abs, mkdtempSync(join(tmpdir(), 'raftlog-bench-nats-')), port0, ack);
  }

  get endpoints(): string[] {
    return [0, 1, 2].map((i) => `127.0.0.1:${this.clientPort0 + i}`);
  }

  /** Starts the 3 nodes and creates the R3 stream (cluster.sh installs nats-server with apt if it is missing). */
  async start(): Promise<void> {
    await this.run('bash', [join(this.dir, 'cluster.sh'), 'start'], () => {});
  }

  /** Closed-loop publishes at the row's concurrency: the counterpart of raftlog's append row. */
  appendRow(o: NatsLoad): Promise<NatsRow | NotMeasured> {
    return this.load(['--op', 'publish', ...this.loadFlags(o)]);
  }

  /** Publishes at the row's concurrency while K durable pull consumers read every message; K = 0 is a plain publish row. */
  deliveryRow(o: NatsLoad & { readonly consumers: number }): Promise<NatsRow | NotMeasured> {
    if (o.consumers === 0) return this.appendRow(o);
    return this.load(['--op', 'consume', '--consumers', String(o.consumers), '--ack', this.ack, ...this.loadFlags(o)]);
  }

  /** failover.mjs's trials (it restarts each killed node itself, through cluster.sh in the same environment). */
  async failover(o: NatsFailoverLoad, onTrial: (line: string) => void): Promise<NatsFailover | NotMeasured> {
    if (!existsSync(join(this.dir, 'failover.mjs'))) return { na: `no failover.mjs in ${this.dir}` };
    try {
      const out = await this.node(
        'failover.mjs',
        [
          '--trials',
          String(o.trials),
          '--concurrency',
          String(o.concurrency),
          '--settle',
          String(o.settleS),
          '--after',
          String(o.afterS),
          '--value-size',
          String(o.valueSize),
          ...this.clusterFlags(),
        ],
        onTrial,
      );
      const summary = parseLastJson(out, 'failover.mjs');
      if (summary.summary !== 'failover') throw new Error(`failover.mjs printed no summary: ${JSON.stringify(summary)}`);
      return summary as NatsFailover;
    } catch (error) {
      if (this.stopped !== null) throw error;
      return { na: `failed: ${(error as Error).message}` };
    }
  }

  /**
   * Stops whatever child is running and the cluster, makes sure no
   * nats-server on our data dir survives (SIGKILL for any that does), and
   * removes the data dir; safe to call more than once.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.child?.kill('SIGTERM');
      try {
        await this.run('bash', [join(this.dir, 'cluster.sh'), 'stop'], () => {}).catch((error: unknown) => {
          console.error(`nats cluster.sh stop failed: ${(error as Error).message}; killing its servers directly`);
        });
      } finally {
        await this.killLeftovers();
        rmSync(this.dataDir, { recursive: true, force: true });
      }
    })();
    return this.stopped;
  }

  /** nats-server processes whose config lies in our data dir: none should remain after cluster.sh stop. */
  serversRunning(): number[] {
    const found: number[] = [];
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() !== 'nats-server') continue;
        const cmdline = readFileSync(`/proc/${d}/cmdline`, 'utf8');
        const state = readFileSync(`/proc/${d}/stat`, 'utf8');
        if (cmdline.includes(this.dataDir) && state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) !== 'Z') found.push(Number(d));
      } catch {
        // exited while we looked
      }
    }
    return found;
  }

  private async killLeftovers(): Promise<void> {
    let left = this.serversRunning();
    if (left.length === 0) return;
    console.error(`nats: SIGKILL for servers still running on ${this.dataDir}: pids ${left.join(' ')}`);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    for (let i = 0; i < 50 && (left = this.serversRunning()).length > 0; i++) await sleep(100);
    if (left.length > 0) console.error(`nats: servers ${left.join(' ')} still alive after SIGKILL`);
  }

  private async load(args: string[]): Promise<NatsRow | NotMeasured> {
    try {
      const row = parseLastJson(await this.node('load.mjs', args), 'load.mjs');
      if (typeof row.ops_per_s !== 'number' || typeof row.lat_ms !== 'object' || row.lat_ms === null) {
        throw new Error(`load.mjs printed no ops_per_s/lat_ms: ${JSON.stringify(row)}`);
      }
      return row as NatsRow;
    } catch (error) {
      if (this.stopped !== null) throw error;
      return { na: `failed: ${(error as Error).message}` };
    }
  }

  private loadFlags(o: NatsLoad): string[] {
    return [
      '--concurrency',
      String(o.concurrency),
      '--duration',
      String(o.durationS),
      '--warmup',
      String(o.warmupS),
      '--value-size',
      String(o.valueSize),
      '--timeout-ms',
      String(o.timeoutMs),
      ...this.clusterFlags(),
    ];
  }

  private clusterFlags(): string[] {
    return ['--endpoints', this.endpoints.join(','), '--members', join(this.dataDir, 'members')];
  }

  private get env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      NATS_ANCHOR_DIR: this.dataDir,
      NATS_CLIENT_PORT0: String(this.clientPort0),
      NATS_ROUTE_PORT0: String(this.clientPort0 + 10),
      NATS_HTTP_PORT0: String(this.clientPort0 + 20),
    };
  }

  private node(script: string, args: string[], onStdoutLine: (line: string) => void = () => {}): Promise<string[]> {
    return this.run(process.execPath, [join(this.dir, script), ...args], onStdoutLine);
  }

  private run(command: string, args: string[], onStdoutLine: (line: string) => void): Promise<string[]> {
    return runAnchorProcess(command, args, {
      cwd: this.dir,
      env: this.env,
      label: 'nats',
      onStdoutLine,
      onChild: (child) => (this.child = child),
    });
  }
}
