/**
 * The client API's contract (proto/raftlog/v1/client.proto, service
 * raftlog.v1.RaftLog), for both of its sides: the client library (src/client)
 * and the node that serves it (src/node). Neither imports the other for it.
 *
 * The message shapes are those @grpc/proto-loader hands out (load-service.ts):
 * camelCase field names, enums as their names, bytes as Buffers, absent fields
 * filled with their defaults. They are generic in how a 64-bit integer is held
 * (`U`: the client's decimal strings by default, the node's numbers) and, for
 * what a side sends, in the bytes type (`B`: any Uint8Array may be sent).
 */
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/proto-loader';
import { loadService, type Uint64Form } from './load-service.js';
import { subscribeReplyDecoder } from './subscribe-reply-decoder.js';

export const CLIENT_PROTO_PATH = fileURLToPath(new URL('../../proto/raftlog/v1/client.proto', import.meta.url));

export const RAFTLOG_SERVICE_NAME = 'raftlog.v1.RaftLog';

/** Limits from client.proto: keys 1..4096 bytes, values and records up to 1 MiB. */
export const MAX_KEY_BYTES = 4096;
export const MAX_VALUE_BYTES = 1024 * 1024;

/**
 * The trailing metadata key with which a node answering ReadLog with
 * OUT_OF_RANGE gives the first log index it still holds, in decimal, so
 * that clients need not parse the status message.
 */
export const FIRST_INDEX_METADATA_KEY = 'raftlog-first-index';

const raftLogServices = new Map<Uint64Form, ServiceDefinition>();

/**
 * raftlog.v1.RaftLog with 64-bit integers in the given form, for grpc-js
 * (`server.addService`, or a call per method). Subscribe's replies are read
 * by subscribe-reply-decoder.ts, into the same objects.
 */
export function loadRaftLogService(uint64: Uint64Form): ServiceDefinition {
  let service = raftLogServices.get(uint64);
  if (service === undefined) {
    const loaded = loadService(CLIENT_PROTO_PATH, RAFTLOG_SERVICE_NAME, uint64);
    const subscribe = loaded['Subscribe'];
    if (subscribe === undefined) throw new Error(`${CLIENT_PROTO_PATH} has no method ${RAFTLOG_SERVICE_NAME}.Subscribe`);
    service = { ...loaded, Subscribe: { ...subscribe, responseDeserialize: subscribeReplyDecoder(uint64) } };
    raftLogServices.set(uint64, service);
  }
  return service;
}

/** A 64-bit unsigned integer as it arrives (decimal string); a number or a string may be sent. */
export type WireUint64 = string;
export type OutgoingUint64 = string | number;
/** Bytes as they arrive (Buffer); any Uint8Array may be sent. */
export type OutgoingBytes = Uint8Array;

export type WireReadConsistency = 'READ_CONSISTENCY_UNSPECIFIED' | 'READ_CONSISTENCY_LINEARIZABLE' | 'READ_CONSISTENCY_LOCAL';

/** Marks a write as one of a producer session's, for exactly-once application. */
export interface ProducerStamp<U = OutgoingUint64> {
  producerId: U;
  sequence: U;
  acknowledgedBelow: U;
}
export interface PutRequest<U = OutgoingUint64, B = OutgoingBytes> {
  key: B;
  value: B;
  producer?: ProducerStamp<U> | null;
}
export interface GetRequest<B = OutgoingBytes> {
  key: B;
  consistency: WireReadConsistency;
}
export interface DeleteRequest<U = OutgoingUint64, B = OutgoingBytes> {
  key: B;
  producer?: ProducerStamp<U> | null;
}
export interface CompareAndSwapRequest<U = OutgoingUint64, B = OutgoingBytes> {
  key: B;
  expected: B;
  expectAbsent: boolean;
  value: B;
  producer?: ProducerStamp<U> | null;
}
export interface AppendRecordRequest<U = OutgoingUint64, B = OutgoingBytes> {
  record: B;
  producer?: ProducerStamp<U> | null;
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
  /** Set by the leader only: each other member's log as it tracks it; empty elsewhere (and from a node that predates the field). */
  progress: FollowerProgress<U>[];
}
export interface FollowerProgress<U = WireUint64> {
  id: string;
  matchIndex: U;
  nextIndex: U;
  /** "probe", "replicate" or "snapshot". */
  state: string;
  /** In state "snapshot": the snapshot being sent; "0" otherwise. */
  pendingSnapshotIndex: U;
  inflight: number;
  recentlyActive: boolean;
}
export interface MemberStatus<U = WireUint64> {
  id: string;
  address: string;
  /** "voter" or "learner". */
  role: string;
  /** Set by the leader only; "0" elsewhere. */
  matchIndex: U;
}

export interface ReadLogRequest<U = OutgoingUint64> {
  fromIndex: U;
  maxEntries: number;
}
/** LogEntryKind's names (client.proto), in the order of their numbers. */
export const LOG_ENTRY_KIND_NAMES = [
  'LOG_ENTRY_KIND_UNSPECIFIED',
  'LOG_ENTRY_KIND_APPEND',
  'LOG_ENTRY_KIND_PUT',
  'LOG_ENTRY_KIND_DELETE',
  'LOG_ENTRY_KIND_COMPARE_AND_SWAP',
  'LOG_ENTRY_KIND_NO_COMMAND',
  'LOG_ENTRY_KIND_COMMIT_POSITION',
  'LOG_ENTRY_KIND_DELETE_CONSUMER',
  'LOG_ENTRY_KIND_REGISTER_PRODUCER',
] as const;
export type WireLogEntryKind = (typeof LOG_ENTRY_KIND_NAMES)[number];
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
/** A LogEntry with every field at its default (as received when nothing is set), for a reader or a view to fill in. */
export function emptyLogEntry<U, B>(zero: U, empty: B): Required<LogEntry<U, B>> {
  return {
    index: zero,
    term: zero,
    kind: 'LOG_ENTRY_KIND_UNSPECIFIED',
    record: empty,
    key: empty,
    value: empty,
    expected: empty,
    expectAbsent: false,
    consumer: '',
    position: zero,
    producer: null,
    changes: [],
    proposedAtMs: zero,
  };
}
export interface ReadLogReply<U = WireUint64, B = Buffer> {
  entries: LogEntry<U, B>[];
  commitIndex: U;
  node: string;
}

export type WireSubscribeView = 'SUBSCRIBE_VIEW_UNSPECIFIED' | 'SUBSCRIBE_VIEW_COMMANDS' | 'SUBSCRIBE_VIEW_CHANGES';
export interface SubscribeRequest<U = OutgoingUint64, B = OutgoingBytes> {
  fromIndex: U;
  fromTail: boolean;
  consumer: string;
  view: WireSubscribeView;
  kinds: WireLogEntryKind[];
  keyPrefix: B;
}
export interface SubscribeReply<U = WireUint64, B = Buffer> {
  entries: LogEntry<U, B>[];
  firstIndex: U;
  lastIndex: U;
  commitIndex: U;
  node: string;
  leader: string;
}
export interface CommitPositionRequest<U = OutgoingUint64> {
  consumer: string;
  position: U;
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

/** One write of a Calls stream: `call` names which of the four fields is set. */
export interface CallRequest<U = OutgoingUint64, B = OutgoingBytes> {
  id: U;
  timeoutMs: number;
  call?: 'put' | 'delete' | 'compareAndSwap' | 'append' | 'get';
  put?: PutRequest<U, B> | null;
  delete?: DeleteRequest<U, B> | null;
  compareAndSwap?: CompareAndSwapRequest<U, B> | null;
  append?: AppendRecordRequest<U, B> | null;
  get?: GetRequest<B> | null;
}
export interface CallFailure {
  code: number;
  message: string;
  nothingWritten: boolean;
}
/** The answer to one call of a Calls stream: `result` names which field is set. */
export interface CallReply<U = WireUint64, B = Buffer> {
  id: U;
  result?: 'put' | 'delete' | 'compareAndSwap' | 'append' | 'get' | 'failure';
  put?: WriteReply<U> | null;
  delete?: DeleteReply<U> | null;
  compareAndSwap?: CompareAndSwapReply<U, B> | null;
  append?: WriteReply<U> | null;
  get?: GetReply<U, B> | null;
  failure?: CallFailure | null;
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
  /** Bidirectional streaming: `request` and `reply` are one message of each direction. */
  Calls: { request: CallRequest; reply: CallReply; outgoingReply: CallReply<OutgoingUint64, OutgoingBytes> };
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
  'Calls',
  'Status',
  'ReadLog',
  'Subscribe',
  'CommitPosition',
  'DeleteConsumer',
  'Consumers',
  'RegisterProducer',
];
