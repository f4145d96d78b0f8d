import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../api/client-api.js';
import { type CallBodies, callStreamHandler } from './call-stream.js';
import {
  type AppendRecordRequest,
  type CommitPositionReply,
  type CommitPositionRequest,
  type CompareAndSwapReply,
  type CompareAndSwapRequest,
  type ConsumersReply,
  type ConsumersRequest,
  type DeleteConsumerReply,
  type DeleteConsumerRequest,
  type DeleteReply,
  type DeleteRequest,
  type GetReply,
  type GetRequest,
  type ProducerStampRequest,
  type PutRequest,
  RaftLogGrpcClient,
  type RaftLogMethod,
  type ReadLogReply,
  type ReadLogRequest,
  type RegisterProducerReply,
  type StatusReply,
  type WriteReply,
} from './client-proto.js';
import { consumerNameProblem } from './consumer-positions.js';
import { ClientError, invalidArgument, stateRefusal } from './errors.js';
import type { KvCommand } from './kv-commands.js';
import type { KvResult } from './kv-state-machine.js';
import { membersOf } from './members.js';
import type { ProducerStamp } from './producer-sessions.js';
import type { Committed, RaftNode } from './raft-node.js';
import { subscribeHandler } from './subscription.js';
import { servingCalls, unaryCalls } from './unary-calls.js';

/** A ReadLog reply holds at most this many entries (records are up to 1 MiB each; gRPC caps a reply at 4 MiB by default, so bigger pages are cut by bytes too). */
const MAX_LOG_ENTRIES_PER_READ = 1000;

/**
 * The client API (raftlog.v1.RaftLog) on one node. Writes go through the
 * leader: a follower forwards the call once to the leader it knows and relays
 * the answer. Linearizable reads are confirmed by the leader (ReadIndex) but
 * served by this node's state machine.
 */
export function createClientService(
  getNode: () => RaftNode | null,
  logger: Logger,
  /** How a follower reaches its leader to forward a call (tls-config.ts). */
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): grpc.UntypedServiceImplementation {
  const serving = { getNode, logger, clientAt: (address: string) => new RaftLogGrpcClient(address, credentials) };
  const serve = servingCalls<RaftLogMethod>(serving);
  const unary = unaryCalls<RaftLogMethod>(serving, serve);

  const position = (committed: Committed) => ({ index: committed.index, term: committed.term });
  /**
   * A write's answer: its own, or for a producer's retry the first
   * application's (position included). A refusal by the state machine
   * changed nothing and becomes an error status.
   */
  const answer = async (node: RaftNode, command: KvCommand, deadline: number) => {
    const committed =
      'producer' in command && command.producer !== undefined
        ? await node.proposeOnce({ ...command, producer: command.producer }, deadline)
        : await node.propose(command, deadline);
    const result = committed.result;
    if (result.op === 'refused') throw stateRefusal(node.id, result.reason, result.message, committed);
    if (result.op === 'duplicate') {
      const { write } = result;
      return { position: { index: write.index, term: write.term }, leader: node.id, duplicate: true, outcome: write.outcome as KvResult };
    }
    return { position: position(committed), leader: node.id, duplicate: false, outcome: result };
  };

  /** The writes, served alike as unary calls and as the calls of a Calls stream. */
  const writes: Omit<CallBodies, 'get'> = {
    put: async (node, request: PutRequest, deadline): Promise<WriteReply> => {
      const key = checkKey(request.key);
      const value = checkValue(request.value, 'value');
      const { outcome: _, ...reply } = await answer(node, { op: 'put', key, value, ...producerOf(request.producer) }, deadline);
      return reply;
    },
    delete: async (node, request: DeleteRequest, deadline): Promise<DeleteReply> => {
      const key = checkKey(request.key);
      const { outcome, ...reply } = await answer(node, { op: 'delete', key, ...producerOf(request.producer) }, deadline);
      return { ...reply, existed: outcome.op === 'delete' && outcome.existed };
    },
    compareAndSwap: async (node, request: CompareAndSwapRequest, deadline): Promise<CompareAndSwapReply> => {
      const key = checkKey(request.key);
      const value = checkValue(request.value, 'value');
      const expected = request.expectAbsent ? null : checkValue(request.expected, 'expected');
      const { outcome: result, ...reply } = await answer(node, { op: 'cas', key, expected, value, ...producerOf(request.producer) }, deadline);
      const outcome = result.op === 'cas' ? result : { succeeded: false, current: null };
      // A successful swap leaves the value it carried (a producer's session does not keep it twice).
      const current = outcome.succeeded ? value : outcome.current;
      return { ...reply, succeeded: outcome.succeeded, found: current !== null, current: current ?? new Uint8Array(0) };
    },
    append: async (node, request: AppendRecordRequest, deadline): Promise<WriteReply> => {
      const record = checkValue(request.record, 'record');
      const { outcome: _, ...reply } = await answer(node, { op: 'append', record, ...producerOf(request.producer) }, deadline);
      return reply;
    },
  };

  /** Get, served alike as a unary call and as a call of a Calls stream. */
  const get = async (node: RaftNode, request: GetRequest, deadline: number): Promise<GetReply> => {
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
      leader: node.brief().leader ?? '',
    };
  };

  return {
    Put: unary('put', writes.put),

    Get: unary('get', get),

    Delete: unary('delete', writes.delete),

    CompareAndSwap: unary('compareAndSwap', writes.compareAndSwap),

    Append: unary('append', writes.append),

    Calls: callStreamHandler(getNode, serve, { ...writes, get }),

    RegisterProducer: unary<Record<string, never>, RegisterProducerReply>('registerProducer', async (node, _request, deadline) => {
      const committed = await node.propose({ op: 'register-producer' }, deadline);
      if (committed.result.op !== 'register-producer')
        throw new ClientError(grpc.status.INTERNAL, `node ${node.id}: entry ${committed.index} registered no producer`);
      return { producerId: committed.result.producerId, entry: position(committed), leader: node.id };
    }),

    CommitPosition: unary<CommitPositionRequest, CommitPositionReply>('commitPosition', async (node, request, deadline) => {
      const consumer = checkConsumer(request.consumer);
      const { commitIndex, role } = node.brief();
      // The state machine decides (and refuses these too), but a refusal there costs a log entry. Only the
      // leader checks first: a follower's commit index and positions may trail, and it would refuse wrongly.
      if (role === 'leader') {
        if (request.position > commitIndex) {
          throw invalidArgument(
            `node ${node.id}: consumer ${consumer}: position ${request.position} is beyond the log's commit index ${commitIndex}`,
          );
        }
        const current = node.consumer(consumer);
        if (current !== null && request.position < current.position && !request.allowBackwards) {
          throw stateRefusal(
            node.id,
            'position-backwards',
            `consumer ${consumer} is at ${current.position}; committing ${request.position} would move it backwards (allow it explicitly to re-read)`,
          );
        }
      }
      const committed = await node.propose(
        { op: 'commit-position', consumer, position: request.position, allowBackwards: request.allowBackwards },
        deadline,
      );
      const result = committed.result;
      if (result.op === 'refused') throw stateRefusal(node.id, result.reason, result.message, committed);
      const now = result.op === 'commit-position' ? result.position : request.position;
      return { entry: position(committed), leader: node.id, position: now };
    }),

    DeleteConsumer: unary<DeleteConsumerRequest, DeleteConsumerReply>('deleteConsumer', async (node, request, deadline) => {
      const consumer = checkConsumer(request.consumer);
      const committed = await node.propose({ op: 'delete-consumer', consumer }, deadline);
      const existed = committed.result.op === 'delete-consumer' && committed.result.existed;
      return { entry: position(committed), leader: node.id, existed };
    }),

    Consumers: unary<ConsumersRequest, ConsumersReply>('consumers', async (node, request, deadline) => {
      const read =
        request.consistency === 'READ_CONSISTENCY_LOCAL' ? node.consumers() : await node.linearizableRead(deadline, () => node.consumers());
      const { commitIndex } = node.brief();
      const now = Date.now();
      return {
        consumers: read.consumers.map((c) => ({
          name: c.name,
          position: c.position,
          lag: Math.max(0, commitIndex - c.position),
          committedAtMs: c.committedAtMs,
          msSinceCommit: c.committedAtMs > 0 ? Math.max(0, now - c.committedAtMs) : 0,
          commitEntryIndex: c.commitEntryIndex,
        })),
        commitIndex,
        readIndex: read.index,
        node: node.id,
      };
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
        progress: (status.progress ?? []).map((follower) => ({
          id: follower.id,
          matchIndex: follower.matchIndex,
          nextIndex: follower.nextIndex,
          state: follower.state,
          pendingSnapshotIndex: follower.pendingSnapshot,
          inflight: follower.inflight,
          recentlyActive: follower.recentlyActive,
        })),
      };
    }),

    Subscribe: subscribeHandler(getNode, logger),

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

function checkConsumer(name: string): string {
  const problem = consumerNameProblem(name);
  if (problem !== null) throw invalidArgument(problem);
  return name;
}

/** The command's producer stamp, if the request carries one. */
function producerOf(stamp: ProducerStampRequest | null | undefined): { producer?: ProducerStamp } {
  if (stamp === null || stamp === undefined) return {};
  if (stamp.producerId < 1 || stamp.sequence < 1) {
    throw invalidArgument(`producer stamp needs a producer id and a sequence number of at least 1, got ${stamp.producerId} and ${stamp.sequence}`);
  }
  return { producer: { id: stamp.producerId, sequence: stamp.sequence, acknowledgedBelow: stamp.acknowledgedBelow } };
}
