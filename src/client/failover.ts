/**
 * One unary call, made with failover: sent to one endpoint at a time,
 * starting where the pool says, and after a failure that verdicts.ts says to
 * retry, sent to the next endpoint after an exponential backoff with full
 * jitter, until the call's deadline.
 *
 * An attempt of an ordinary call may take all the time the call has left. An
 * attempt of an idempotent write is cut short (attemptBudgetMs) so that the
 * write can be tried on other nodes before the deadline.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { type AttemptOutcome, attemptFailure, type CallFailure, clientSideFailure, failureOfCall } from './call-failure.js';
import type { StreamedCall } from './calls-stream.js';
import type { Endpoint, EndpointPool } from './endpoint-pool.js';
import { type AttemptFailure, StatusCode } from './errors.js';
import type { ClientSettings } from './options.js';
import { type CallTraits, closedError, leavesOutcomeOpen, outOfTimeError, verdict } from './verdicts.js';

/** How one call is made and what its reply means. */
export interface Operation<Req, Res, T> extends CallTraits {
  readonly method: MethodDefinition<Req, Res>;
  readonly request: Req;
  decode(reply: Res, endpoint: Endpoint): T;
  /** The leader the reply names, if any. */
  leaderOf(reply: Res): string | null;
  /** A call a Calls stream can carry: with writeTransport (a write) or readTransport (a Get) 'calls' it goes there instead of a unary call. */
  readonly streamed?: StreamedCall;
}

/**
 * The longest one attempt of an idempotent write may take. A leader cut off
 * from its followers takes the write and never commits it; with the whole
 * deadline for one attempt, a call that reached it could only end
 * indeterminate. A third of the call's deadline leaves room for two more
 * attempts elsewhere (after an election, which takes about a second), and
 * never less than a second, so that on a slow machine a healthy leader has
 * the time to commit. An attempt cut short costs little: the retry carries
 * the same stamp, and a leader that still holds the first copy in its log
 * waits for that copy instead of appending another.
 */
export function attemptBudgetMs(deadlineMs: number): number {
  return Math.max(1000, deadlineMs / 3);
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
  let order = only === undefined ? pool.attemptOrder() : [only];
  // Where in `order` the next attempt goes.
  let next = 0;
  const failures: AttemptFailure[] = [];
  // Some attempt may have taken effect (an idempotent write carries on after one).
  let outcomeOpen = false;
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) {
      const spare = deadline - Date.now() - minAttemptMs;
      if (only !== undefined || spare <= 0) throw outOfTimeError(op, failures, Date.now() - started, outcomeOpen);
      const pause = Math.min(spare, Math.random() * Math.min(settings.backoffMaxMs, settings.backoffInitialMs * 2 ** (attempt - 1)));
      try {
        await sleep(pause, undefined, { signal: pool.signal });
      } catch {
        throw closedError(op.name, failures, op.write && outcomeOpen);
      }
    }
    if (attempt > 0 && only === undefined) {
      // The endpoint that failed may have left the cluster, and members may have joined.
      pool.refreshMembers();
    }
    if (next === order.length) {
      // Each round over the endpoints starts at the preferred one and takes in the members learned meanwhile.
      if (only === undefined) order = pool.attemptOrder();
      next = 0;
    }
    const endpoint = order[next++] as Endpoint;
    const outcome = await attemptOn(pool, settings, op, endpoint, deadline, minAttemptMs);
    if (outcome.ok) {
      const result = op.decode(outcome.reply, endpoint);
      pool.noteSuccess(endpoint, op.leaderOf(outcome.reply), only === undefined);
      return result;
    }
    const failure = outcome.failure;
    failures.push(attemptFailure(failure));
    const error = verdict(op, failure, failures, outcomeOpen);
    if (error !== null) throw error;
    outcomeOpen ||= leavesOutcomeOpen(failure);
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
    return {
      ok: false,
      failure: clientSideFailure(endpoint.address, StatusCode.CANCELLED, 'the client was closed', { notSent: true, closed: true }),
    };
  }
  if (connection !== 'ready') {
    return { ok: false, failure: clientSideFailure(endpoint.address, StatusCode.UNAVAILABLE, connection, { notSent: true }) };
  }

  const definition = op.method;
  // The budget counts from sending: waiting for a connection sent nothing.
  const attemptDeadline = op.idempotent ? Math.min(deadline, Date.now() + attemptBudgetMs(op.deadlineMs)) : deadline;
  const transport = op.write ? settings.writeTransport : settings.readTransport;
  const stream = op.streamed !== undefined && transport === 'calls' ? pool.callsStreamOf(endpoint, op.streamed === 'get') : null;
  if (stream !== null && op.streamed !== undefined) {
    const outcome = await stream.send<Res>(op.streamed, op.request, attemptDeadline);
    if (outcome.ok) return outcome;
    // A node without Calls carried out nothing sent on the stream, and one that serves only writes there read nothing:
    // the same attempt goes as a unary call.
    const getsRefused = op.streamed === 'get' && refusesStreamedGets(outcome.failure);
    if (getsRefused) pool.noteUnaryGets(endpoint);
    if (!stream.unsupported && !getsRefused) return outcome;
    if (Date.now() >= attemptDeadline) {
      // The node's refusal was about the transport, not the call: nothing was carried out, and no time is left to resend.
      const details = 'the node does not serve this call on its Calls stream, and no time was left to send it as a unary call';
      return { ok: false, failure: clientSideFailure(endpoint.address, StatusCode.UNAVAILABLE, details, { notSent: true }) };
    }
  }
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
        { deadline: attemptDeadline },
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

/**
 * How a node from before Gets travelled on Calls answers one there: the
 * request names no call it knows (INVALID_ARGUMENT, "names no write"). A
 * node that knows Gets never says so to this client, which always names one.
 */
function refusesStreamedGets(failure: CallFailure): boolean {
  return failure.fromServer && failure.code === StatusCode.INVALID_ARGUMENT && failure.details.includes('names no write (');
}
