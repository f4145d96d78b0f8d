/**
 * The client API's wire contract, loaded from proto/raftlog/v1/client.proto
 * with @grpc/proto-loader, and TypeScript shapes for its messages as that
 * loader hands them out with the options below (camelCase field names, 64-bit
 * integers as decimal strings, enums as their names, bytes as Buffers, absent
 * fields filled with their defaults).
 *
 * Both sides can use it: the client in this folder, and any server (or test
 * fake) that registers `raftLogService` with a grpc-js Server.
 */
import { fileURLToPath } from 'node:url';
import { loadSync, type MethodDefinition, type ServiceDefinition } from '@grpc/proto-loader';

export const CLIENT_PROTO_PATH = fileURLToPath(new URL('../../proto/raftlog/v1/client.proto', import.meta.url));

export const RAFTLOG_SERVICE_NAME = 'raftlog.v1.RaftLog';

/** Limits from client.proto: keys 1..4096 bytes, values and records up to 1 MiB. */
export const MAX_KEY_BYTES = 4096;
export const MAX_VALUE_BYTES = 1024 * 1024;

const packageDefinition = loadSync(CLIENT_PROTO_PATH, {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: false,
});

const service = packageDefinition[RAFTLOG_SERVICE_NAME];
if (service === undefined || !isServiceDefinition(service)) {
  throw new Error(`${CLIENT_PROTO_PATH} does not define the service ${RAFTLOG_SERVICE_NAME}`);
}

function isServiceDefinition(value: object): value is ServiceDefinition {
  return !('format' in value);
}

/** The service definition to pass to grpc-js (`server.addService`, or `makeUnaryRequest` per method). */
export const raftLogService: ServiceDefinition = service;

/** A 64-bit unsigned integer as it arrives (decimal string); a number or a string may be sent. */
export type WireUint64 = string;
type OutgoingUint64 = string | number;
/** Bytes as they arrive (Buffer); any Uint8Array may be sent. */
type OutgoingBytes = Uint8Array;

export type WireReadConsistency =
  | 'READ_CONSISTENCY_UNSPECIFIED'
  | 'READ_CONSISTENCY_LINEARIZABLE'
  | 'READ_CONSISTENCY_LOCAL';

/** Marks a write as one of a producer session's, for exactly-once application. */
export interface ProducerStamp<U = OutgoingUint64> {
  producerId: U;
  sequence: U;
  acknowledgedBelow: U;
}
export interface PutRequest {
  key: OutgoingBytes;
  value: OutgoingBytes;
  producer?: ProducerStamp | null;
}
export interface GetRequest {
  key: OutgoingBytes;
  consistency: WireReadConsistency;
}
export interface DeleteRequest {
  key: OutgoingBytes;
  producer?: ProducerStamp | null;
}
export interface CompareAndSwapRequest {
  key: OutgoingBytes;
  expected: OutgoingBytes;
  expectAbsent: boolean;
  value: OutgoingBytes;
  producer?: ProducerStamp | null;
}
export interface AppendRecordRequest {
  record: OutgoingBytes;
  producer?: ProducerStamp | null;
}
export type StatusRequest = Record<string, never>;

export interface LogPosition<U = WireUint64> {
  index: U;
  term: U;
}
export interface WriteReply<U = WireUint64> {
  /** Null when the sender left it out. */
  position: LogPosition<U> | null;
  leader: string;
  /** A producer's retry of a write applied before: this is the first application's answer. (Fields added after the first version are optional here so older senders and fakes type-check; as received they are always set.) */
  duplicate?: boolean;
}
export interface GetReply<U = WireUint64, B = Buffer> {
  found: boolean;
  value: B;
  readIndex: U;
  leader: string;
}
export interface DeleteReply<U = WireUint64> extends WriteReply<U> {
  existed: boolean;
}
export interface CompareAndSwapReply<U = WireUint64, B = Buffer> extends WriteReply<U> {
  succeeded: boolean;
  found: boolean;
  current: B;
}
export interface StatusReply<U = WireUint64> {
  node: string;
  role: string;
  term: U;
  leader: string;
  commitIndex: U;
  appliedIndex: U;
  lastLogIndex: U;
  members: string[];
  digest: string;
  /** First index the node's log holds (entries before it are compacted); "0" from a node that predates the field. */
  firstLogIndex: U;
  /** Index of the node's latest snapshot; "0" for none. */
  snapshotIndex: U;
  /** Every member with its role; empty from a node that predates the field. */
  memberStatus: MemberStatus<U>[];
}
export interface MemberStatus<U = WireUint64> {
  id: string;
  address: string;
  /** "voter" or "learner". */
  role: string;
  /** Set by the leader only; "0" elsewhere. */
  matchIndex: U;
}

export interface ReadLogRequest {
  fromIndex: OutgoingUint64;
  maxEntries: number;
}
export type WireLogEntryKind =
  | 'LOG_ENTRY_KIND_UNSPECIFIED'
  | 'LOG_ENTRY_KIND_APPEND'
  | 'LOG_ENTRY_KIND_PUT'
  | 'LOG_ENTRY_KIND_DELETE'
  | 'LOG_ENTRY_KIND_COMPARE_AND_SWAP'
  | 'LOG_ENTRY_KIND_NO_COMMAND'
  | 'LOG_ENTRY_KIND_COMMIT_POSITION'
  | 'LOG_ENTRY_KIND_DELETE_CONSUMER'
  | 'LOG_ENTRY_KIND_REGISTER_PRODUCER';
export interface KeyChange<B = Buffer> {
  key: B;
  foundBefore: boolean;
  before: B;
  deleted: boolean;
  after: B;
}
export interface LogEntry<U = WireUint64, B = Buffer> {
  index: U;
  term: U;
  kind: WireLogEntryKind;
  record: B;
  key: B;
  // Added with Subscribe: optional for senders, always set as received.
  value?: B;
  expected?: B;
  expectAbsent?: boolean;
  consumer?: string;
  position?: U;
  /** Null when the entry was not a producer's write. */
  producer?: ProducerStamp<U> | null;
  changes?: KeyChange<B>[];
  proposedAtMs?: U;
}
export interface ReadLogReply<U = WireUint64, B = Buffer> {
  entries: LogEntry<U, B>[];
  commitIndex: U;
  node: string;
}

export type WireSubscribeView = 'SUBSCRIBE_VIEW_UNSPECIFIED' | 'SUBSCRIBE_VIEW_COMMANDS' | 'SUBSCRIBE_VIEW_CHANGES';
export interface SubscribeRequest {
  fromIndex: OutgoingUint64;
  fromTail: boolean;
  consumer: string;
  view: WireSubscribeView;
  kinds: WireLogEntryKind[];
  keyPrefix: OutgoingBytes;
}
export interface SubscribeReply<U = WireUint64, B = Buffer> {
  entries: LogEntry<U, B>[];
  firstIndex: U;
  lastIndex: U;
  commitIndex: U;
  node: string;
  leader: string;
}
export interface CommitPositionRequest {
  consumer: string;
  position: OutgoingUint64;
  allowBackwards: boolean;
}
export interface CommitPositionReply<U = WireUint64> {
  entry: LogPosition<U> | null;
  leader: string;
  position: U;
}
export interface DeleteConsumerRequest {
  consumer: string;
}
export interface DeleteConsumerReply<U = WireUint64> {
  entry: LogPosition<U> | null;
  leader: string;
  existed: boolean;
}
export interface ConsumersRequest {
  consistency: WireReadConsistency;
}
export interface ConsumerInfo<U = WireUint64> {
  name: string;
  position: U;
  lag: U;
  committedAtMs: U;
  msSinceCommit: U;
  commitEntryIndex: U;
}
export interface ConsumersReply<U = WireUint64> {
  consumers: ConsumerInfo<U>[];
  commitIndex: U;
  readIndex: U;
  node: string;
}
export type RegisterProducerRequest = Record<string, never>;
export interface RegisterProducerReply<U = WireUint64> {
  producerId: U;
  entry: LogPosition<U> | null;
  leader: string;
}

/** Request and reply types of each method, as received (requests) and as sent (replies may use numbers). */
export interface RaftLogMethods {
  Put: { request: PutRequest; reply: WriteReply; outgoingReply: WriteReply<OutgoingUint64> };
  Get: { request: GetRequest; reply: GetReply; outgoingReply: GetReply<OutgoingUint64, OutgoingBytes> };
  Delete: { request: DeleteRequest; reply: DeleteReply; outgoingReply: DeleteReply<OutgoingUint64> };
  CompareAndSwap: {
    request: CompareAndSwapRequest;
    reply: CompareAndSwapReply;
    outgoingReply: CompareAndSwapReply<OutgoingUint64, OutgoingBytes>;
  };
  Append: { request: AppendRecordRequest; reply: WriteReply; outgoingReply: WriteReply<OutgoingUint64> };
  Status: { request: StatusRequest; reply: StatusReply; outgoingReply: StatusReply<OutgoingUint64> };
  ReadLog: { request: ReadLogRequest; reply: ReadLogReply; outgoingReply: ReadLogReply<OutgoingUint64, OutgoingBytes> };
  /** Server-streaming: `reply` is one message of the stream. */
  Subscribe: { request: SubscribeRequest; reply: SubscribeReply; outgoingReply: SubscribeReply<OutgoingUint64, OutgoingBytes> };
  CommitPosition: { request: CommitPositionRequest; reply: CommitPositionReply; outgoingReply: CommitPositionReply<OutgoingUint64> };
  DeleteConsumer: { request: DeleteConsumerRequest; reply: DeleteConsumerReply; outgoingReply: DeleteConsumerReply<OutgoingUint64> };
  Consumers: { request: ConsumersRequest; reply: ConsumersReply; outgoingReply: ConsumersReply<OutgoingUint64> };
  RegisterProducer: {
    request: RegisterProducerRequest;
    reply: RegisterProducerReply;
    outgoingReply: RegisterProducerReply<OutgoingUint64>;
  };
}

export type RaftLogMethodName = keyof RaftLogMethods;

export const RAFTLOG_METHODS: readonly RaftLogMethodName[] = [
  'Put',
  'Get',
  'Delete',
  'CompareAndSwap',
  'Append',
  'Status',
  'ReadLog',
  'Subscribe',
  'CommitPosition',
  'DeleteConsumer',
  'Consumers',
  'RegisterProducer',
];

/** The grpc-js method definition of one call, typed with its request and reply. */
export function methodDefinition<M extends RaftLogMethodName>(
  method: M,
): MethodDefinition<RaftLogMethods[M]['request'], RaftLogMethods[M]['reply']> {
  const definition = raftLogService[method];
  if (definition === undefined) throw new Error(`${RAFTLOG_SERVICE_NAME} has no method ${method}`);
  // proto-loader types every method as MethodDefinition<object, object>; the
  // interfaces above describe what these particular messages hold.
  return definition as unknown as MethodDefinition<RaftLogMethods[M]['request'], RaftLogMethods[M]['reply']>;
}
