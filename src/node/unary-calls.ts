/**
 * How a node serves a unary call of its client-facing services (RaftLog,
 * Cluster): checks that the request decoded, computes the call's deadline,
 * turns errors into gRPC statuses, and, when this node is not the leader but
 * knows one, forwards the call to the leader once and relays the answer.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { FIRST_INDEX_METADATA_KEY } from '../client/errors.js';
import type { NodeId } from '../raft/types.js';
import { malformedReason } from './client-proto.js';
import { ClientError, NotLeaderError, type ClientErrorFacts } from './errors.js';
import type { RaftNode } from './raft-node.js';

/** Calls longer than this are cut short even when the client set no deadline. */
const MAX_CALL_MS = 30_000;
/** Set on a call a node forwarded: the receiver must not forward it again. */
export const FORWARDED_BY = 'raftlog-forwarded-by';

export type Handler<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

export type CallBody<Req, Res> = (node: RaftNode, request: Req, deadline: number, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

/** Makes the handler of one method (named as the generic gRPC client spells it, e.g. 'put', 'memberAdd'). */
export type UnaryCalls<Method extends string> = <Req, Res>(method: Method, body: CallBody<Req, Res>) => Handler<Req, Res>;

export interface UnaryCallsOptions {
  readonly getNode: () => RaftNode | null;
  readonly logger: Logger;
  /** A client of the same service at `address`, to forward calls to the leader with. */
  readonly clientAt: (address: string) => grpc.Client;
}

export function unaryCalls<Method extends string>(options: UnaryCallsOptions): UnaryCalls<Method> {
  const { getNode, logger } = options;
  const forwarder = new LeaderForwarder(options.clientAt);
  return <Req, Res>(method: Method, body: CallBody<Req, Res>): Handler<Req, Res> =>
    (call, callback) => {
      const node = getNode();
      if (node === null) {
        callback({ code: grpc.status.UNAVAILABLE, details: 'the node is starting' });
        return;
      }
      const malformed = malformedReason(call.request);
      if (malformed !== null) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: `malformed request: ${malformed}` });
        return;
      }
      const deadline = deadlineOf(call);
      body(node, call.request, deadline, call).then(
        (reply) => callback(null, reply),
        (error: unknown) => {
          if (error instanceof NotLeaderError && error.leader !== null && !call.metadata.get(FORWARDED_BY).length) {
            const address = node.addressOf(error.leader);
            if (address !== undefined) {
              forwarder.forward<Req, Res>(address, method, call.request, node.id, deadline).then(
                (reply) => callback(null, reply),
                (forwardError: grpc.ServiceError) => callback(forwardError),
              );
              return;
            }
          }
          if (error instanceof ClientError) {
            callback({ code: error.code, details: error.message, metadata: trailersOf(error.facts) });
          } else {
            logger.error({ event: 'client-call-failed', method, err: error }, 'unexpected error in a client call');
            callback({ code: grpc.status.INTERNAL, details: `node ${node.id}: ${(error as Error).message}` });
          }
        },
      );
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
  const cap = Date.now() + MAX_CALL_MS;
  return Number.isFinite(at) && at > 0 ? Math.min(at, cap) : cap;
}

type UnaryCall<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, reply: Res) => void,
) => void;

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
    return { ...error, details: `leader at ${address} unreachable from ${self}: ${error.details}` };
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
