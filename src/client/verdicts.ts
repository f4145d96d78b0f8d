/**
 * What a call does after a failed attempt: try the next endpoint, or end
 * with an error that says whether the request certainly did not take effect
 * or may have (RaftLogIndeterminateError, for writes only).
 *
 * A write is retried only when it certainly did not take effect: nothing was
 * sent, or the node answered that it did not carry it out (UNAVAILABLE: no
 * leader known; RESOURCE_EXHAUSTED: too many writes waiting to commit). A
 * write that was (or may have been) sent and then timed out, lost its
 * connection or hit an unexpected server failure is indeterminate and never
 * retried, as even a repeated Put could undo a later write of another
 * client. Reads change nothing, so they also move on after a lost connection.
 *
 * An idempotent write (exactly-once: it carries a producer stamp, and the
 * cluster applies each stamp at most once and answers a retry with the first
 * application's result) is also retried, with the same stamp, after a
 * failure that leaves its outcome open. Once an attempt may have taken
 * effect, a later definite refusal no longer proves that nothing was
 * written, so such a call ends indeterminate whatever comes after, success
 * apart; and its deadline passing without a definite answer makes it
 * indeterminate rather than unavailable (outOfTimeError).
 */
import * as grpc from '@grpc/grpc-js';
import { type CallFailure, reasonOf } from './call-failure.js';
import {
  type AttemptFailure,
  FIRST_INDEX_METADATA_KEY,
  RaftLogCompactedError,
  RaftLogDeadlineExceededError,
  RaftLogError,
  RaftLogFailedPreconditionError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  type RaftLogOperation,
  RaftLogUnavailableError,
  StatusCode,
  statusCodeName,
} from './errors.js';

/** What the verdict on a failed attempt depends on besides the failure. */
export interface CallTraits {
  readonly name: RaftLogOperation;
  /** Writes are never retried once they may have been sent, unless idempotent. */
  readonly write: boolean;
  readonly deadlineMs: number;
  /**
   * A write applied at most once however often it is sent (a producer
   * stamp): retried after failures that leave its outcome open.
   */
  readonly idempotent?: boolean;
  /** An error particular to this operation for a status the node answered with; null (or absent) for the general rules. */
  serverError?(failure: CallFailure, attempts: readonly AttemptFailure[]): RaftLogError | null;
}

/** Codes with which a node says it did not carry out the request; any other failure of a write leaves its outcome open. */
const DEFINITE_SERVER_CODES: ReadonlySet<number> = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.PERMISSION_DENIED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNIMPLEMENTED,
  grpc.status.UNAVAILABLE,
  grpc.status.UNAUTHENTICATED,
]);

/**
 * Whether the request may have taken effect in the attempt that failed so:
 * it was sent, and the node did not answer with a status that says it did
 * not carry it out.
 */
export function leavesOutcomeOpen(failure: CallFailure): boolean {
  return !(failure.notSent || (failure.fromServer && DEFINITE_SERVER_CODES.has(failure.code)));
}

/**
 * Whether a node's status refuses a producer write because it does not know
 * the producer (never registered, or forgotten). The node says so only in
 * words (see ProducerStamp in client.proto): "producer 12 is unknown: ...".
 */
export function isUnknownProducer(code: number, details: string): boolean {
  return code === StatusCode.FAILED_PRECONDITION && /\bproducer \d+ is unknown\b/.test(details);
}

/**
 * Null to retry on the next endpoint; otherwise the error the call ends with.
 * `attempts` includes this failure's. `earlierOutcomeOpen`: an earlier
 * attempt of this call may have taken effect (only an idempotent write gets
 * past such an attempt).
 */
export function verdict(op: CallTraits, failure: CallFailure, attempts: readonly AttemptFailure[], earlierOutcomeOpen = false): RaftLogError | null {
  const { endpoint, code, details } = failure;
  const reason = reasonOf(failure);
  const base = { operation: op.name, code, endpoint, details, attempts };

  if (failure.closed) {
    if (op.write && (!failure.notSent || earlierOutcomeOpen)) {
      return new RaftLogIndeterminateError({
        ...base,
        message: `${op.name} on ${endpoint}: the client was closed while the write was under way; it may or may not have been committed`,
      });
    }
    return closedError(op.name, attempts);
  }
  // Certainly not carried out, and another node may do better.
  if (failure.notSent || (failure.fromServer && code === StatusCode.UNAVAILABLE)) return null;
  // Certainly not carried out: the leader has more writes waiting to commit than it takes. The next attempt
  // comes after the growing, jittered pause between attempts, and past the deadline the call ends as unavailable.
  if (failure.fromServer && code === StatusCode.RESOURCE_EXHAUSTED) return null;
  if (op.idempotent) {
    // Sending it again cannot apply it twice.
    if (leavesOutcomeOpen(failure)) return null;
    if (earlierOutcomeOpen) return refusedAfterOpenAttempt(op, failure, attempts);
  }
  const particular = failure.fromServer ? (op.serverError?.(failure, attempts) ?? null) : null;
  if (particular !== null) return particular;
  if (failure.fromServer && code === StatusCode.FAILED_PRECONDITION) {
    return new RaftLogFailedPreconditionError({
      ...base,
      message: `${op.name} refused by ${endpoint}: ${details || 'failed precondition'} (FAILED_PRECONDITION)`,
    });
  }
  // Not certain for a write: the node may have committed it.
  if (op.write && !(failure.fromServer && DEFINITE_SERVER_CODES.has(code))) {
    return new RaftLogIndeterminateError({
      ...base,
      message: `${op.name} on ${endpoint}: ${reason}; the write may or may not have been committed (${statusCodeName(code)})`,
    });
  }
  if (code === StatusCode.INVALID_ARGUMENT) {
    return new RaftLogInvalidArgumentError({
      ...base,
      message: `${op.name} rejected by ${endpoint}: ${details || 'invalid argument'} (INVALID_ARGUMENT)`,
    });
  }
  if (code === StatusCode.DEADLINE_EXCEEDED) {
    return new RaftLogDeadlineExceededError({
      ...base,
      message: `${op.name} on ${endpoint}: no reply within the deadline of ${op.deadlineMs} ms (DEADLINE_EXCEEDED)`,
    });
  }
  // A read whose connection was lost changed nothing: try another node.
  if (!op.write && !failure.fromServer && (code === StatusCode.UNAVAILABLE || code === StatusCode.CANCELLED)) return null;
  return new RaftLogError({ ...base, message: `${op.name} on ${endpoint} failed: ${reason}` });
}

/**
 * A definite refusal of an idempotent write after an earlier attempt that
 * may have applied it: the refusal speaks for this attempt only.
 */
function refusedAfterOpenAttempt(op: CallTraits, failure: CallFailure, attempts: readonly AttemptFailure[]): RaftLogIndeterminateError {
  const { endpoint, code, details } = failure;
  const message = isUnknownProducer(code, details)
    ? `${op.name} on ${endpoint}: the cluster no longer knows the producer session this write was stamped with (${details}); ` +
      `an earlier attempt may have applied the write under that session, and its outcome was forgotten with it, so sending the write ` +
      `again under a new session could apply it twice: it may or may not have been committed`
    : `${op.name} on ${endpoint}: ${reasonOf(failure)}, after an earlier attempt that may have applied the write; ` +
      `it may or may not have been committed`;
  return new RaftLogIndeterminateError({ operation: op.name, code, endpoint, details, attempts, message });
}

/**
 * The error of a call whose deadline left no time for another attempt.
 * Indeterminate for a write one of whose attempts may have taken effect
 * (only an idempotent write keeps trying after one); otherwise no node took
 * the request: unavailable.
 */
export function outOfTimeError(op: CallTraits, attempts: readonly AttemptFailure[], elapsedMs: number, outcomeOpen: boolean): RaftLogError {
  const last = attempts[attempts.length - 1];
  if (!op.write || !outcomeOpen || last === undefined) return unavailableError(op.name, attempts, elapsedMs);
  const tries = `${attempts.length === 1 ? '1 attempt' : `${attempts.length} attempts`} in ${elapsedMs} ms`;
  return new RaftLogIndeterminateError({
    operation: op.name,
    code: last.code,
    endpoint: last.endpoint,
    details: last.reason,
    attempts,
    message:
      `${op.name}: no definite answer within the deadline of ${op.deadlineMs} ms (${tries}; the last on ${last.endpoint}: ${last.reason}); ` +
      `the write may or may not have been committed`,
  });
}

/**
 * A node's OUT_OF_RANGE answer to ReadLog, when it gives the first index it
 * holds. Without that (a node of another version), the general error.
 */
export function compactedError(fromIndex: number, failure: CallFailure, attempts: readonly AttemptFailure[]): RaftLogCompactedError | null {
  if (failure.code !== StatusCode.OUT_OF_RANGE) return null;
  const given = failure.trailers?.get(FIRST_INDEX_METADATA_KEY)[0];
  const firstIndex = typeof given === 'string' && /^[1-9][0-9]*$/.test(given) ? Number(given) : NaN;
  if (!Number.isSafeInteger(firstIndex)) return null;
  const { endpoint, code, details } = failure;
  return new RaftLogCompactedError({
    operation: 'readLog',
    code,
    endpoint,
    details,
    attempts,
    fromIndex,
    firstIndex,
    message: `readLog on ${endpoint}: ${details || `cannot read from index ${fromIndex}: the log starts at ${firstIndex}`} (OUT_OF_RANGE)`,
  });
}

/** The error of a call that found no node to take it before its deadline (or on the one endpoint it named). */
export function unavailableError(operation: RaftLogOperation, attempts: readonly AttemptFailure[], elapsedMs: number): RaftLogUnavailableError {
  const last = attempts[attempts.length - 1];
  // The latest word from each endpoint, in the order they were first tried.
  const latest = new Map<string, string>();
  for (const attempt of attempts) latest.set(attempt.endpoint, attempt.reason);
  const tries = `${attempts.length === 1 ? '1 attempt' : `${attempts.length} attempts`} in ${elapsedMs} ms`;
  let message: string;
  if (latest.size === 1 && last !== undefined) {
    message = `${operation} on ${last.endpoint}: ${last.reason} (${tries})`;
  } else {
    const summary = [...latest].map(([endpoint, reason]) => `${endpoint}: ${reason}`).join('; ');
    message = `${operation}: no node could take the request (${tries}; ${summary})`;
  }
  return new RaftLogUnavailableError({
    operation,
    code: StatusCode.UNAVAILABLE,
    endpoint: last?.endpoint ?? null,
    details: last?.reason ?? '',
    attempts,
    message,
  });
}

/**
 * The error of a call made, or under way, after close(). `writeMayHaveTakenEffect`:
 * an earlier attempt of the write left its outcome open (then it is
 * indeterminate).
 */
export function closedError(operation: RaftLogOperation, attempts: readonly AttemptFailure[] = [], writeMayHaveTakenEffect = false): RaftLogError {
  const last = attempts[attempts.length - 1];
  if (writeMayHaveTakenEffect && last !== undefined) {
    return new RaftLogIndeterminateError({
      operation,
      code: StatusCode.CANCELLED,
      endpoint: last.endpoint,
      attempts,
      message: `${operation}: the client was closed between attempts of the write, after one that may have committed it; it may or may not have been committed`,
    });
  }
  return new RaftLogError({
    operation,
    code: StatusCode.CANCELLED,
    endpoint: null,
    message: `${operation}: the client is closed`,
    attempts,
  });
}
