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

export type RaftLogMethod = 'put' | 'get' | 'delete' | 'compareAndSwap' | 'append' | 'status' | 'readLog';

export interface LogPosition {
  index: number;
  term: number;
}
export interface PutRequest {
  key: Buffer;
  value: Buffer;
}
export interface WriteReply {
  position: LogPosition;
  leader: string;
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
}
export interface DeleteReply {
  position: LogPosition;
  leader: string;
  existed: boolean;
}
export interface CompareAndSwapRequest {
  key: Buffer;
  expected: Buffer;
  expectAbsent: boolean;
  value: Buffer;
}
export interface CompareAndSwapReply {
  position: LogPosition;
  leader: string;
  succeeded: boolean;
  found: boolean;
  current: Buffer | Uint8Array;
}
export interface AppendRecordRequest {
  record: Buffer;
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
export interface LogEntryReply {
  index: number;
  term: number;
  kind: WireLogEntryKind;
  record: Uint8Array;
  key: Uint8Array;
}
export interface ReadLogReply {
  entries: LogEntryReply[];
  commitIndex: number;
  node: string;
}
