/**
 * The dashboard's timeline: what changed between two samples of the
 * cluster. Nodes report only where they stand, so events are found by
 * comparing: a higher term is an election, another leader a leader change,
 * a higher snapshot index a snapshot, another configuration a membership
 * change, and a node that stops (or starts again) answering is down (up).
 */
import type { ClusterSample, ConfigMember } from './cluster-sample.js';

export type DashboardEventKind = 'election' | 'leader' | 'snapshot' | 'membership' | 'down' | 'up';

export interface DashboardEvent {
  readonly atMs: number;
  readonly kind: DashboardEventKind;
  /** The node it is about; null for the cluster as a whole. */
  readonly node: string | null;
  /** The cluster's term (the highest one reported) when it was seen. */
  readonly term: number;
  /** The cluster's commit index when it was seen: where it happened on the log's clock. */
  readonly index: number;
  readonly message: string;
}

/**
 * What happened between `previous` and `next` (oldest first). Against no
 * previous sample (the dashboard just started), only what is worth knowing
 * from the start: who leads, and which nodes do not answer.
 */
export function deriveEvents(previous: ClusterSample | null, next: ClusterSample): DashboardEvent[] {
  const events: DashboardEvent[] = [];
  const add = (kind: DashboardEventKind, node: string | null, message: string) =>
    events.push({ atMs: next.atMs, kind, node, term: next.term, index: next.commitIndex, message });
  const before = new Map((previous?.nodes ?? []).map((node) => [node.id, node]));

  for (const node of next.nodes) {
    const was = before.get(node.id);
    if (node.up && was !== undefined && !was.up) {
      add('up', node.id, was.status === null ? `${node.id} answers` : `${node.id} answers again`);
    } else if (!node.up && (was === undefined || was.up)) {
      add('down', node.id, `${node.id} does not answer${node.error === null ? '' : `: ${node.error}`}`);
    }
  }

  // Before any node answered there was no term, leader or configuration to compare with.
  const known = previous !== null && previous.term > 0;
  if (known && next.term > previous.term) add('election', null, `term ${previous.term} → ${next.term}`);
  if (!known || !sameLeader(previous.leader, next.leader)) {
    if (next.leader !== null) add('leader', next.leader.id, `${next.leader.id} leads in term ${next.leader.term}`);
    else if (known && previous.leader !== null)
      add('leader', null, `no node answers as leader (was ${previous.leader.id} in term ${previous.leader.term})`);
  }

  for (const node of next.nodes) {
    const was = before.get(node.id)?.status;
    const now = node.status;
    if (was === undefined || was === null || now === null || !node.up || now.snapshotIndex <= was.snapshotIndex) continue;
    add('snapshot', node.id, `${node.id}: snapshot at ${now.snapshotIndex}${was.snapshotIndex > 0 ? ` (was ${was.snapshotIndex})` : ''}`);
  }

  if (previous !== null && previous.members.length > 0 && next.members.length > 0) {
    for (const message of membershipChanges(previous.members, next.members)) add('membership', message.node, message.text);
  }
  return events;
}

function sameLeader(a: ClusterSample['leader'], b: ClusterSample['leader']): boolean {
  return a === null || b === null ? a === b : a.id === b.id && a.term === b.term;
}

function membershipChanges(before: readonly ConfigMember[], after: readonly ConfigMember[]): { node: string; text: string }[] {
  const was = new Map(before.map((member) => [member.id, member.role]));
  const is = new Map(after.map((member) => [member.id, member.role]));
  const changes: { node: string; text: string }[] = [];
  for (const [id, role] of is) {
    const old = was.get(id);
    if (old === undefined) changes.push({ node: id, text: `${id} joined as ${role}` });
    else if (old !== role) changes.push({ node: id, text: `${id}: ${old} → ${role}` });
  }
  for (const id of was.keys()) if (!is.has(id)) changes.push({ node: id, text: `${id} left the configuration` });
  return changes;
}
