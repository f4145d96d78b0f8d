/**
 * What the dashboard knows about the cluster after one poll: every node it
 * has ever seen (a node that stops answering keeps its last answer, marked
 * down), who leads, the configuration and the durable consumers. Plain data,
 * sent to the page as JSON.
 */
import type { ConsumerStatus, NodeStatus } from '../client/index.js';

export interface NodeSample {
  /** The node's id (as given with its endpoint, else as it answered; its address until it has). */
  readonly id: string;
  readonly address: string;
  /** It answered the latest poll. */
  readonly up: boolean;
  /** Its latest answer; while it is down, the last one it gave (null: it never answered). */
  readonly status: NodeStatus | null;
  /** When that answer came (ms since the Unix epoch); null when it never answered. */
  readonly answeredAtMs: number | null;
  /** Why the latest poll failed; null while it answers. */
  readonly error: string | null;
  /** It is in the configuration the cluster reports. A node that left is still shown (false), not dropped. */
  readonly member: boolean;
}

export interface ConfigMember {
  readonly id: string;
  /** "voter" or "learner". */
  readonly role: string;
  readonly address: string;
}

export interface ConsumersSample {
  readonly consumers: readonly ConsumerStatus[];
  /** The commit index their lags are measured against. */
  readonly commitIndex: number;
  /** The node that answered. */
  readonly node: string;
  readonly atMs: number;
  /** The latest ask failed: these are the positions from the last one that did not. */
  readonly stale: boolean;
}

export interface ClusterSample {
  readonly atMs: number;
  readonly nodes: readonly NodeSample[];
  /** The answering node that leads in the highest term; null when none answers as leader. */
  readonly leader: { readonly id: string; readonly term: number } | null;
  /** The highest term an answering node reports; 0 when none answered. */
  readonly term: number;
  /** The highest commit index an answering node reports: the log's clock, which events are placed on. */
  readonly commitIndex: number;
  /** The configuration as the leader reports it, else the answering node of the highest term, else the last known one. */
  readonly members: readonly ConfigMember[];
  readonly consumers: ConsumersSample | null;
}

/** The cluster-wide fields of a sample, from its nodes (and the configuration known before, when no node reports one now). */
export function clusterSample(
  atMs: number,
  nodes: readonly NodeSample[],
  consumers: ConsumersSample | null,
  previousMembers: readonly ConfigMember[],
): ClusterSample {
  const answering = nodes.flatMap((node) => (node.up && node.status !== null ? [node.status] : []));
  let leader: ClusterSample['leader'] = null;
  let term = 0;
  let commitIndex = 0;
  let configSource: NodeStatus | null = null;
  for (const status of answering) {
    term = Math.max(term, status.term);
    commitIndex = Math.max(commitIndex, status.commitIndex);
    if (status.role === 'leader' && (leader === null || status.term > leader.term)) leader = { id: status.node, term: status.term };
    if (status.memberStatus.length > 0 && (configSource === null || status.term > configSource.term)) configSource = status;
  }
  const leaderStatus = leader === null ? undefined : answering.find((status) => status.node === leader?.id && status.memberStatus.length > 0);
  const source = leaderStatus ?? configSource;
  const members = source === null ? previousMembers : source.memberStatus.map(({ id, role, address }) => ({ id, role, address }));
  const memberIds = new Set(members.map((member) => member.id));
  return {
    atMs,
    // Before any configuration is known, every node counts as a member.
    nodes: nodes.map((node) => ({ ...node, member: memberIds.size === 0 || memberIds.has(node.id) })),
    leader,
    term,
    commitIndex,
    members,
    consumers,
  };
}
