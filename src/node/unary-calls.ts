/**
 * How a node serves a unary call of its client-facing services (RaftLog,
 * Cluster): checks that the request decoded, computes the call's deadline,
 * turns errors into gRPC statuses, and, when this node is not the leader but
 * knows one, forwards the call to the leader and relays the answer. A call is
 * forwarded again (to whoever leads by then, within the hold limits of
 * leader-hold.ts) only when the previous attempt certainly wrote nothing: the
 * leader could not be reached (the call never left this node), or it
 * answered that it no longer leads (marked by NOT_LEADER_TRAILER). A call
 * whose outcome may be unknown is never sent again. A node that received a
 * forwarded call does not forward it further.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { FIRST_INDEX_METADATA_KEY } from '../api/client-api.js';
import type { NodeId } from '../raft/types.js';
import { ClientError, type ClientErrorFacts, LeaderChangingError, LeaderUnreachableError, NotLeaderError } from './errors.js';
import { holdWhileLeaderChanges, RefusedByFormerLeader } from './leader-hold.js';
import { malformedReason } from './malformed-requests.js';
import type { RaftNode } from './raft-node.js';

/** Calls longer than this are cut short even when the client set no deadline. */
const MAX_CALL_MS = 30_000;
/** Set on a call a node forwarded: the receiver must not forward it again. */
export const FORWARDED_BY = 'raftlog-forwarded-by';
/**
 * Trailer of a refusal by a node that does not lead, or is handing
 * leadership over (NotLeaderError, LeaderChangingError): thrown before
 * anything was proposed, so nothing was written. A node that forwarded the
 * call holds it and forwards it again to the new leader.
 */
export const NOT_LEADER_TRAILER = 'raftlog-refused-not-leader';

export type Handler<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

/** `call` is null for a call that came on a Calls stream (it has no metadata or peer of its own). */
export type CallBody<Req, Res> = (node: RaftNode, request: Req, deadline: number, call: grpc.ServerUnaryCall<Req, Res> | null) => Promise<Res>;

/** Makes the handler of one method (named as the generic gRPC client spells it, e.g. 'put', 'memberAdd'). */
export type UnaryCalls<Method extends string> = <Req, Res>(method: Method, body: CallBody<Req, Res>) => Handler<Req, Res>;

export interface UnaryCallsOptions {
  readonly getNode: () => RaftNode | null;
  readonly logger: Logger;
  /** A client of the same service at `address`, to forward calls to the leader with. */
  readonly clientAt: (address: string) => grpc.Client;
}

export function unaryCalls<Method extends string>(
  options: UnaryCallsOptions,
  serve: ServeCall<Method> = servingCalls<Method>(options),
): UnaryCalls<Method> {
  return <Req, Res>(method: Method, body: CallBody<Req, Res>): Handler<Req, Res> =>
    (call, callback) => {
      const node = options.getNode();
      if (node === null) {
        callback({ code: grpc.status.UNAVAILABLE, details: 'the node is starting' });
        return;
      }
      const malformed = malformedReason(call.request);
      if (malformed !== null) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: `malformed request: ${malformed}` });
        return;
      }
      const forwarded = call.metadata.get(FORWARDED_BY).length > 0;
      serve(method, body, node, call.request, deadlineOf(call), forwarded, call).then(
        (reply) => callback(null, reply),
        (failure: CallStatus) => callback(failure),
      );
    };
}

/** How a call failed, as its status: code, message, trailers. */
export interface CallStatus {
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata: grpc.Metadata;
}

/** servingCalls' function: serves one call of a method with its body on a node. */
export type ServeCall<Method extends string> = ReturnType<typeof servingCalls<Method>>;

/**
 * Serves one call of `method` with `body` on `node`, as a unary call and each
 * call on a Calls stream are served alike: held while the leadership changes,
 * forwarded to the leader by a follower (unless it was forwarded to us), and
 * a failure turned into its status. The function it returns rejects with a
 * CallStatus only.
 */
export function servingCalls<Method extends string>(options: UnaryCallsOptions) {
  const { logger } = options;
  const forwarder = new LeaderForwarder(options.clientAt);
  return async <Req, Res>(
    method: Method,
    body: CallBody<Req, Res>,
    node: RaftNode,
    request: Req,
    deadline: number,
    forwarded: boolean,
    call: grpc.ServerUnaryCall<Req, Res> | null,
  ): Promise<Res> => {
    const attempt = async (): Promise<Res> => {
      try {
        return await body(node, request, deadline, call);
      } catch (error) {
        const address = error instanceof NotLeaderError && error.leader !== null && !forwarded ? node.addressOf(error.leader) : undefined;
        if (address === undefined) throw error;
        const { leader, term } = error as NotLeaderError & { leader: NodeId };
        return await forwarder.forward<Req, Res>(address, method, request, node.id, deadline).catch((failure: grpc.ServiceError) => {
          if ((method === 'put' || method === 'append') && node.failpoints?.isOn('bug-drop-forward-error')) {
            // The planted bug answers as a node that took the failed forward for a success would: with the position it expected.
            const { lastIndex, term: ownTerm } = node.status();
            return { position: { index: lastIndex + 1, term: ownTerm } } as Res;
          }
          if (unreachableFailures.has(failure)) throw new LeaderUnreachableError(leader, term, failure.details);
          if (refusedAsNotLeader(failure)) throw new RefusedByFormerLeader(leader, term, failure.details);
          throw new RelayedFailure(failure);
        });
      }
    };
    // While the leadership changes (an election, a handover, a leader just lost) the call waits rather than fails.
    const held = (reason: string) => logger.debug({ event: 'request-held', method, reason }, `holding ${method} until a leader is known`);
    try {
      return await holdWhileLeaderChanges(node, deadline, attempt, held);
    } catch (error) {
      if (error instanceof RelayedFailure)
        throw { code: error.failure.code, details: error.failure.details, metadata: error.failure.metadata } satisfies CallStatus;
      if (error instanceof ClientError) {
        const metadata = trailersOf(error.facts);
        if (error instanceof NotLeaderError || error instanceof LeaderChangingError) metadata.set(NOT_LEADER_TRAILER, 'nothing-written');
        throw { code: error.code, details: error.message, metadata } satisfies CallStatus;
      }
      logger.error({ event: 'client-call-failed', method, err: error }, 'unexpected error in a client call');
      throw {
        code: grpc.status.INTERNAL,
        details: `node ${node.id}: ${(error as Error).message}`,
        metadata: new grpc.Metadata(),
      } satisfies CallStatus;
    }
  };
}

/** The facts of an error as trailing metadata, for clients that should not parse the message. */
export function trailersOf(facts: ClientErrorFacts): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (facts.firstIndex !== undefined) metadata.set(FIRST_INDEX_METADATA_KEY, String(facts.firstIndex));
  return metadata;
}

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const requested = call.getDeadline();
  const at = requested instanceof Date ? requested.getTime() : Number(requested);
  return cappedDeadline(Number.isFinite(at) && at > 0 ? at : null);
}

/** A call's deadline (ms since the epoch; null: none asked), cut to MAX_CALL_MS from now. */
export function cappedDeadline(at: number | null): number {
  const cap = Date.now() + MAX_CALL_MS;
  return at === null ? cap : Math.min(at, cap);
}

type UnaryCall<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, reply: Res) => void,
) => void;

/** The leader's own answer (not a failure of the hop): it does not lead, and wrote nothing. */
function refusedAsNotLeader(failure: grpc.ServiceError): boolean {
  return failure.code === grpc.status.UNAVAILABLE && failure.metadata.get(NOT_LEADER_TRAILER).length > 0;
}

/** Forward failures that never left this node because the leader could not be reached (held, then tried again). */
const unreachableFailures = new WeakSet<grpc.ServiceError>();

/** The leader's answer to a forwarded call (or the hop's failure), relayed to the client as it is. */
class RelayedFailure extends Error {
  constructor(readonly failure: grpc.ServiceError) {
    super(failure.details);
  }
}

/**
 * What the client is told when a forwarded call failed. The leader's own
 * answer passes through. A failure of the hop itself is UNAVAILABLE (safe to
 * retry) only if the call never left this node; once sent, the write may have
 * been committed, so the outcome is unknown: never UNAVAILABLE.
 */
function forwardFailure(error: grpc.ServiceError, address: string, self: NodeId): grpc.ServiceError {
  const answeredByLeader = error.metadata.get('content-type').length > 0;
  if (answeredByLeader) return error;
  if (error.code === grpc.status.UNAVAILABLE && error.details.startsWith('No connection established')) {
    const unreachable = { ...error, details: `leader at ${address} unreachable from ${self}: ${error.details}` };
    unreachableFailures.add(unreachable);
    return unreachable;
  }
  if (error.code === grpc.status.DEADLINE_EXCEEDED) return error;
  return {
    ...error,
    code: grpc.status.UNKNOWN,
    details: `the call forwarded by ${self} to the leader at ${address} failed after it was sent (${error.details}); it may or may not have taken effect`,
  };
}

/** Relays calls to the leader, one connection per leader address, reused. */
class LeaderForwarder {
  private readonly clients = new Map<string, grpc.Client>();

  constructor(private readonly clientAt: (address: string) => grpc.Client) {}

  forward<Req, Res>(address: string, method: string, request: Req, self: NodeId, deadline: number): Promise<Res> {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = this.clientAt(address);
      this.clients.set(address, client);
    }
    const metadata = new grpc.Metadata();
    metadata.set(FORWARDED_BY, self);
    const call = (client as unknown as Record<string, UnaryCall<Req, Res> | undefined>)[method];
    if (call === undefined) {
      const details = `node ${self}: the service has no method ${method} to forward to the leader at ${address}`;
      return Promise.reject(Object.assign(new Error(details), { code: grpc.status.INTERNAL, details, metadata: new grpc.Metadata() }));
    }
    return new Promise((resolve, reject) => {
      call.call(client, request, metadata, { deadline }, (error, reply) => {
        if (error !== null) {
          reject(forwardFailure(error, address, self));
        } else {
          resolve(reply);
        }
      });
    });
  }
}
