/**
 * How the client's writes (put, delete, compareAndSwap, append) are made.
 * Without `exactlyOnce`, as any call: failover.ts, never retried once they
 * may have taken effect. With it, through the client's producer session
 * (producer-session.ts): each write carries a stamp, registered lazily on the
 * first write, and is retried with that stamp after a failure that leaves its
 * outcome open, until the call's deadline (verdicts.ts, `idempotent`).
 *
 * When the cluster has forgotten the session (it keeps the 10,000 that wrote
 * last), a write refused for that reason at its first sending was applied by
 * no attempt: it is sent once more under a new session, which later writes
 * use too. A write some earlier attempt of which may have been applied ends
 * indeterminate instead (verdicts.ts): its outcome was forgotten with the
 * session, and sending it under a new one could apply it twice.
 */

import type { ProducerStamp } from '../api/client-api.js';
import type { EndpointPool } from './endpoint-pool.js';
import {
  RaftLogError,
  RaftLogFailedPreconditionError,
  RaftLogIndeterminateError,
  type RaftLogOperation,
  RaftLogUnavailableError,
  StatusCode,
} from './errors.js';
import { callWithFailover, type Operation } from './failover.js';
import type { ClientSettings } from './options.js';
import type { ProducerSession, ProducerWrite } from './producer-session.js';
import { methodDefinition } from './proto.js';
import { replyLeader } from './reply-decoders.js';
import { closedError, isUnknownProducer } from './verdicts.js';

/** A write request, which may carry a producer stamp. */
export interface StampableRequest {
  producer?: ProducerStamp | null;
}

/** Makes one write call: stamped and retried until its deadline with `exactlyOnce`, otherwise as any call. */
export async function callWrite<Req extends StampableRequest, Res, T>(
  pool: EndpointPool,
  settings: ClientSettings,
  session: ProducerSession,
  op: Operation<Req, Res, T>,
): Promise<T> {
  if (!settings.exactlyOnce) return await callWithFailover(pool, settings, op);
  if (pool.closed) throw closedError(op.name);
  const deadline = Date.now() + op.deadlineMs;
  let write = await numberedWrite(pool, settings, session, op.name, deadline);
  try {
    try {
      return await callWithFailover(pool, settings, stamped(op, write, deadline));
    } catch (error) {
      // The verdict leaves a refusal for an unknown producer as such only when no attempt may have applied the write.
      if (!(error instanceof RaftLogFailedPreconditionError && isUnknownProducer(error.code, error.details))) throw error;
      session.forget(write.producerId);
      write.finish();
      write = await numberedWrite(pool, settings, session, op.name, deadline);
      return await callWithFailover(pool, settings, stamped(op, write, deadline));
    }
  } finally {
    write.finish();
  }
}

function stamped<Req extends StampableRequest, Res, T>(op: Operation<Req, Res, T>, write: ProducerWrite, deadline: number): Operation<Req, Res, T> {
  return { ...op, idempotent: true, request: { ...op.request, producer: write.stamp() }, deadlineMs: deadline - Date.now() };
}

/** A write numbered under the session, registered first if need be; fails, with nothing sent, when that cannot be done before the deadline. */
async function numberedWrite(
  pool: EndpointPool,
  settings: ClientSettings,
  session: ProducerSession,
  operation: RaftLogOperation,
  deadline: number,
): Promise<ProducerWrite> {
  let write: ProducerWrite;
  try {
    // A registration retried after a lost answer may open a session nobody uses; the cluster forgets it in time.
    write = await session.begin(() =>
      callWithFailover(pool, settings, {
        name: operation,
        method: methodDefinition('RegisterProducer'),
        write: true,
        idempotent: true,
        request: {},
        deadlineMs: Math.max(1, deadline - Date.now()),
        decode: (reply) => Number(reply.producerId),
        leaderOf: replyLeader,
      }),
    );
  } catch (error) {
    throw registrationFailed(operation, error, pool.closed);
  }
  if (Date.now() >= deadline) {
    write.finish();
    throw new RaftLogUnavailableError({
      operation,
      code: StatusCode.DEADLINE_EXCEEDED,
      endpoint: null,
      message: `${operation}: the deadline passed while a producer session was being registered; the write was not sent`,
    });
  }
  return write;
}

/** What a write tells its caller when its session could not be registered: nothing of the write itself was sent. */
function registrationFailed(operation: RaftLogOperation, error: unknown, closed: boolean): RaftLogError {
  if (!(error instanceof RaftLogError)) {
    return new RaftLogError({
      operation,
      code: StatusCode.INTERNAL,
      endpoint: null,
      message: `${operation}: registering a producer session failed: ${(error as Error).message}; the write was not sent`,
      cause: error,
    });
  }
  if (closed) return closedError(operation, error.attempts);
  const tries = error.attempts.length === 1 ? '1 attempt' : `${error.attempts.length} attempts`;
  const init = {
    operation,
    code: error.code,
    endpoint: error.endpoint,
    details: error.details,
    attempts: error.attempts,
    cause: error,
    message: `${operation}: no producer session could be registered (${error.details || error.codeName}; ${tries}); the write was not sent`,
  };
  // Whether a registration was committed does not matter to the write: it was not sent either way.
  const notCarriedOut = error instanceof RaftLogIndeterminateError || error instanceof RaftLogUnavailableError;
  return notCarriedOut ? new RaftLogUnavailableError(init) : new RaftLogError(init);
}
