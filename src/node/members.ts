import type { MemberStatus } from './client-proto.js';
import type { MembershipView } from './node-membership.js';
import type { RaftNode } from './raft-node.js';

/**
 * A configuration member by member, as Status and the Cluster service report
 * it: voters, then learners. Match indexes come from the leader's progress,
 * and the leader's own is its last index (`lastIndex`); a node that is not
 * the leader knows none and says 0. An address the configuration lacks (a
 * cluster bootstrapped from --peers) comes from the node's address book.
 */
export function membersOf(node: RaftNode, view: MembershipView, lastIndex: number): MemberStatus[] {
  const matchIndexes = new Map<string, number>((view.progress ?? []).map((follower) => [follower.id, follower.matchIndex]));
  if (view.progress !== null) matchIndexes.set(node.id, lastIndex);
  const addresses = view.config.addresses ?? {};
  const member = (id: string, role: MemberStatus['role']): MemberStatus => ({
    id,
    address: addresses[id] ?? node.addressOf(id) ?? '',
    role,
    matchIndex: matchIndexes.get(id) ?? 0,
  });
  return [...view.config.voters.map((id) => member(id, 'voter')), ...(view.config.learners ?? []).map((id) => member(id, 'learner'))];
}
