/**
 * Drives the etcd anchor (shared/anchors/etcd: cluster.sh, load.mjs,
 * failover.mjs) from the cluster benchmark, so etcd gets the same load as
 * raftlog on the same machine in the same run. The anchor lives outside the
 * project and is used only with --etcd DIR.
 *
 * Its cluster gets a private data dir and ports found free (cluster.sh reads
 * both from the environment): an anchor someone else runs on this machine is
 * then neither measured nor stopped by us.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePortGroups, parseLastJson, runAnchorProcess } from './anchor-process.js';
import type { LoadOp } from './load.js';
import type { LatencyStats } from './stats.js';

/** load.mjs's JSON line: the fields the comparison reads; the rest is kept as it came. */
export interface EtcdRow {
  readonly op: string;
  readonly concurrency: number;
  readonly ops_per_s: number;
  readonly errors: number;
  readonly lat_ms: LatencyStats;
  readonly [field: string]: unknown;
}

/** Something the anchor did not measure, and why. */
export interface NotMeasured {
  readonly na: string;
}

export interface EtcdRowNotMeasured extends NotMeasured {
  readonly op: LoadOp;
  readonly concurrency: number;
}

/** failover.mjs's summary line. */
export interface EtcdFailover {
  readonly summary: 'failover';
  readonly trials: number;
  readonly median_unavail_ms: number | null;
  readonly median_gap_ms: number | null;
  readonly unavail_ms: (number | null)[];
  readonly [field: string]: unknown;
}

export interface EtcdLoad {
  readonly op: LoadOp;
  readonly concurrency: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly valueSize: number;
  readonly keys: number;
  readonly timeoutMs: number;
}

export interface EtcdFailoverLoad {
  readonly trials: number;
  readonly concurrency: number;
  readonly settleS: number;
  readonly afterS: number;
  readonly valueSize: number;
  readonly keys: number;
}

/**
 * load.mjs flags per raftlog op; null marks an op the anchor cannot do.
 * get-local reads the leader's state without a consensus round: etcd's
 * serializable read is that. --no-prefill: raftlog's rows do not prefill
 * either, so both read whatever the rows before them wrote.
 */
const ANCHOR_OP: Record<LoadOp, readonly string[] | null> = {
  put: ['--op', 'put'],
  append: null,
  get: ['--op', 'get', '--no-prefill'],
  'get-local': ['--op', 'get', '--serializable', '--no-prefill'],
};

export class EtcdAnchor {
  private child: ChildProcess | null = null;
  private stopped: Promise<void> | null = null;

  private constructor(
    readonly dir: string,
    readonly dataDir: string,
    private readonly clientPort0: number,
    private readonly peerPort0: number,
  ) {}

  /** Checks the anchor's files and reserves a data dir and ports; starts nothing. */
  static async prepare(dir: string): Promise<EtcdAnchor> {
    const abs = resolve(dir);
    for (const file of ['cluster.sh', 'load.mjs']) {
      if (!existsSync(join(abs, file))) throw new Error(`--etcd ${dir}: no ${file} in ${abs}`);
    }
    // cluster.sh numbers member i's ports base + i - 1: three consecutive client and peer ports.
    const client = await freePortGroups(23791, 2, 10, 'etcd');
    return new EtcdAnchor(abs, mkdtempSync(join(tmpdir(), 'raftlog-bench-etcd-')), client, client + 10);
  }

  get endpoints(): string[] {
    return [0, 1, 2].map((i) => `127.0.0.1:${this.clientPort0 + i}`);
  }

  async start(): Promise<void> {
    await this.run('bash', [join(this.dir, 'cluster.sh'), 'start'], () => {});
  }

  /** One row, as load.mjs measures it; an op it cannot do, or a failed run, comes back not measured. */
  async row(o: EtcdLoad): Promise<EtcdRow | EtcdRowNotMeasured> {
    const opFlags = ANCHOR_OP[o.op];
    if (opFlags === null) return { op: o.op, concurrency: o.concurrency, na: `the anchor has no ${o.op}` };
    const args = [
      ...opFlags,
      '--concurrency',
      String(o.concurrency),
      '--duration',
      String(o.durationS),
      '--warmup',
      String(o.warmupS),
      '--value-size',
      String(o.valueSize),
      '--keys',
      String(o.keys),
      '--timeout-ms',
      String(o.timeoutMs),
      ...this.clusterFlags(),
    ];
    try {
      const out = await this.node('load.mjs', args);
      const row = parseLastJson(out, 'load.mjs');
      if (typeof row.ops_per_s !== 'number' || typeof row.lat_ms !== 'object' || row.lat_ms === null) {
        throw new Error(`load.mjs printed no ops_per_s/lat_ms: ${JSON.stringify(row)}`);
      }
      return row as EtcdRow;
    } catch (error) {
      if (this.stopped !== null) throw error;
      return { op: o.op, concurrency: o.concurrency, na: `failed: ${(error as Error).message}` };
    }
  }

  /**
   * failover.mjs's trials (it restarts each killed member itself, through
   * cluster.sh in the same environment); without the script, or when it
   * fails, comes back not measured.
   */
  async failover(o: EtcdFailoverLoad, onTrial: (line: string) => void): Promise<EtcdFailover | NotMeasured> {
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
          '--keys',
          String(o.keys),
          ...this.clusterFlags(),
        ],
        onTrial,
      );
      const summary = parseLastJson(out, 'failover.mjs');
      if (summary.summary !== 'failover') throw new Error(`failover.mjs printed no summary: ${JSON.stringify(summary)}`);
      return summary as EtcdFailover;
    } catch (error) {
      if (this.stopped !== null) throw error;
      return { na: `failed: ${(error as Error).message}` };
    }
  }

  /** Stops whatever child is running and the cluster, and removes the data dir; safe to call more than once. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.child?.kill('SIGTERM');
      try {
        await this.run('bash', [join(this.dir, 'cluster.sh'), 'stop'], () => {});
      } finally {
        rmSync(this.dataDir, { recursive: true, force: true });
      }
    })();
    return this.stopped;
  }

  private clusterFlags(): string[] {
    return ['--endpoints', this.endpoints.join(','), '--members', join(this.dataDir, 'members')];
  }

  private get env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ETCD_ANCHOR_DIR: this.dataDir,
      ETCD_CLIENT_PORT0: String(this.clientPort0),
      ETCD_PEER_PORT0: String(this.peerPort0),
    };
  }

  /** Runs an anchor script; its stderr (the human-readable line) is passed on with an "etcd " prefix. */
  private node(script: string, args: string[], onStdoutLine: (line: string) => void = () => {}): Promise<string[]> {
    return this.run(process.execPath, [join(this.dir, script), ...args], onStdoutLine);
  }

  private run(command: string, args: string[], onStdoutLine: (line: string) => void): Promise<string[]> {
    return runAnchorProcess(command, args, {
      cwd: this.dir,
      env: this.env,
      label: 'etcd',
      onStdoutLine,
      onChild: (child) => (this.child = child),
    });
  }
}
