/**
 * What one failed attempt tells, as far as the client can tell: whether the
 * node itself answered with the status, whether anything was sent at all,
 * and what went wrong in words. (What the call then does about it is in
 * verdicts.ts.)
 */
import type * as grpc from '@grpc/grpc-js';
import { type AttemptFailure, StatusCode, statusCodeName } from './errors.js';

/** How an attempt failed, as far as the client can tell. */
export interface CallFailure {
  readonly endpoint: string;
  readonly code: number;
  readonly details: string;
  /** The node answered with this status (a gRPC trailers-only response), rather than the client seeing the call fail. */
  readonly fromServer: boolean;
  /** Nothing was sent: no connection to the endpoint was established in time. */
  readonly notSent: boolean;
  /** The client was closed while the call was under way. */
  readonly closed: boolean;
  /** The metadata that came with the status (trailers); null when the client made the failure up. */
  readonly trailers: grpc.Metadata | null;
}

export type AttemptOutcome<R> = { readonly ok: true; readonly reply: R } | { readonly ok: false; readonly failure: CallFailure };

/** A failure the client saw itself, without a status from the node (by default: sent, then failed). */
export function clientSideFailure(
  endpoint: string,
  code: number,
  details: string,
  flags: Partial<Pick<CallFailure, 'notSent' | 'closed'>> = {},
): CallFailure {
  return { endpoint, code, details, fromServer: false, notSent: false, closed: false, trailers: null, ...flags };
}

/** What a call that grpc-js failed tells about where it failed. */
export function failureOfCall(endpoint: string, error: grpc.ServiceError | null, closed: boolean): CallFailure {
  const code = error?.code ?? StatusCode.INTERNAL;
  const details = error?.details ?? 'the reply was empty';
  const trailers = error?.metadata ?? null;
  const failure = { endpoint, code, details, fromServer: false, notSent: false, closed, trailers };
  // A status the server sent without sending headers first comes in a
  // trailers-only response, which carries a content-type; a status the
  // client made up (deadline, lost connection) has no metadata at all. (A
  // server status after headers cannot be told apart from a lost
  // connection, and is taken as the latter: on the safe side for writes.)
  if ((trailers?.get('content-type').length ?? 0) > 0) return { ...failure, fromServer: true };
  // The connection went down between waitForConnection and the call:
  // grpc-js fails the call while picking a connection for it, before
  // anything is sent, with this wording. (Were the wording to change, such
  // a write would be reported indeterminate: wrong, but on the safe side.)
  if (code === StatusCode.UNAVAILABLE && /\bNo connection established\b/.test(details)) {
    const cause = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/.exec(details)?.[1];
    return { ...failure, details: `could not connect${cause ? `: ${cause}` : ''}`, notSent: true };
  }
  return failure;
}

/** What went wrong in one attempt, in words. */
export function reasonOf(failure: CallFailure): string {
  const codeName = statusCodeName(failure.code);
  if (failure.notSent) return failure.details;
  if (failure.fromServer) {
    return failure.details === '' ? `the node answered ${codeName}` : `the node answered ${codeName}: ${failure.details}`;
  }
  switch (failure.code) {
    case StatusCode.DEADLINE_EXCEEDED:
      return 'no reply before the deadline';
    case StatusCode.UNAVAILABLE:
    case StatusCode.CANCELLED:
      return `the connection was lost (${failure.details})`;
    default:
      return `the call failed: ${failure.details} (${codeName})`;
  }
}

/** The failure as kept on the error the call finally throws. */
export function attemptFailure(failure: CallFailure): AttemptFailure {
  return {
    endpoint: failure.endpoint,
    code: failure.code,
    codeName: statusCodeName(failure.code),
    reason: reasonOf(failure),
    fromServer: failure.fromServer,
  };
}
