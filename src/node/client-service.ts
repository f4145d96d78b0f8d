import * as grpc from '@grpc/grpc-js';
import { FIRST_INDEX_METADATA_KEY } from '../client/errors.js';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../client/proto.js';
import type { Logger } from 'pino';
import type { NodeId } from '../raft/types.js';
import {
  malformedReason,
  RaftLogGrpcClient,
  type AppendRecordRequest,
  type CompareAndSwapReply,
  type CompareAndSwapRequest,
  type DeleteReply,
  type DeleteRequest,
  type GetReply,
  type GetRequest,
  type PutRequest,
  type RaftLogMethod,
  type ReadLogReply,
  type ReadLogRequest,
  type StatusReply,
  type WriteReply,
} from './client-proto.js';
import { ClientError, invalidArgument, NotLeaderError, type ClientErrorFacts } from './errors.js';
import type { Committed, RaftNode } from './raft-node.js';


/** A ReadLog reply holds at most this many entries (records are up to 1 MiB each; gRPC caps a reply at 4 MiB by default, so bigger pages are cut by bytes too). */
const MAX_LOG_ENTRIES_PER_READ = 1000;
/** Calls longer than this are cut short even when the client set no deadline. */
const MAX_CALL_MS = 30_000;
/** Set on a call a follower forwarded: the receiver must not forward it again. */
const FORWARDED_BY = 'raftlog-forwarded-by';

type UnaryCall<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, reply: Res) => void,
) => void;

type Handler<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

/**
 * The client API (raftlog.v1.RaftLog) on one node. Writes go through the
 * leader: a follower forwards the call once to the leader it knows and relays
 * the answer. Linearizable reads are confirmed by the leader (ReadIndex) but
 * served by this node's state machine.
 */
export function createClientService(getNode: () => RaftNode | null, logger: Logger): grpc.UntypedServiceImplementation {
  const forwarder = new LeaderForwarder();

  /** Runs a call: validation and errors become gRPC statuses, never a crash. */
  function unary<Req, Res>(
    method: RaftLogMethod,
    body: (node: RaftNode, request: Req, deadline: number, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
  ): Handler<Req, Res> {
    return (call, callback) => {
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

  const position = (committed: Committed) => ({ index: committed.index, term: committed.term });

  return {
    Put: unary<PutRequest, WriteReply>('put', async (node, request, deadline) => {
      const key = checkKey(request.key);
      const value = checkValue(request.value, 'value');
      const committed = await node.propose({ op: 'put', key, value }, deadline);
      return { position: position(committed), leader: node.id };
    }),

    Get: unary<GetRequest, GetReply>('get', async (node, request, deadline) => {
      const key = checkKey(request.key);
      if (request.consistency === 'READ_CONSISTENCY_LOCAL') {
        const read = node.localGet(key);
        return { found: read.value !== null, value: read.value ?? new Uint8Array(0), readIndex: read.index, leader: '' };
      }
      const read = await node.linearizableGet(key, deadline);
      return {
        found: read.value !== null,
        value: read.value ?? new Uint8Array(0),
        readIndex: read.index,
        leader: node.status().leader ?? '',
      };
    }),

    Delete: unary<DeleteRequest, DeleteReply>('delete', async (node, request, deadline) => {
      const key = checkKey(request.key);
      const committed = await node.propose({ op: 'delete', key }, deadline);
      const existed = committed.result.op === 'delete' && committed.result.existed;
      return { position: position(committed), leader: node.id, existed };
    }),

    CompareAndSwap: unary<CompareAndSwapRequest, CompareAndSwapReply>('compareAndSwap', async (node, request, deadline) => {
      const key = checkKey(request.key);
      const value = checkValue(request.value, 'value');
      const expected = request.expectAbsent ? null : checkValue(request.expected, 'expected');
      const committed = await node.propose({ op: 'cas', key, expected, value }, deadline);
      const outcome = committed.result.op === 'cas' ? committed.result : { succeeded: false, current: null };
      return {
        position: position(committed),
        leader: node.id,
        succeeded: outcome.succeeded,
        found: outcome.current !== null,
        current: outcome.current ?? new Uint8Array(0),
      };
    }),

    Append: unary<AppendRecordRequest, WriteReply>('append', async (node, request, deadline) => {
      const record = checkValue(request.record, 'record');
      const committed = await node.propose({ op: 'append', record }, deadline);
      return { position: position(committed), leader: node.id };
    }),

    Status: unary<Record<string, never>, StatusReply>('status', async (node) => {
      const status = node.status();
      return {
        node: status.id,
        role: status.role,
        term: status.term,
        leader: status.leader ?? '',
        commitIndex: status.commitIndex,
        appliedIndex: status.appliedIndex,
        lastLogIndex: status.lastIndex,
        members: [...status.voters],
        digest: status.digest,
        firstLogIndex: status.firstIndex,
        snapshotIndex: status.snapshotIndex,
      };
    }),

    ReadLog: unary<ReadLogRequest, ReadLogReply>('readLog', async (node, request) => {
      const maxEntries = request.maxEntries === 0 ? MAX_LOG_ENTRIES_PER_READ : Math.min(request.maxEntries, MAX_LOG_ENTRIES_PER_READ);
      const read = node.readCommittedLog(Math.max(1, request.fromIndex), maxEntries);
      return { entries: read.entries, commitIndex: read.commitIndex, node: node.id };
    }),
  };
}

/** The facts of an error as trailing metadata, for clients that should not parse the message. */
function trailersOf(facts: ClientErrorFacts): grpc.Metadata {
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

function checkKey(key: Uint8Array | undefined): Uint8Array {
  if (key === undefined || key.byteLength === 0) throw invalidArgument('key must not be empty');
  if (key.byteLength > MAX_KEY_BYTES) {
    throw invalidArgument(`key of ${key.byteLength} bytes exceeds the limit of ${MAX_KEY_BYTES} bytes`);
  }
  return new Uint8Array(key);
}

function checkValue(value: Uint8Array | undefined, what: string): Uint8Array {
  const bytes = value ?? new Uint8Array(0);
  if (bytes.byteLength > MAX_VALUE_BYTES) {
    throw invalidArgument(`${what} of ${bytes.byteLength} bytes exceeds the limit of ${MAX_VALUE_BYTES} bytes`);
  }
  return new Uint8Array(bytes);
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

  forward<Req, Res>(address: string, method: RaftLogMethod, request: Req, self: NodeId, deadline: number): Promise<Res> {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new RaftLogGrpcClient(address, grpc.credentials.createInsecure());
      this.clients.set(address, client);
    }
    const metadata = new grpc.Metadata();
    metadata.set(FORWARDED_BY, self);
    const call = (client as unknown as Record<RaftLogMethod, UnaryCall<Req, Res>>)[method];
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

