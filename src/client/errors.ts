/**
 * Errors of the raftlog client. Every one carries the gRPC status code (as a
 * number and a name), the endpoint that produced it (null when the client
 * rejected the call before sending it, or when no single endpoint is to
 * blame), the operation, and a message meant for a person.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';

export type RaftLogOperation =
  | 'put'
  | 'get'
  | 'delete'
  | 'compareAndSwap'
  | 'append'
  | 'status'
  | 'readLog'
  | 'memberList'
  | 'memberAdd'
  | 'memberPromote'
  | 'memberRemove'
  | 'transferLeadership'
  | 'subscribe'
  | 'commitPosition'
  | 'deleteConsumer'
  | 'consumers';

/** Status codes used by the client for failures it detects itself. */
export const StatusCode = {
  OK: GrpcStatus.OK,
  CANCELLED: GrpcStatus.CANCELLED,
  UNKNOWN: GrpcStatus.UNKNOWN,
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
  INTERNAL: GrpcStatus.INTERNAL,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  OUT_OF_RANGE: GrpcStatus.OUT_OF_RANGE,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
} as const;

/** The trailer that gives the first log index a node still holds (part of the client API's contract). */
export { FIRST_INDEX_METADATA_KEY } from '../api/client-api.js';

/** The name of a gRPC status code, e.g. 14 → "UNAVAILABLE". */
export function statusCodeName(code: number): string {
  const name: unknown = (GrpcStatus as unknown as Record<number, unknown>)[code];
  return typeof name === 'string' ? name : `CODE_${code}`;
}

/** One failed attempt on one endpoint, kept on the error the call finally throws. */
export interface AttemptFailure {
  readonly endpoint: string;
  readonly code: number;
  readonly codeName: string;
  /** What went wrong, for a person. */
  readonly reason: string;
  /** True when the node itself answered with this status; false for a failure seen only by the client (connection, deadline). */
  readonly fromServer: boolean;
}

export interface RaftLogErrorInit {
  readonly operation: RaftLogOperation;
  readonly code: number;
  readonly endpoint: string | null;
  readonly message: string;
  /** The status details as the server or gRPC gave them ("" when the client made the error up). */
  readonly details?: string;
  readonly attempts?: readonly AttemptFailure[];
  readonly cause?: unknown;
}

export class RaftLogError extends Error {
  override name = 'RaftLogError';
  /** The gRPC status code. */
  readonly code: number;
  /** The gRPC status code's name, e.g. "UNAVAILABLE". */
  readonly codeName: string;
  /** The endpoint (host:port) that failed, or null when the client rejected the call itself or several endpoints failed alike. */
  readonly endpoint: string | null;
  readonly operation: RaftLogOperation;
  /** The raw status details. */
  readonly details: string;
  /** Every failed attempt of the call, oldest first (the last one is what this error is about). */
  readonly attempts: readonly AttemptFailure[];

  constructor(init: RaftLogErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.codeName = statusCodeName(init.code);
    this.endpoint = init.endpoint;
    this.operation = init.operation;
    this.details = init.details ?? '';
    this.attempts = init.attempts ?? [];
  }
}

/**
 * No node could take the call before its deadline: each said UNAVAILABLE (no
 * leader known) or could not be reached. Nothing was committed by the
 * attempts that reported this, so the call can safely be tried again later.
 */
export class RaftLogUnavailableError extends RaftLogError {
  override name = 'RaftLogUnavailableError';
}

/**
 * A write whose outcome is unknown: it was (or may have been) sent, and then
 * the deadline passed, the connection was lost, or the server failed in a way
 * that does not say whether it committed. It may or may not have taken
 * effect. Without exactlyOnce the client does not retry such a write; with
 * it, the client retried it with the same producer stamp until the deadline
 * and still got no answer. Read the key (or the log) to find out.
 */
export class RaftLogIndeterminateError extends RaftLogError {
  override name = 'RaftLogIndeterminateError';
}

/**
 * The call was malformed or over a limit: rejected by the client before it
 * was sent (then `endpoint` is null) or by the server with INVALID_ARGUMENT.
 * Trying again will not help.
 */
export class RaftLogInvalidArgumentError extends RaftLogError {
  override name = 'RaftLogInvalidArgumentError';
}

/**
 * The cluster refused the request as things stand (the node answered
 * FAILED_PRECONDITION): promoting a learner that is still catching up (the
 * message says how far behind it is), a membership change while another is
 * not yet committed, or a removal that would leave the voters without a
 * quorum. Nothing changed; the same request may succeed once the condition
 * is gone.
 */
export class RaftLogFailedPreconditionError extends RaftLogError {
  override name = 'RaftLogFailedPreconditionError';
}

/** A read (Get, Status) that got no answer before its deadline. Nothing changed; it can be tried again. */
export class RaftLogDeadlineExceededError extends RaftLogError {
  override name = 'RaftLogDeadlineExceededError';
}

export interface RaftLogCompactedErrorInit extends RaftLogErrorInit {
  readonly fromIndex: number;
  readonly firstIndex: number;
}

/**
 * readLog() asked for entries the node no longer holds: they were compacted
 * into a snapshot (the node answered OUT_OF_RANGE). Nothing is wrong with
 * the cluster; read again from `firstIndex`, knowing that the entries from
 * `fromIndex` up to it are gone from that node's log (their effect lives on
 * in the state). Asking again from `fromIndex` will not help.
 */
export class RaftLogCompactedError extends RaftLogError {
  override name = 'RaftLogCompactedError';
  /** The index readLog() was asked to read from. */
  readonly fromIndex: number;
  /** The first index the node still holds: reading from it works. */
  readonly firstIndex: number;

  constructor(init: RaftLogCompactedErrorInit) {
    super(init);
    this.fromIndex = init.fromIndex;
    this.firstIndex = init.firstIndex;
  }
}

/** A call the client refused to send because an argument is malformed or over a limit. */
export function rejectedBeforeSending(operation: RaftLogOperation, message: string): RaftLogInvalidArgumentError {
  return new RaftLogInvalidArgumentError({
    operation,
    code: StatusCode.INVALID_ARGUMENT,
    endpoint: null,
    message: `${operation}: ${message} (rejected before sending)`,
  });
}
