/**
 * One unary call, made with failover: sent to one endpoint at a time,
 * starting where the pool says, and after a failure that verdicts.ts says to
 * retry, sent to the next endpoint after an exponential backoff with full
 * jitter, until the call's deadline.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { attemptFailure, clientSideFailure, failureOfCall, type AttemptOutcome } from './call-failure.js';
import type { Endpoint, EndpointPool } from './endpoint-pool.js';
import { StatusCode, type AttemptFailure } from './errors.js';
import type { ClientSettings } from './options.js';
import { closedError, unavailableError, verdict, type CallTraits } from './verdicts.js';

/** How one call is made and what its reply means. */
export interface Operation<Req, Res, T> extends CallTraits {
  readonly method: MethodDefinition<Req, Res>;
  readonly request: Req;
  decode(reply: Res, endpoint: Endpoint): T;
  /** The leader the reply names, if any. */
  leaderOf(reply: Res): string | null;
}

/** Runs a call with failover and backoff; with `only`, on that endpoint alone, once. */
export async function callWithFailover<Req, Res, T>(
  pool: EndpointPool,
  settings: ClientSettings,
  op: Operation<Req, Res, T>,
  only?: Endpoint,
): Promise<T> {
  if (pool.closed) throw closedError(op.name);
  const started = Date.now();
  const deadline = started + op.deadlineMs;
  // Do not start another attempt with less time than this left: it would
  // most likely time out, and a write that times out is indeterminate.
  const minAttemptMs = Math.min(250, op.deadlineMs / 5);
  const order = only === undefined ? pool.attemptOrder() : [only];
  const failures: AttemptFailure[] = [];
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) {
      const spare = deadline - Date.now() - minAttemptMs;
      if (only !== undefined || spare <= 0) throw unavailableError(op.name, failures, Date.now() - started);
      const pause = Math.min(spare, Math.random() * Math.min(settings.backoffMaxMs, settings.backoffInitialMs * 2 ** (attempt - 1)));
      try {
        await sleep(pause, undefined, { signal: pool.signal });
      } catch {
        throw closedError(op.name, failures);
      }
    }
    const endpoint = order[attempt % order.length] as Endpoint;
    const outcome = await attemptOn(pool, settings, op, endpoint, deadline, minAttemptMs);
    if (outcome.ok) {
      const result = op.decode(outcome.reply, endpoint);
      pool.noteSuccess(endpoint, op.leaderOf(outcome.reply), only === undefined);
      return result;
    }
    const failure = outcome.failure;
    failures.push(attemptFailure(failure));
    const error = verdict(op, failure, failures);
    if (error !== null) throw error;
  }
}

/** One attempt on one endpoint: connect (nothing is sent until connected), then send. */
async function attemptOn<Req, Res, T>(
  pool: EndpointPool,
  settings: ClientSettings,
  op: Operation<Req, Res, T>,
  endpoint: Endpoint,
  deadline: number,
  minAttemptMs: number,
): Promise<AttemptOutcome<Res>> {
  const client = pool.clientOf(endpoint);
  const connectBy = Math.min(deadline - minAttemptMs, Date.now() + settings.connectTimeoutMs);
  const connection = await pool.waitForConnection(client, connectBy);
  if (pool.closed) {
    return { ok: false, failure: clientSideFailure(endpoint.address, StatusCode.CANCELLED, 'the client was closed', { notSent: true, closed: true }) };
  }
  if (connection !== 'ready') {
    return { ok: false, failure: clientSideFailure(endpoint.address, StatusCode.UNAVAILABLE, connection, { notSent: true }) };
  }

  const definition = op.method;
  return new Promise((resolve) => {
    let call: grpc.ClientUnaryCall;
    const onReply = (error: grpc.ServiceError | null, reply?: Res) => {
      pool.untrack(call);
      if (error === null && reply !== undefined) resolve({ ok: true, reply });
      else resolve({ ok: false, failure: failureOfCall(endpoint.address, error, pool.closed) });
    };
    try {
      call = client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        op.request,
        new grpc.Metadata(),
        { deadline },
        onReply,
      );
    } catch (error) {
      // grpc-js refuses to start a call on a closed channel; nothing was sent.
      const failure = clientSideFailure(endpoint.address, StatusCode.UNAVAILABLE, (error as Error).message, { notSent: true, closed: pool.closed });
      resolve({ ok: false, failure });
      return;
    }
    pool.track(call);
  });
}
