/**
 * `start`: a cluster of N nodes on consecutive loopback ports, each a
 * detached process. Resumes the stopped cluster in the directory with its
 * data; refuses a different node count unless --fresh wipes the old one.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ClusterState, LOOPBACK, type NodeRecord, planCluster, readState, writeState } from '../cluster-state.js';
import { type ClusterReport, queryCluster } from '../cluster-status.js';
import { createClusterTls, tlsDir, withNodeCertificate } from '../cluster-tls.js';
import { ClusterScriptError } from '../errors.js';
import { nextSteps, npmCommand } from '../next-steps.js';
import { launchNodes } from '../node-launch.js';
import { runningPid } from '../node-process.js';
import { type ClusterLayout, displayPath, STATE_FILE_NAME } from '../paths.js';
import { pollUntil } from '../poll.js';
import { busyPorts } from '../ports.js';
import { statusTable } from '../status-output.js';

export const DEFAULT_NODES = 3;
/** n1 on 7001, n2 on 7002, ...: the CLI's default endpoints. */
export const DEFAULT_BASE_PORT = 7001;
export const DEFAULT_LOG_LEVEL = 'info';
/** Generous: on a busy machine the first election can take several timeouts. */
const LEADER_TIMEOUT_MS = 60_000;

export interface StartOptions {
  /** Undefined: the stopped cluster's count, or DEFAULT_NODES for a new one. */
  readonly nodes: number | undefined;
  readonly basePort: number | undefined;
  readonly logLevel: string | undefined;
  readonly fresh: boolean;
  /** Mutual TLS with a throwaway CA (cluster-tls.ts); a new cluster only. */
  readonly tls: boolean;
}

export async function start(layout: ClusterLayout, options: StartOptions): Promise<void> {
  let previous = await readState(layout);
  if (previous !== null && (await anyRunning(previous))) {
    if (options.fresh) {
      throw new ClusterScriptError(
        `the cluster in ${displayPath(layout.dir)} is running; stop it first (\`${npmCommand(layout, 'stop')}\`), then start with --fresh`,
      );
    }
    await reportAlreadyRunning(layout, previous);
    if (options.nodes !== undefined && options.nodes !== previous.nodes.length) {
      console.log(`(--nodes ${options.nodes} ignored: this cluster has ${previous.nodes.length}; stop it and start with --fresh for a new one)`);
    }
    if (options.tls && previous.tls === undefined) {
      console.log('(--tls ignored: this cluster runs without TLS; stop it and start with --fresh --tls for a new one)');
    }
    return;
  }
  if (options.fresh) {
    await wipe(layout, previous);
    previous = null;
  } else if (previous === null && (await hasNodeData(layout))) {
    throw new ClusterScriptError(
      `${displayPath(layout.dataRoot)} holds node data but there is no ${STATE_FILE_NAME} next to it; ` +
        `\`${npmCommand(layout, 'start', '--fresh')}\` wipes it and starts a new cluster`,
    );
  }
  if (previous !== null && options.nodes !== undefined && options.nodes !== previous.nodes.length) {
    throw new ClusterScriptError(
      `the cluster in ${displayPath(layout.dir)} has ${previous.nodes.length} nodes and its data is theirs; ` +
        `\`${npmCommand(layout, 'start', '--fresh', '--nodes', String(options.nodes))}\` wipes it for a new ${options.nodes}-node cluster ` +
        `(or \`${npmCommand(layout, 'start')}\` resumes the ${previous.nodes.length}-node one)`,
    );
  }

  if (previous !== null && options.tls && previous.tls === undefined) {
    throw new ClusterScriptError(
      `the cluster in ${displayPath(layout.dir)} runs without TLS, and its members know each other so; ` +
        `\`${npmCommand(layout, 'start', '--fresh', '--tls')}\` wipes it for a new cluster with TLS`,
    );
  }
  if (previous !== null && options.basePort !== undefined && options.basePort !== previous.basePort) {
    throw new ClusterScriptError(
      `the cluster in ${displayPath(layout.dir)} listens on ports from ${previous.basePort}, and its members know each other there; ` +
        `\`${npmCommand(layout, 'start', '--fresh', '--base-port', String(options.basePort))}\` wipes it for a new cluster on other ports`,
    );
  }
  // A stopped cluster resumes with its nodes as they are now (added and removed ones included), not as first planned.
  const planned =
    previous !== null
      ? withLogLevel(previous, options.logLevel ?? previous.logLevel)
      : planCluster(layout, {
          nodeCount: options.nodes ?? DEFAULT_NODES,
          basePort: options.basePort ?? DEFAULT_BASE_PORT,
          logLevel: options.logLevel ?? DEFAULT_LOG_LEVEL,
        });
  const ports = planned.nodes.map((node) => Number(node.address.split(':')[1]));
  const busy = await busyPorts(LOOPBACK, ports);
  if (busy.length > 0) {
    throw new ClusterScriptError(
      `port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} on ${LOOPBACK} ${busy.length > 1 ? 'are' : 'is'} in use by another program; nothing was started. ` +
        `Stop that program, or choose other ports with --base-port (the nodes use ${ports[0]}..${ports.at(-1)}).`,
    );
  }

  await mkdir(layout.dir, { recursive: true });
  const secured = previous === null && options.tls ? await withTls(layout, planned) : planned;
  await writeState(layout, secured);
  console.log(
    `${previous === null ? 'Starting a new' : 'Resuming the'} ${secured.nodes.length}-node cluster in ${displayPath(layout.dir)}` +
      (previous === null ? '' : ' with its data') +
      (secured.tls === undefined ? '' : ` (mutual TLS: a throwaway CA and certificates in ${displayPath(tlsDir(layout))})`),
  );
  const state = await launchNodes(
    layout,
    secured,
    secured.nodes.map((node) => node.id),
  );
  for (const node of state.nodes) {
    console.log(`  ${node.id}  ${node.address}  pid ${node.pid}  log ${displayPath(node.logFile)}`);
  }
  console.log(`endpoints: ${state.nodes.map((node) => node.address).join(',')}`);

  const report = await waitForLeader(state);
  if (report.leader === null) {
    console.log('');
    for (const line of statusTable(report)) console.log(line);
    console.log(`\nNo leader after ${LEADER_TIMEOUT_MS / 1000} s. The nodes are left running; their logs say why.`);
    process.exitCode = 1;
    return;
  }
  console.log(`leader: ${report.leader.id} (term ${report.leader.term})\n`);
  const follower = state.nodes.find((node) => node.id !== report.leader?.id) ?? state.nodes[0];
  for (const line of nextSteps(layout, state, follower?.id ?? 'n1')) console.log(line);
}

/** A new CA, a client certificate, and a certificate per node with the flags that use it. */
async function withTls(layout: ClusterLayout, state: ClusterState): Promise<ClusterState> {
  const tls = await createClusterTls(layout);
  const nodes: NodeRecord[] = [];
  for (const node of state.nodes) nodes.push(await withNodeCertificate(layout, tls, node));
  return { ...state, tls, nodes };
}

function withLogLevel(state: ClusterState, logLevel: string): ClusterState {
  const args = (node: NodeRecord) => node.args.map((arg, i) => (node.args[i - 1] === '--log-level' ? logLevel : arg));
  return { ...state, logLevel, nodes: state.nodes.map((node) => ({ ...node, args: args(node), pid: null })) };
}

/** Until every node answers and follows the same leader in the same term. */
async function waitForLeader(state: ClusterState): Promise<ClusterReport> {
  let last: ClusterReport | undefined;
  const agreed = await pollUntil(
    async () => {
      last = await queryCluster(state);
      const { leader } = last;
      if (leader === null) return undefined;
      const statuses = last.nodes.flatMap((entry) => (entry.state === 'up' ? [entry.status] : []));
      return statuses.length === state.nodes.length && statuses.every((s) => s.leader === leader.id && s.term === leader.term) ? last : undefined;
    },
    { timeoutMs: LEADER_TIMEOUT_MS, intervalMs: 200 },
  );
  return agreed ?? last ?? (await queryCluster(state));
}

async function anyRunning(state: ClusterState): Promise<boolean> {
  const pids = await Promise.all(state.nodes.map(runningPid));
  return pids.some((pid) => pid !== null);
}

async function reportAlreadyRunning(layout: ClusterLayout, state: ClusterState): Promise<void> {
  const report = await queryCluster(state);
  const running = report.nodes.filter((entry) => entry.state !== 'down');
  console.log(`The cluster in ${displayPath(layout.dir)} is already running (${running.length} of ${state.nodes.length} nodes); nothing started.\n`);
  for (const line of statusTable(report)) console.log(line);
  const down = report.nodes.filter((entry) => entry.state === 'down').map((entry) => entry.node.id);
  if (down.length > 0) console.log(`\nStart the others with: ${down.map((id) => npmCommand(layout, 'restart', id)).join('; ')}`);
}

/** Removes only what start creates (data/, the state file, n<k>.log), never the directory itself: --dir may name one the user keeps other things in. */
async function wipe(layout: ClusterLayout, previous: ClusterState | null): Promise<void> {
  await rm(layout.dataRoot, { recursive: true, force: true });
  await rm(layout.stateFile, { force: true });
  await rm(tlsDir(layout), { recursive: true, force: true });
  const logs = new Set(previous?.nodes.map((node) => node.logFile) ?? []);
  for (const name of await entries(layout.dir)) {
    if (/^n\d+\.log$/.test(name)) logs.add(join(layout.dir, name));
  }
  await Promise.all([...logs].map((file) => rm(file, { force: true })));
}

async function hasNodeData(layout: ClusterLayout): Promise<boolean> {
  return (await entries(layout.dataRoot)).length > 0;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
