/**
 * What the benchmark runs against: a fresh 3-node cluster it spawns (and may
 * kill and restart), or a cluster someone else runs (--endpoints), which it
 * only loads.
 */
import { join } from 'node:path';
import { ProcessCluster } from '../../test/support/process-cluster.js';
import { BenchClient } from './client.js';
import { pidsListeningOn, type Tracked } from './cpu.js';

export interface BenchTarget {
  readonly kind: 'spawned' | 'endpoints';
  readonly endpoints: readonly { endpoint: string; name?: string }[];
  /** Whether failover trials may SIGKILL and restart nodes. */
  readonly canKill: boolean;
  /** Node processes to bill CPU to, as they are now (restarts change pids). */
  tracked(): Tracked[];
  kill(name: string): Promise<void>;
  /** SIGTERM, and waits for the process to exit (a leader hands over first). */
  stop(name: string): Promise<void>;
  restart(name: string): void;
  /** Node log files (JSON lines), for counting elections the Status polls may have missed. */
  logFiles(): Map<string, string> | null;
  destroy(): Promise<void>;
}

export interface SpawnOptions {
  readonly size: number;
  readonly nodeArgs: readonly string[];
  readonly logLevel: string;
  readonly execArgv: readonly string[];
  /** The node's entry point (ProcessClusterOptions.nodeMain): the sources through tsx when absent. */
  readonly nodeMain?: string;
}

export class SpawnedTarget implements BenchTarget {
  readonly kind = 'spawned';
  readonly canKill = true;
  private destroyed: Promise<void> | null = null;

  private constructor(readonly cluster: ProcessCluster) {}

  static async start(o: SpawnOptions, onCluster: (c: SpawnedTarget) => void): Promise<SpawnedTarget> {
    const target = new SpawnedTarget(
      await ProcessCluster.start(o.size, o.nodeArgs, { logLevel: o.logLevel, execArgv: o.execArgv, nodeMain: o.nodeMain }),
    );
    // Hand it over before waiting, so a signal during startup still finds the cluster to tear down.
    onCluster(target);
    await target.cluster.waitForLeader();
    return target;
  }

  get endpoints(): { endpoint: string; name: string }[] {
    return this.cluster.ids.map((id) => ({ endpoint: this.cluster.address(id), name: id }));
  }

  tracked(): Tracked[] {
    const out: Tracked[] = [];
    for (const id of this.cluster.ids) {
      const pid = this.cluster.pid(id);
      if (pid !== undefined) out.push({ name: id, pid });
    }
    return out;
  }

  kill(name: string): Promise<void> {
    return this.cluster.kill(name);
  }

  stop(name: string): Promise<void> {
    return this.cluster.stop(name, 30_000);
  }

  restart(name: string): void {
    this.cluster.startNode(name);
  }

  logFiles(): Map<string, string> {
    return new Map(this.cluster.ids.map((id) => [id, join(this.cluster.dir, `${id}.log`)]));
  }

  /**
   * SIGTERM first: a node started with --cpu-prof writes its profile only on
   * a clean exit. destroy() then SIGKILLs whatever is left and removes the dir.
   */
  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      try {
        await Promise.all(this.cluster.ids.map((id) => this.cluster.stop(id, 5_000)));
      } finally {
        await this.cluster.destroy();
      }
    })();
    return this.destroyed;
  }
}

export class EndpointsTarget implements BenchTarget {
  readonly kind = 'endpoints';
  readonly canKill = false;

  private constructor(
    readonly endpoints: { endpoint: string; name: string }[],
    private readonly pids: Tracked[],
  ) {}

  /** Learns each endpoint's node id from Status, and its pid from the listening socket when it is ours to see. */
  static async connect(endpoints: readonly string[]): Promise<EndpointsTarget> {
    const client = new BenchClient(endpoints.map((endpoint) => ({ endpoint })));
    try {
      const named = await Promise.all(
        client.members.map(async (m) => {
          try {
            return { endpoint: m.endpoint, name: (await client.status(m, 3_000)).node };
          } catch {
            return { endpoint: m.endpoint, name: m.endpoint };
          }
        }),
      );
      const ports = named.map((n) => Number(n.endpoint.slice(n.endpoint.lastIndexOf(':') + 1)));
      const byPort = pidsListeningOn(ports);
      const pids: Tracked[] = [];
      named.forEach((n, i) => {
        const pid = byPort.get(ports[i] as number);
        if (pid !== undefined) pids.push({ name: n.name, pid });
      });
      return new EndpointsTarget(named, pids);
    } finally {
      client.close();
    }
  }

  tracked(): Tracked[] {
    return this.pids;
  }

  kill(): Promise<void> {
    return Promise.reject(new Error('cannot kill nodes of a cluster this benchmark did not start'));
  }

  stop(): Promise<void> {
    return Promise.reject(new Error('cannot stop nodes of a cluster this benchmark did not start'));
  }

  restart(): void {
    throw new Error('cannot restart nodes of a cluster this benchmark did not start');
  }

  logFiles(): null {
    return null;
  }

  async destroy(): Promise<void> {}
}
