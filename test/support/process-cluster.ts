import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RaftLogGrpcClient, type StatusReply } from '../../src/node/client-proto.js';
import { freePort } from './free-ports.js';
import { waitFor } from './wait-for.js';

const NODE_MAIN = new URL('../../src/node/main.ts', import.meta.url).pathname;
const TSX_LOADER = 'tsx';

export { freePort };

/** Per-cluster settings that tests leave at their defaults and benchmarks change. */
export interface ProcessClusterOptions {
  /** Node `--log-level`; tests want debug lines in the log files, a benchmark wants logging to cost little. */
  readonly logLevel?: string;
  /** Flags for node itself (before the script), e.g. `--cpu-prof`; startNode can override them per node. */
  readonly execArgv?: readonly string[];
  /**
   * The node's entry point: src/node/main.ts through tsx by default; a
   * compiled main.js (npm run build's dist/node/main.js) runs without tsx,
   * as an installed package runs.
   */
  readonly nodeMain?: string;
  /** Each node's `--peers`: by default every node's real address; a fault harness routes them through its proxies. */
  readonly peersOf?: (id: string, addresses: ReadonlyMap<string, string>) => string;
  /** Extra environment of one node's process (test hooks such as RAFTLOG_TEST_PEER_ROUTES), on top of this process's. */
  readonly envOf?: (id: string) => Readonly<Record<string, string>>;
  /**
   * Where a node that joined with --join finds the cluster when it is started
   * again: by default the endpoints it first joined through, which may have
   * left the cluster since. Node ids; their current addresses are used.
   */
  readonly rejoinViaOf?: (id: string) => readonly string[];
  /** Flags of one node only, after the cluster's extra ones (e.g. its own TLS certificate). */
  readonly argsOf?: (id: string) => readonly string[];
  /** How the cluster's own calls (status, call) reach the nodes; default plaintext. */
  readonly channelCredentials?: grpc.ChannelCredentials;
  /** A node's --listen address (host:port), for nodes that each have an address of their own; default 127.0.0.1 and a free port. */
  readonly addressOf?: (id: string) => string;
  /**
   * A command the node's process is started through, e.g. `['ip', 'netns', 'exec', NS]`; it must exec
   * the node (not fork it), so that the process's pid, and so kill and pause, are the node's own.
   */
  readonly spawnPrefixOf?: (id: string) => readonly string[];
}

type Unary = (request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, reply: unknown) => void) => void;

/** Real `raftlog node` processes in a temp dir, each with its own data directory and log file. */
export class ProcessCluster {
  readonly processes = new Map<string, ChildProcess>();
  /** Nodes started with --join, and the client endpoints they join through. */
  private readonly joinVia = new Map<string, string[]>();
  private readonly clients = new Map<string, grpc.Client>();
  /** The founding members: they always start with the founding --peers, even after leaving and joining again. */
  private readonly founders: ReadonlySet<string>;

  private constructor(
    readonly dir: string,
    readonly addresses: Map<string, string>,
    private readonly extraArgs: readonly string[],
    private readonly options: ProcessClusterOptions,
  ) {
    this.founders = new Set(addresses.keys());
  }

  static async start(size: number, extraArgs: readonly string[] = [], options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-cluster-'));
    const addresses = new Map<string, string>();
    for (let i = 1; i <= size; i++) addresses.set(`n${i}`, options.addressOf?.(`n${i}`) ?? `127.0.0.1:${await freePort()}`);
    const cluster = new ProcessCluster(dir, addresses, extraArgs, options);
    for (const id of addresses.keys()) cluster.startNode(id);
    return cluster;
  }

  get ids(): string[] {
    return [...this.addresses.keys()];
  }

  /**
   * Starts a new node with an empty data dir that joins the running cluster
   * through `joinVia` (`raftlog node --join`); it waits to be added.
   */
  async startJoining(id: string, joinVia: readonly string[]): Promise<string> {
    if (this.isRunning(id)) throw new Error(`node ${id} is running: it cannot join again`);
    const address = this.options.addressOf?.(id) ?? `127.0.0.1:${await freePort()}`;
    this.addresses.set(id, address);
    // A client made for an earlier process of this id dials its old port.
    this.dropClient(id);
    this.joinVia.set(
      id,
      joinVia.map((peer) => this.address(peer)),
    );
    this.startNode(id);
    return address;
  }

  private entryPoint(): string[] {
    const main = this.options.nodeMain ?? NODE_MAIN;
    return main.endsWith('.ts') ? ['--import', TSX_LOADER, main] : [main];
  }

  startNode(id: string, execArgv: readonly string[] = this.options.execArgv ?? []): void {
    const rejoinVia = this.options.rejoinViaOf?.(id).map((peer) => this.address(peer));
    const joinVia = this.joinVia.has(id) && rejoinVia !== undefined && rejoinVia.length > 0 ? rejoinVia : this.joinVia.get(id);
    // A founder restarts with the founding --peers: its data dir holds the configuration since.
    const founding = new Map([...this.addresses].filter(([peer]) => this.founders.has(peer) || !this.joinVia.has(peer)));
    const peers = this.options.peersOf?.(id, founding) ?? [...founding].map(([peer, address]) => `${peer}=${address}`).join(',');
    const membership = joinVia !== undefined ? ['--join', joinVia.join(',')] : ['--peers', peers];
    const env = this.options.envOf === undefined ? undefined : { ...process.env, ...this.options.envOf(id) };
    // The child writes its log file itself: relaying it through pipes would bill this process's CPU for it.
    const log = openSync(join(this.dir, `${id}.log`), 'a');
    const [command, ...prefixArgs] = [...(this.options.spawnPrefixOf?.(id) ?? []), process.execPath];
    try {
      const child = spawn(
        command as string,
        [
          ...prefixArgs,
          ...execArgv,
          ...this.entryPoint(),
          '--id',
          id,
          '--listen',
          this.address(id),
          ...membership,
          '--data',
          join(this.dir, id),
          '--log-level',
          this.options.logLevel ?? 'debug',
          ...this.extraArgs,
          ...(this.options.argsOf?.(id) ?? []),
        ],
        { stdio: ['ignore', log, log], ...(env === undefined ? {} : { env }) },
      );
      this.processes.set(id, child);
    } finally {
      closeSync(log);
    }
  }

  /** OS pid of a running node (for CPU accounting), undefined when it is not running. */
  pid(id: string): number | undefined {
    const child = this.processes.get(id);
    return child === undefined || child.exitCode !== null || child.signalCode !== null ? undefined : child.pid;
  }

  /** SIGTERM and wait for a graceful exit (which, unlike SIGKILL, lets node write a --cpu-prof profile). */
  async stop(id: string, timeoutMs = 10_000): Promise<void> {
    const child = this.processes.get(id);
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    }
    this.forget(id, child);
  }

  /**
   * Waits for a node to exit by itself (a removed member does), and SIGKILLs
   * it after `timeoutMs`. True when it exited by itself (or was not running).
   */
  async waitForExit(id: string, timeoutMs: number): Promise<boolean> {
    const child = this.processes.get(id);
    let byItself = true;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const timer = setTimeout(() => {
        byItself = false;
        child.kill('SIGKILL');
      }, timeoutMs);
      await exited;
      clearTimeout(timer);
    }
    this.forget(id, child);
    return byItself;
  }

  /** Deletes a node's data directory, so that its id can join again as a new member; it must not be running. */
  async wipeData(id: string): Promise<void> {
    if (this.isRunning(id)) throw new Error(`node ${id} is running: its data dir ${join(this.dir, id)} cannot be wiped`);
    await rm(join(this.dir, id), { recursive: true, force: true });
  }

  address(id: string): string {
    const address = this.addresses.get(id);
    if (address === undefined) throw new Error(`no node ${id}`);
    return address;
  }

  /** SIGKILL: the process gets no chance to flush anything. */
  async kill(id: string): Promise<void> {
    const child = this.processes.get(id);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.forget(id, child);
  }

  /** SIGSTOP: the process is frozen with its sockets open, as a long GC pause or a stalled VM would leave it. */
  pause(id: string): boolean {
    return this.signal(id, 'SIGSTOP');
  }

  /** SIGCONT after pause(). */
  resume(id: string): boolean {
    return this.signal(id, 'SIGCONT');
  }

  isRunning(id: string): boolean {
    return this.pid(id) !== undefined;
  }

  /** Calls one client RPC on one node. */
  call<T>(id: string, method: string, request: object, timeoutMs = 3_000): Promise<T> {
    let client = this.clients.get(id);
    if (client === undefined) {
      client = new RaftLogGrpcClient(this.address(id), this.options.channelCredentials ?? grpc.credentials.createInsecure());
      this.clients.set(id, client);
    }
    const fn = (client as unknown as Record<string, Unary>)[method] as Unary;
    return new Promise((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + timeoutMs }, (error, reply) => (error !== null ? reject(error) : resolve(reply as T)));
    });
  }

  status(id: string): Promise<StatusReply> {
    return this.call<StatusReply>(id, 'status', {}, 1_000);
  }

  /** Waits until every node listed has applied at least `minIndex`, at one applied index with one digest. */
  async waitForConvergence(minIndex: number, ids: readonly string[] = this.ids, timeoutMs = 30_000): Promise<StatusReply[]> {
    return waitFor(
      `nodes ${ids.join(', ')} at one applied index ≥ ${minIndex} with equal digests`,
      async () => {
        // A status that fails is retried; a timeout reports the last failure.
        const statuses = await Promise.all(ids.map((id) => this.status(id)));
        const [first] = statuses as [StatusReply];
        const agreed = statuses.every((s) => s.appliedIndex === first.appliedIndex && s.digest === first.digest);
        return agreed && first.appliedIndex >= minIndex ? statuses : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  /** Waits until the live nodes agree on one leader, and returns its id. */
  async waitForLeader(live: readonly string[] = [...this.processes.keys()], timeoutMs = 30_000): Promise<string> {
    try {
      return await waitFor(
        'a leader that every live node follows',
        async () => {
          const statuses = await Promise.all(live.map((id) => this.status(id)));
          const leaders = statuses.filter((s) => s.role === 'leader');
          const leader = leaders.length === 1 ? (leaders[0] as StatusReply) : null;
          if (leader !== null && statuses.every((s) => s.leader === leader.node && s.term === leader.term)) return leader.node;
          // Thrown, not returned: a timeout then says what each node last reported.
          const seen = statuses.map((s) => `${s.node} ${s.role} term ${s.term} leader ${s.leader || '-'} commit ${s.commitIndex}`);
          throw new Error(`no agreement yet: ${seen.join('; ')}`);
        },
        { timeoutMs, intervalMs: 50 },
      );
    } catch (error) {
      // The temp dir (and the nodes' logs in it) goes when the test cleans up: keep what the logs said last.
      throw new Error(`${(error as Error).message}\n${await this.logTails(live)}`, { cause: error });
    }
  }

  /** The last lines of each node's log at info level or above (pino's debug and trace are 20 and 10), for a failure message. */
  private async logTails(ids: readonly string[], lines = 15): Promise<string> {
    const tails = await Promise.all(
      ids.map(async (id) => {
        const text = await readFile(join(this.dir, `${id}.log`), 'utf8').catch((e: Error) => `(no log: ${e.message})`);
        const kept = text
          .trimEnd()
          .split('\n')
          .filter((line) => !/^\{"level":[12]0,/.test(line));
        return `--- ${id}.log (last ${lines} lines at info or above)\n${kept.slice(-lines).join('\n')}`;
      }),
    );
    return tails.join('\n');
  }

  /**
   * Drops a process that has exited, unless a newer one was started for the
   * same id while this caller waited for the exit: forgetting that one would
   * make a running node look as if it had exited by itself.
   */
  private forget(id: string, child: ChildProcess | undefined): void {
    if (this.processes.get(id) !== child) return;
    this.processes.delete(id);
    this.dropClient(id);
  }

  private dropClient(id: string): void {
    this.clients.get(id)?.close();
    this.clients.delete(id);
  }

  private signal(id: string, signal: NodeJS.Signals): boolean {
    const child = this.processes.get(id);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return false;
    return child.kill(signal);
  }

  /** Stops every process and removes the temp dir; safe to call twice, and after failures. */
  async destroy(): Promise<void> {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    await Promise.all([...this.processes.keys()].map((id) => this.kill(id)));
    await rm(this.dir, { recursive: true, force: true });
  }
}
