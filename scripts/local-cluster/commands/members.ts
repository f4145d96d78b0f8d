/**
 * `add-node` and `remove-node`: membership changes of the local cluster, the
 * way an operator would make them with `raftlog member`, plus the process
 * and state-file bookkeeping around them.
 */
import { rm } from 'node:fs/promises';
import { type ClusterMember, type MemberChange, RaftLogClient, RaftLogFailedPreconditionError } from '../../../src/client/index.js';
import { type ClusterState, findNode, LOOPBACK, type NodeRecord, requireState, writeState } from '../cluster-state.js';
import { queryCluster } from '../cluster-status.js';
import { clientTls, withNodeCertificate } from '../cluster-tls.js';
import { ClusterScriptError } from '../errors.js';
import { npmCommand } from '../next-steps.js';
import { launchNodes } from '../node-launch.js';
import { runningPid, stopNode, waitForExit } from '../node-process.js';
import { type ClusterLayout, displayPath } from '../paths.js';
import { pollUntil } from '../poll.js';
import { busyPorts } from '../ports.js';

/** A learner fed by a snapshot on a loaded machine takes a while; past this it stays a learner and we say how to promote it. */
const CATCH_UP_TIMEOUT_MS = 120_000;
/** A removed node notices and exits within a few heartbeats; past this it is stopped. */
const REMOVED_EXIT_TIMEOUT_MS = 30_000;
/** Membership calls wait for a commit; generous for a busy machine. */
const CHANGE_DEADLINE_MS = 20_000;

export interface AddNodeOptions {
  /** Stop after adding it as a learner (promote later with `raftlog member promote`). */
  readonly learner: boolean;
}

/**
 * Starts the next node (n<k+1>, on the next port) with an empty data dir and
 * --join, adds it as a learner, waits until it has caught up and promotes it.
 */
export async function addNode(layout: ClusterLayout, options: AddNodeOptions): Promise<void> {
  let state = await requireState(layout);
  const running = await runningNodes(state);
  if (running.length === 0)
    throw new ClusterScriptError(`no node of the cluster in ${displayPath(layout.dir)} runs; \`${npmCommand(layout, 'start')}\` first`);
  const plain = nextNode(layout, state, running);
  const record = state.tls === undefined ? plain : await withNodeCertificate(layout, state.tls, plain);
  const port = Number(record.address.split(':')[1]);
  if ((await busyPorts(LOOPBACK, [port])).length > 0) {
    throw new ClusterScriptError(`port ${port}, the next node's, is in use by another program; nothing was started`);
  }
  const client = clientFor(state, running);
  try {
    // Before anything starts: a cluster that cannot change members now (no leader) is reported as it is.
    const before = await client.memberList();
    console.log(`Cluster ${before.clusterName}: ${describeMembers(before.members)}; leader ${before.leader ?? 'none'}.`);

    state = { ...state, nodes: [...state.nodes, record] };
    await writeState(layout, state);
    console.log(
      `Starting ${record.id} on ${record.address}, joining through ${running.map((node) => node.id).join(', ')} (log ${displayPath(record.logFile)}).`,
    );
    state = await launchNodes(layout, state, [record.id]).catch(async (error: unknown) => {
      await forget(layout, record);
      throw error;
    });

    let added: MemberChange;
    try {
      added = await client.memberAdd(record.id, record.address, { learner: true, deadlineMs: CHANGE_DEADLINE_MS });
    } catch (error) {
      // Refused (or unknown): the new process has no business running. Its empty data dir goes with it.
      await stopAndForget(layout, findNode(state, record.id));
      throw new ClusterScriptError(`adding ${record.id} failed, so it was stopped again: ${(error as Error).message}`);
    }
    console.log(`Added ${record.id} as a learner at index ${added.index}: ${describeMembers(added.members)}.`);
    if (options.learner) {
      console.log(`It receives the log but does not vote; promote it with \`npx raftlog member promote ${record.id}\`.`);
      return;
    }
    const promoted = await promoteWhenCaughtUp(client, record.id);
    if (promoted === null) {
      console.log(
        `${record.id} has not caught up within ${CATCH_UP_TIMEOUT_MS / 1000} s and stays a learner; ` +
          `see \`${npmCommand(layout, 'status')}\`, and promote it with \`npx raftlog member promote ${record.id}\`.`,
      );
      process.exitCode = 1;
      return;
    }
    console.log(`Promoted ${record.id} to voter at index ${promoted.index}: ${describeMembers(promoted.members)}.`);
  } finally {
    client.close();
  }
}

/**
 * Removes `id` from the cluster's configuration, waits for its process to
 * exit (a removed node leaves by itself), and drops it from the state file.
 * Its data dir is deleted: a removed member never comes back with it (etcd
 * says the same of a removed member's data); its log file stays.
 */
export async function removeNode(layout: ClusterLayout, id: string): Promise<void> {
  let state = await requireState(layout);
  const node = findNode(state, id);
  const others = (await runningNodes(state)).filter((candidate) => candidate.id !== id);
  const via = others.length > 0 ? others : [node];
  const client = clientFor(state, via);
  try {
    const removed = await client.memberRemove(id, { deadlineMs: CHANGE_DEADLINE_MS }).catch((error: unknown) => {
      throw new ClusterScriptError(`${id} was not removed: ${(error as Error).message}`);
    });
    console.log(`Removed ${id} at index ${removed.index}: ${describeMembers(removed.members)}.`);
  } finally {
    client.close();
  }
  const pid = await runningPid(node);
  if (pid !== null) {
    if (await waitForExit(pid, node, REMOVED_EXIT_TIMEOUT_MS)) {
      console.log(`${id} (pid ${pid}) saw its removal and exited.`);
    } else {
      const outcome = await stopNode(pid, node);
      console.log(
        `${id} (pid ${pid}) was still running ${REMOVED_EXIT_TIMEOUT_MS / 1000} s after its removal; stopped it${outcome === 'killed' ? ' with SIGKILL' : ''}.`,
      );
    }
  }
  state = await requireState(layout);
  await forget(layout, findNode(state, id));
  console.log(`Deleted its data dir ${displayPath(node.dataDir)}; its log stays in ${displayPath(node.logFile)}.`);
}

/** Promotes `id` as soon as the leader agrees it has caught up; null when it has not within the bound. */
async function promoteWhenCaughtUp(client: RaftLogClient, id: string): Promise<MemberChange | null> {
  let lastReason = '';
  const promoted = await pollUntil(
    async () => {
      try {
        return await client.memberPromote(id, { deadlineMs: CHANGE_DEADLINE_MS });
      } catch (error) {
        if (!(error instanceof RaftLogFailedPreconditionError)) throw error;
        if (error.message !== lastReason) console.log(`  waiting: ${error.message}`);
        lastReason = error.message;
        return undefined;
      }
    },
    { timeoutMs: CATCH_UP_TIMEOUT_MS, intervalMs: 500 },
  );
  return promoted ?? null;
}

/** The next id (one past the highest ever used here: ids are never reused) on the port that goes with it. */
function nextNode(layout: ClusterLayout, state: ClusterState, running: readonly NodeRecord[]): NodeRecord {
  const next = highestId(state) + 1;
  const id = `n${next}`;
  const address = `${LOOPBACK}:${state.basePort + next - 1}`;
  return {
    id,
    address,
    dataDir: layout.dataDir(id),
    logFile: layout.logFile(id),
    args: [
      '--id',
      id,
      '--listen',
      address,
      '--join',
      running.map((node) => node.address).join(','),
      '--data',
      layout.dataDir(id),
      '--log-level',
      state.logLevel,
    ],
    pid: null,
  };
}

/** The highest node number this cluster has used: its nodes' (n<k>) and those it dropped. */
function highestId(state: ClusterState): number {
  return Math.max(state.highestId ?? 0, ...state.nodes.map((node) => Number(/^n(\d+)$/.exec(node.id)?.[1] ?? 0)));
}

async function runningNodes(state: ClusterState): Promise<NodeRecord[]> {
  const report = await queryCluster(state);
  return report.nodes.filter((entry) => entry.state === 'up').map((entry) => entry.node);
}

function clientFor(state: ClusterState, nodes: readonly NodeRecord[]): RaftLogClient {
  return new RaftLogClient({ endpoints: nodes.map((node) => `${node.id}=${node.address}`), deadlineMs: CHANGE_DEADLINE_MS, ...clientTls(state) });
}

async function stopAndForget(layout: ClusterLayout, node: NodeRecord): Promise<void> {
  const pid = await runningPid(node);
  if (pid !== null) await stopNode(pid, node);
  await forget(layout, node);
}

/** Drops the node from the state file (remembering its number, so it is not reused) and deletes its data dir. */
async function forget(layout: ClusterLayout, node: NodeRecord): Promise<void> {
  const state = await requireState(layout);
  await writeState(layout, { ...state, highestId: highestId(state), nodes: state.nodes.filter((candidate) => candidate.id !== node.id) });
  await rm(node.dataDir, { recursive: true, force: true });
}

function describeMembers(members: readonly ClusterMember[]): string {
  const voters = members.filter((m) => m.role === 'voter').map((m) => m.id);
  const learners = members.filter((m) => m.role === 'learner').map((m) => m.id);
  return `voters ${voters.join(', ') || 'none'}${learners.length > 0 ? `; learners ${learners.join(', ')}` : ''}`;
}
