import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../client/proto.js';
import {
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
import { invalidArgument } from './errors.js';
import { membersOf } from './members.js';
import type { Committed, RaftNode } from './raft-node.js';
import { unaryCalls } from './unary-calls.js';

/** A ReadLog reply holds at most this many entries (records are up to 1 MiB each; gRPC caps a reply at 4 MiB by default, so bigger pages are cut by bytes too). */
const MAX_LOG_ENTRIES_PER_READ = 1000;

/**
 * The client API (raftlog.v1.RaftLog) on one node. Writes go through the
 * leader: a follower forwards the call once to the leader it knows and relays
 * the answer. Linearizable reads are confirmed by the leader (ReadIndex) but
 * served by this node's state machine.
 */
export function createClientService(getNode: () => RaftNode | null, logger: Logger): grpc.UntypedServiceImplementation {
  const unary = unaryCalls<RaftLogMethod>({
    getNode,
    logger,
    clientAt: (address) => new RaftLogGrpcClient(address, grpc.credentials.createInsecure()),
  });

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
        memberStatus: membersOf(node, node.membership(), status.lastIndex),
      };
    }),

    ReadLog: unary<ReadLogRequest, ReadLogReply>('readLog', async (node, request) => {
      const maxEntries = request.maxEntries === 0 ? MAX_LOG_ENTRIES_PER_READ : Math.min(request.maxEntries, MAX_LOG_ENTRIES_PER_READ);
      const read = node.readCommittedLog(Math.max(1, request.fromIndex), maxEntries);
      return { entries: read.entries, commitIndex: read.commitIndex, node: node.id };
    }),
  };
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
