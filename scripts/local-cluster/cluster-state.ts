/**
 * The state file (`cluster.json` in the cluster directory): what `start` set
 * up, so that the other commands, run later as separate processes, know each
 * node's address, pid, data directory, log file and the exact flags to start
 * it again with.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { ClusterScriptError } from './errors.js';
import { type ClusterLayout, displayPath } from './paths.js';

export const LOOPBACK = '127.0.0.1';
export const MIN_NODES = 1;
export const MAX_NODES = 7;

export interface NodeRecord {
  readonly id: string;
  /** host:port for peers and clients alike. */
  readonly address: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** Arguments after src/node/main.ts, reused verbatim by `restart`. */
  readonly args: readonly string[];
  /** The pid we last started it with; null once we saw it exit. May be stale: check before signalling. */
  readonly pid: number | null;
}

export interface ClusterState {
  readonly version: 1;
  /**
   * A name of its own (the nodes' --cluster) so that a node of this cluster
   * refuses peer traffic from another local cluster that happens to reuse a
   * port of a stopped node, e.g. a test cluster.
   */
  readonly name: string;
  readonly basePort: number;
  readonly logLevel: string;
  readonly nodes: readonly NodeRecord[];
  /** The highest node number this cluster has used (removed nodes included), so that `add-node` never reuses an id. */
  readonly highestId?: number;
  /** Set for a cluster started with --tls (cluster-tls.ts): the nodes' args name their certificates. */
  readonly tls?: ClusterTls;
}

/** PEM files of a local TLS cluster, in its directory. */
export interface ClusterTls {
  /** The throwaway CA that signs every certificate of the cluster. */
  readonly ca: string;
  readonly caKey: string;
  /** The certificate the scripts (and the CLI, if told) present to the nodes. */
  readonly clientCert: string;
  readonly clientKey: string;
}

export interface ClusterPlan {
  readonly nodeCount: number;
  readonly basePort: number;
  readonly logLevel: string;
  /** Kept when resuming; a new one otherwise. */
  readonly name?: string;
}

/** The nodes n1..nN on consecutive loopback ports from basePort, each with its data directory and log file under the layout. */
export function planCluster(layout: ClusterLayout, plan: ClusterPlan): ClusterState {
  const ids = Array.from({ length: plan.nodeCount }, (_, i) => `n${i + 1}`);
  const addressOf = (i: number) => `${LOOPBACK}:${plan.basePort + i}`;
  const peers = ids.map((id, i) => `${id}=${addressOf(i)}`).join(',');
  const name = plan.name ?? `local-${randomBytes(4).toString('hex')}`;
  return {
    version: 1,
    name,
    basePort: plan.basePort,
    logLevel: plan.logLevel,
    nodes: ids.map((id, i) => ({
      id,
      address: addressOf(i),
      dataDir: layout.dataDir(id),
      logFile: layout.logFile(id),
      args: ['--id', id, '--listen', addressOf(i), '--peers', peers, '--data', layout.dataDir(id), '--cluster', name, '--log-level', plan.logLevel],
      pid: null,
    })),
  };
}

export function withPid(state: ClusterState, id: string, pid: number | null): ClusterState {
  return { ...state, nodes: state.nodes.map((node) => (node.id === id ? { ...node, pid } : node)) };
}

export function findNode(state: ClusterState, id: string): NodeRecord {
  const node = state.nodes.find((candidate) => candidate.id === id);
  if (node === undefined) {
    throw new ClusterScriptError(`there is no node ${id}; the nodes are ${state.nodes.map((n) => n.id).join(', ')}`);
  }
  return node;
}

/** The state in `dir`, or null when there is none. Throws ClusterScriptError when the file is not a state file. */
export async function readState(layout: ClusterLayout): Promise<ClusterState | null> {
  let text: string;
  try {
    text = await readFile(layout.stateFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw unreadable(layout, (error as Error).message);
  }
  const problem = stateProblem(parsed);
  if (problem !== null) throw unreadable(layout, problem);
  return parsed as ClusterState;
}

/** Like readState, for the commands that need a cluster to act on. */
export async function requireState(layout: ClusterLayout): Promise<ClusterState> {
  const state = await readState(layout);
  if (state === null) {
    throw new ClusterScriptError(
      `no local cluster in ${displayPath(layout.dir)} (no ${displayPath(layout.stateFile)}); start one with \`npm start\``,
    );
  }
  return state;
}

/** Written to a temporary file and renamed, so that a reader never sees half a state file. */
export async function writeState(layout: ClusterLayout, state: ClusterState): Promise<void> {
  const temporary = `${layout.stateFile}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`);
  await rename(temporary, layout.stateFile);
}

function unreadable(layout: ClusterLayout, why: string): ClusterScriptError {
  return new ClusterScriptError(
    `${displayPath(layout.stateFile)} is not a local cluster state file (${why}); ` +
      'stop any nodes it started by hand, then remove the directory or use `npm start -- --fresh`',
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stateProblem(value: unknown): string | null {
  if (!isRecord(value)) return 'not a JSON object';
  if (value.version !== 1) return `unknown version ${JSON.stringify(value.version)}`;
  if (typeof value.name !== 'string') return 'no cluster name';
  if (typeof value.basePort !== 'number') return 'no basePort';
  if (typeof value.logLevel !== 'string') return 'no logLevel';
  if (!Array.isArray(value.nodes) || value.nodes.length === 0) return 'no nodes';
  if (value.highestId !== undefined && !(typeof value.highestId === 'number' && Number.isInteger(value.highestId))) return 'a bad highestId';
  if (
    value.tls !== undefined &&
    !(
      isRecord(value.tls) &&
      ['ca', 'caKey', 'clientCert', 'clientKey'].every((key) => typeof (value.tls as Record<string, unknown>)[key] === 'string')
    )
  ) {
    return 'a bad tls entry';
  }
  for (const node of value.nodes as unknown[]) {
    if (!isRecord(node)) return 'a node is not an object';
    for (const key of ['id', 'address', 'dataDir', 'logFile'] as const) {
      if (typeof node[key] !== 'string') return `a node has no ${key}`;
    }
    if (!Array.isArray(node.args) || !node.args.every((arg) => typeof arg === 'string')) return `node ${String(node.id)} has no args`;
    if (node.pid !== null && !(typeof node.pid === 'number' && Number.isInteger(node.pid) && node.pid > 0)) {
      return `node ${String(node.id)} has a bad pid`;
    }
  }
  return null;
}
