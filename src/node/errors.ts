import * as grpc from '@grpc/grpc-js';
import type { NodeId } from '../raft/types.js';

/** What a client can act on without parsing the message: sent with the status as trailing metadata. */
export interface ClientErrorFacts {
  /** With OUT_OF_RANGE from ReadLog: the first index the node still holds (the entries before it were compacted). */
  readonly firstIndex?: number;
}

/** An error that becomes a gRPC status for the client. */
export class ClientError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
    readonly facts: ClientErrorFacts = {},
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

/** This node cannot do it, but the leader (if known) can. */
export class NotLeaderError extends ClientError {
  constructor(
    readonly node: NodeId,
    readonly term: number,
    readonly leader: NodeId | null,
  ) {
    super(
      grpc.status.UNAVAILABLE,
      leader === null
        ? `no leader is known to node ${node} in term ${term} (an election may be under way); retry shortly`
        : `node ${node} is not the leader; ${leader} leads term ${term}`,
    );
    this.name = 'NotLeaderError';
  }
}

/**
 * The leader is handing leadership over (TransferLeadership, a graceful
 * stop): nothing was written. A node holds such a request until the handover
 * ends, then serves or forwards it (leader-hold.ts).
 */
export class LeaderChangingError extends ClientError {
  constructor(message: string) {
    super(grpc.status.UNAVAILABLE, message);
    this.name = 'LeaderChangingError';
  }
}

/** The leader this node knows could not be reached to forward a call to; the call was not sent. */
export class LeaderUnreachableError extends ClientError {
  constructor(
    readonly leader: NodeId,
    readonly term: number,
    message: string,
  ) {
    super(grpc.status.UNAVAILABLE, message);
    this.name = 'LeaderUnreachableError';
  }
}

export const invalidArgument = (message: string) => new ClientError(grpc.status.INVALID_ARGUMENT, message);
export const failedPrecondition = (message: string) => new ClientError(grpc.status.FAILED_PRECONDITION, message);
export const aborted = (message: string) => new ClientError(grpc.status.ABORTED, message);
export const unavailable = (message: string) => new ClientError(grpc.status.UNAVAILABLE, message);
export const deadlineExceeded = (message: string) => new ClientError(grpc.status.DEADLINE_EXCEEDED, message);

/** The state machine refuses (or would refuse) a producer's write or a consumer's commit: nothing changed. */
export function stateRefusal(node: NodeId, reason: string, message: string, entry?: { readonly index: number; readonly term: number }): ClientError {
  const code = reason === 'invalid-consumer' || reason === 'invalid-sequence' ? grpc.status.INVALID_ARGUMENT : grpc.status.FAILED_PRECONDITION;
  const where = entry === undefined ? 'nothing was written' : `entry ${entry.index} (term ${entry.term}) changed nothing`;
  return new ClientError(code, `node ${node}: ${where}: ${message}`);
}

export const producerRefusal = (node: NodeId, reason: string, message: string) => stateRefusal(node, reason, message);
