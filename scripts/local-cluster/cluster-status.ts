/** Where each node of the local cluster stands: its process, and what it answers to the Status RPC. */
import { type NodeStatus, RaftLogClient } from '../../src/client/index.js';
import type { ClusterState, NodeRecord } from './cluster-state.js';
import { clientTls } from './cluster-tls.js';
import { runningPid } from './node-process.js';

/** One Status call; a live node on a loaded machine answers well within this. */
const STATUS_DEADLINE_MS = 2_000;

export type NodeReport =
  /** No process runs this node. */
  | { readonly node: NodeRecord; readonly state: 'down' }
  /** Its process runs but did not answer (starting, or stuck). */
  | { readonly node: NodeRecord; readonly state: 'unreachable'; readonly pid: number; readonly reason: string }
  | { readonly node: NodeRecord; readonly state: 'up'; readonly pid: number; readonly status: NodeStatus };

export interface ClusterReport {
  readonly nodes: readonly NodeReport[];
  /** The leader of the highest term any node that answered reports itself leader of; null if none does. */
  readonly leader: { readonly id: string; readonly term: number } | null;
}

export async function queryCluster(state: ClusterState): Promise<ClusterReport> {
  // Only running nodes are asked: a down node would make the client retry until the deadline.
  const client = new RaftLogClient({
    endpoints: state.nodes.map((node) => `${node.id}=${node.address}`),
    deadlineMs: STATUS_DEADLINE_MS,
    discoverLeader: false,
    ...clientTls(state),
  });
  try {
    const nodes = await Promise.all(state.nodes.map((node) => queryNode(client, node)));
    return { nodes, leader: leaderOf(nodes) };
  } finally {
    client.close();
  }
}

export function upNodes(report: ClusterReport): NodeStatus[] {
  return report.nodes.flatMap((entry) => (entry.state === 'up' ? [entry.status] : []));
}

async function queryNode(client: RaftLogClient, node: NodeRecord): Promise<NodeReport> {
  const pid = await runningPid(node);
  if (pid === null) return { node, state: 'down' };
  try {
    return { node, state: 'up', pid, status: await client.status(node.address) };
  } catch (error) {
    return { node, state: 'unreachable', pid, reason: error instanceof Error ? error.message : String(error) };
  }
}

function leaderOf(nodes: readonly NodeReport[]): ClusterReport['leader'] {
  let leader: ClusterReport['leader'] = null;
  for (const entry of nodes) {
    if (entry.state !== 'up' || entry.status.role !== 'leader') continue;
    if (leader === null || entry.status.term > leader.term) leader = { id: entry.status.node, term: entry.status.term };
  }
  return leader;
}
