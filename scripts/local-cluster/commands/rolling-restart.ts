/**
 * `rolling-restart`: restarts every node of the local cluster in turn,
 * followers first and the leader last, each with SIGTERM (a leader hands
 * leadership over before it goes), and waits for each to rejoin and catch up
 * before the next, so the cluster keeps its quorum throughout. Meanwhile a
 * few writers keep putting keys (unless --no-writes) and every node's step
 * reports what they saw: writes acknowledged, errors, and the slowest write.
 */
import { performance } from 'node:perf_hooks';
import { RaftLogClient, RaftLogError } from '../../../src/client/index.js';
import { type ClusterState, LOOPBACK, type NodeRecord, requireState, withPid, writeState } from '../cluster-state.js';
import { type ClusterReport, queryCluster } from '../cluster-status.js';
import { clientTls } from '../cluster-tls.js';
import { ClusterScriptError } from '../errors.js';
import { launchNodes } from '../node-launch.js';
import { runningPid, stopNode } from '../node-process.js';
import type { ClusterLayout } from '../paths.js';
import { pollUntil } from '../poll.js';
import { busyPorts } from '../ports.js';

/** How long a restarted node may take to follow a leader and apply what it had committed. */
const CATCH_UP_TIMEOUT_MS = 60_000;
const WRITERS = 4;
/** The writers' keys: rolling-restart/<writer>/<n>. */
const KEY_PREFIX = 'rolling-restart';

export interface RollingRestartOptions {
  /** Keep writing while nodes restart (default), to show what clients see. */
  readonly writes: boolean;
}

export async function rollingRestart(layout: ClusterLayout, options: RollingRestartOptions): Promise<void> {
  let state = await requireState(layout);
  const report = await queryCluster(state);
  const notUp = report.nodes.filter((entry) => entry.state !== 'up');
  if (notUp.length > 0) {
    throw new ClusterScriptError(
      `${notUp.map((entry) => `${entry.node.id} is ${entry.state}`).join(', ')}: start every node first (\`npm start\`); ` +
        'restarting the others one by one could leave the cluster without a quorum',
    );
  }
  if (report.leader === null) throw new ClusterScriptError('there is no leader right now; try again once one is elected (`npm run status`)');

  const writers = options.writes ? new Writers(state) : null;
  try {
    const done = new Set<string>();
    while (done.size < state.nodes.length) {
      const current = await queryCluster(state);
      const node = nextNode(state, current, done);
      const step = writers?.step();
      const wasLeader = current.leader?.id === node.id;
      const stoppedIn = await stopOne(node);
      state = withPid(state, node.id, null);
      await writeState(layout, state);
      const started = performance.now();
      state = await startOne(layout, state, node);
      const caughtUp = await waitCaughtUp(state, node);
      const after = await queryCluster(state);
      const figures = step?.end();
      console.log(
        `  ${node.id}${wasLeader ? ' (leader)' : ''}: stopped in ${stoppedIn} ms` +
          `${wasLeader ? `, leadership now with ${after.leader?.id ?? 'nobody yet'}` : ''}; ` +
          `back and caught up (applied ${caughtUp}) in ${Math.round(performance.now() - started)} ms` +
          (figures === undefined ? '' : `; writes meanwhile: ${describe(figures)}`),
      );
      done.add(node.id);
    }
    const total = writers?.total();
    const leader = (await queryCluster(state)).leader;
    console.log(
      `Restarted ${state.nodes.length} nodes; leader ${leader?.id ?? 'none yet'}.` +
        (total === undefined ? '' : ` Writes throughout: ${describe(total)}.`),
    );
  } finally {
    await writers?.stop();
  }
}

/** Followers first, in id order; the leader once it is the only one left. */
function nextNode(state: ClusterState, report: ClusterReport, done: ReadonlySet<string>): NodeRecord {
  const left = state.nodes.filter((node) => !done.has(node.id));
  return left.find((node) => node.id !== report.leader?.id) ?? (left[0] as NodeRecord);
}

async function stopOne(node: NodeRecord): Promise<number> {
  const pid = await runningPid(node);
  if (pid === null) throw new ClusterScriptError(`${node.id} is not running any more; start it (\`npm start\`) and run the rolling restart again`);
  const at = performance.now();
  const outcome = await stopNode(pid, node);
  if (outcome === 'killed') console.log(`  ${node.id} did not stop after SIGTERM and was killed`);
  return Math.round(performance.now() - at);
}

async function startOne(layout: ClusterLayout, state: ClusterState, node: NodeRecord): Promise<ClusterState> {
  const port = Number(node.address.split(':')[1]);
  if ((await busyPorts(LOOPBACK, [port])).length > 0) {
    throw new ClusterScriptError(`port ${port} of ${node.id} is in use by another program; ${node.id} was not started again`);
  }
  return await launchNodes(layout, state, [node.id]);
}

/** Waits until `node` follows the leader and has applied what the leader had committed when it rejoined. */
async function waitCaughtUp(state: ClusterState, node: NodeRecord): Promise<number> {
  let target: number | null = null;
  const applied = await pollUntil(
    async () => {
      const report = await queryCluster(state);
      const leader = report.nodes.find((entry) => entry.state === 'up' && entry.node.id === report.leader?.id);
      const self = report.nodes.find((entry) => entry.node.id === node.id);
      if (leader?.state !== 'up' || self?.state !== 'up' || self.status.leader !== leader.node.id) return undefined;
      target ??= leader.status.commitIndex;
      return self.status.appliedIndex >= target ? self.status.appliedIndex : undefined;
    },
    { timeoutMs: CATCH_UP_TIMEOUT_MS, intervalMs: 100 },
  );
  if (applied === undefined) {
    throw new ClusterScriptError(`${node.id} did not rejoin and catch up within ${CATCH_UP_TIMEOUT_MS / 1000} s: see \`npm run status\` and its log`);
  }
  return applied;
}

interface WriteFigures {
  ok: number;
  errors: Map<string, number>;
  maxMs: number;
}

function describe(f: WriteFigures): string {
  const errors = [...f.errors].map(([kind, n]) => `${n} ${kind}`).join(', ');
  return `${f.ok} acknowledged, ${f.errors.size === 0 ? 'no errors' : `errors: ${errors}`}, slowest ${Math.round(f.maxMs)} ms`;
}

/** A few writers, each putting one key after another; figures per restart step and in total. */
class Writers {
  private readonly client: RaftLogClient;
  private readonly all: WriteFigures = { ok: 0, errors: new Map(), maxMs: 0 };
  private current: WriteFigures | null = null;
  private stopped = false;
  private readonly running: Promise<void>[];

  constructor(state: ClusterState) {
    this.client = new RaftLogClient({ endpoints: state.nodes.map((node) => `${node.id}=${node.address}`), deadlineMs: 5_000, ...clientTls(state) });
    this.running = Array.from({ length: WRITERS }, (_, i) => this.write(i));
  }

  step(): { end: () => WriteFigures } {
    const figures: WriteFigures = { ok: 0, errors: new Map(), maxMs: 0 };
    this.current = figures;
    return { end: () => figures };
  }

  total(): WriteFigures {
    return this.all;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
    this.client.close();
  }

  private async write(writer: number): Promise<void> {
    for (let n = 0; !this.stopped; n++) {
      const at = performance.now();
      const sinks = [this.all, ...(this.current === null ? [] : [this.current])];
      try {
        await this.client.put(`${KEY_PREFIX}/${writer}/${n}`, String(n));
        const ms = performance.now() - at;
        for (const sink of sinks) {
          sink.ok++;
          sink.maxMs = Math.max(sink.maxMs, ms);
        }
      } catch (error) {
        if (this.stopped) return;
        const kind = error instanceof RaftLogError ? error.name : 'error';
        for (const sink of sinks) sink.errors.set(kind, (sink.errors.get(kind) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}
