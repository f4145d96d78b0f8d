/**
 * The client service raftlog.v1.RaftLog as the server side sees it: the same
 * contract as src/client/proto.ts, loaded with uint64 as numbers (indexes the
 * node compares and computes with) where the client keeps decimal strings.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { CLIENT_PROTO_PATH, type WireLogEntryKind } from '../client/proto.js';

const packageDefinition = protoLoader.loadSync(CLIENT_PROTO_PATH, {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

const MALFORMED = Symbol('malformed request');

/** What the server gets for request bytes that are not a valid message: the decoder's complaint, turned into INVALID_ARGUMENT by the service. */
export interface MalformedRequest {
  readonly [MALFORMED]: string;
}

export function malformedReason(request: unknown): string | null {
  return typeof request === 'object' && request !== null && MALFORMED in request ? (request as MalformedRequest)[MALFORMED] : null;
}

/**
 * grpc-js answers a request it cannot decode with INTERNAL; the client API
 * promises INVALID_ARGUMENT, so decoding failures are passed on to the handler
 * (see malformedReason).
 */
export function passingOnMalformedRequests(loaded: grpc.ServiceDefinition): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(loaded).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer): unknown => {
          try {
            return method.requestDeserialize(bytes);
          } catch (error) {
            return { [MALFORMED]: (error as Error).message } satisfies MalformedRequest;
          }
        },
      },
    ]),
  );
}

export const raftLogServiceDefinition: grpc.ServiceDefinition = passingOnMalformedRequests(
  packageDefinition['raftlog.v1.RaftLog'] as unknown as grpc.ServiceDefinition,
);

/** A generic client of raftlog.v1.RaftLog, used by a follower to forward a call to its leader. */
export const RaftLogGrpcClient = grpc.makeGenericClientConstructor(raftLogServiceDefinition, 'RaftLog');

export type RaftLogMethod =
  | 'put'
  | 'get'
  | 'delete'
  | 'compareAndSwap'
  | 'append'
  | 'status'
  | 'readLog'
  | 'commitPosition'
  | 'deleteConsumer'
  | 'consumers'
  | 'registerProducer';

export interface LogPosition {
  index: number;
  term: number;
}
/** Null when the request carries none. */
export interface ProducerStampRequest {
  producerId: number;
  sequence: number;
  acknowledgedBelow: number;
}
export interface PutRequest {
  key: Buffer;
  value: Buffer;
  producer?: ProducerStampRequest | null;
}
export interface WriteReply {
  position: LogPosition;
  leader: string;
  duplicate: boolean;
}
export type ReadConsistencyName =
  | 'READ_CONSISTENCY_UNSPECIFIED'
  | 'READ_CONSISTENCY_LINEARIZABLE'
  | 'READ_CONSISTENCY_LOCAL';
export interface GetRequest {
  key: Buffer;
  consistency: ReadConsistencyName;
}
export interface GetReply {
  found: boolean;
  value: Buffer | Uint8Array;
  readIndex: number;
  leader: string;
}
export interface DeleteRequest {
  key: Buffer;
  producer?: ProducerStampRequest | null;
}
export interface DeleteReply {
  position: LogPosition;
  leader: string;
  existed: boolean;
  duplicate: boolean;
}
export interface CompareAndSwapRequest {
  key: Buffer;
  expected: Buffer;
  expectAbsent: boolean;
  value: Buffer;
  producer?: ProducerStampRequest | null;
}
export interface CompareAndSwapReply {
  position: LogPosition;
  leader: string;
  succeeded: boolean;
  found: boolean;
  current: Buffer | Uint8Array;
  duplicate: boolean;
}
export interface AppendRecordRequest {
  record: Buffer;
  producer?: ProducerStampRequest | null;
}
export interface StatusReply {
  node: string;
  role: string;
  term: number;
  leader: string;
  commitIndex: number;
  appliedIndex: number;
  lastLogIndex: number;
  members: string[];
  digest: string;
  firstLogIndex: number;
  snapshotIndex: number;
  memberStatus: MemberStatus[];
}
/** A member as Status (client.proto) and the Cluster service (cluster.proto) describe it. */
export interface MemberStatus {
  id: string;
  address: string;
  role: 'voter' | 'learner';
  matchIndex: number;
}
export interface ReadLogRequest {
  fromIndex: number;
  maxEntries: number;
}
export interface KeyChangeReply {
  key: Uint8Array;
  foundBefore: boolean;
  before: Uint8Array;
  deleted: boolean;
  after: Uint8Array;
}
export interface LogEntryReply {
  index: number;
  term: number;
  kind: WireLogEntryKind;
  record: Uint8Array;
  key: Uint8Array;
  value: Uint8Array;
  expected: Uint8Array;
  expectAbsent: boolean;
  consumer: string;
  position: number;
  producer: ProducerStampRequest | null;
  changes: KeyChangeReply[];
  proposedAtMs: number;
}
export interface ReadLogReply {
  entries: LogEntryReply[];
  commitIndex: number;
  node: string;
}

export type SubscribeViewName = 'SUBSCRIBE_VIEW_UNSPECIFIED' | 'SUBSCRIBE_VIEW_COMMANDS' | 'SUBSCRIBE_VIEW_CHANGES';
export interface SubscribeRequest {
  fromIndex: number;
  fromTail: boolean;
  consumer: string;
  view: SubscribeViewName;
  kinds: WireLogEntryKind[];
  keyPrefix: Buffer;
}
export interface SubscribeReply {
  entries: LogEntryReply[];
  firstIndex: number;
  lastIndex: number;
  commitIndex: number;
  node: string;
  leader: string;
}
export interface CommitPositionRequest {
  consumer: string;
  position: number;
  allowBackwards: boolean;
}
export interface CommitPositionReply {
  entry: LogPosition;
  leader: string;
  position: number;
}
export interface DeleteConsumerRequest {
  consumer: string;
}
export interface DeleteConsumerReply {
  entry: LogPosition;
  leader: string;
  existed: boolean;
}
export interface ConsumersRequest {
  consistency: ReadConsistencyName;
}
export interface ConsumerInfoReply {
  name: string;
  position: number;
  lag: number;
  committedAtMs: number;
  msSinceCommit: number;
  commitEntryIndex: number;
}
export interface ConsumersReply {
  consumers: ConsumerInfoReply[];
  commitIndex: number;
  readIndex: number;
  node: string;
}
export interface RegisterProducerReply {
  producerId: number;
  entry: LogPosition;
  leader: string;
}
