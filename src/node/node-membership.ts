/**
 * The node's side of membership changes: turning the core's refusals into
 * gRPC statuses a person understands, and the view of the configuration the
 * Cluster service and Status report.
 */
import * as grpc from '@grpc/grpc-js';
import type { ClusterConfig, NodeId, ProposeResult, RaftStatus } from '../raft/types.js';
import { ClientError, NotLeaderError, unavailable } from './errors.js';

export interface MembershipView {
  /** The configuration in force on this node (its latest, committed or not). */
  readonly config: ClusterConfig;
  /** Where it was appended (0: the bootstrap configuration). */
  readonly configIndex: number;
  /** configIndex <= this node's commit index. */
  readonly committed: boolean;
  readonly leader: NodeId | null;
  /** Only on the leader: each other member's match index. */
  readonly progress: readonly { readonly id: NodeId; readonly matchIndex: number }[] | null;
}

export function membershipView(status: RaftStatus): MembershipView {
  return {
    config: status.config,
    configIndex: status.configIndex,
    committed: status.configIndex <= status.commitIndex,
    leader: status.leader,
    progress: status.progress?.map((p) => ({ id: p.id, matchIndex: p.matchIndex })) ?? null,
  };
}

/** The error for a change the core would not take. */
export function refusalError(result: Extract<ProposeResult, { accepted: false }>, node: NodeId, term: number): ClientError {
  switch (result.reason) {
    case 'not-leader':
      return new NotLeaderError(node, term, result.leader);
    case 'invalid-config-change':
      return new ClientError(grpc.status.INVALID_ARGUMENT, result.message);
    case 'learner-behind':
    case 'config-change-pending':
    case 'quorum-at-risk':
      return new ClientError(grpc.status.FAILED_PRECONDITION, result.message);
    case 'too-large':
      return new ClientError(grpc.status.INVALID_ARGUMENT, result.message);
    case 'leader-not-ready':
    case 'transfer-in-progress':
      return unavailable(result.message);
  }
}
