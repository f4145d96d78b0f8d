/**
 * The client service raftlog.v1.RaftLog as the node serves it: the contract of
 * src/api/client-api.ts with 64-bit integers as numbers (indexes the node
 * compares and computes with), and requests that do not decode passed on to
 * the handler, which answers INVALID_ARGUMENT.
 */
import * as grpc from '@grpc/grpc-js';
import type * as api from '../api/client-api.js';
import { CLIENT_PROTO_PATH, loadRaftLogService } from '../api/client-api.js';
import { passingOnMalformedRequests } from './malformed-requests.js';

export const raftLogServiceDefinition: grpc.ServiceDefinition = passingEncodedReplies(
  passingOnMalformedRequests(loadRaftLogService('number') as unknown as grpc.ServiceDefinition, CLIENT_PROTO_PATH),
  'Subscribe',
);

/**
 * Lets a handler of `method` write a reply it has already encoded (a Buffer)
 * as well as an object: Subscribe encodes each entry once and shares the
 * bytes among its streams (subscribe-encoding.ts).
 */
function passingEncodedReplies(definition: grpc.ServiceDefinition, method: string): grpc.ServiceDefinition {
  const original = definition[method];
  if (original === undefined) throw new Error(`the service has no method ${method}`);
  const serialize = original.responseSerialize;
  return {
    ...definition,
    [method]: { ...original, responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : serialize(value)) },
  };
}

/** A generic client of raftlog.v1.RaftLog, used by a follower to forward a call to its leader. */
export const RaftLogGrpcClient = grpc.makeGenericClientConstructor(raftLogServiceDefinition, 'RaftLog');

/** Method names as the generic client spells them. */
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

/**
 * A reply as the node sends it: every field set (the contract lets a sender
 * leave out fields added after the first version, and lets a receiver find a
 * position missing; the node does neither).
 */
type Sent<T> = { [K in keyof T]-?: K extends 'position' | 'entry' ? NonNullable<T[K]> : Exclude<T[K], undefined> };

// The messages with numbers for 64-bit integers: requests as the node receives them, replies as it sends them.
export type WireLogEntryKind = api.WireLogEntryKind;
export type LogPosition = api.LogPosition<number>;
/** Null when the request carries none. */
export type ProducerStampRequest = api.ProducerStamp<number>;
export type PutRequest = api.PutRequest<number, Buffer>;
export type WriteReply = Sent<api.WriteReply<number>>;
export type ReadConsistencyName = api.WireReadConsistency;
export type GetRequest = api.GetRequest<Buffer>;
export type GetReply = api.GetReply<number, Buffer | Uint8Array>;
export type DeleteRequest = api.DeleteRequest<number, Buffer>;
export type DeleteReply = Sent<api.DeleteReply<number>>;
export type CompareAndSwapRequest = api.CompareAndSwapRequest<number, Buffer>;
export type CompareAndSwapReply = Sent<api.CompareAndSwapReply<number, Buffer | Uint8Array>>;
export type AppendRecordRequest = api.AppendRecordRequest<number, Buffer>;
export type CallRequest = api.CallRequest<number, Buffer>;
export type CallReply = api.CallReply<number, Buffer | Uint8Array>;
export type CallFailure = api.CallFailure;
export type StatusReply = api.StatusReply<number>;
export type FollowerProgressReply = api.FollowerProgress<number>;
/** A member as Status (client.proto) and the Cluster service (cluster.proto) describe it. */
export type MemberStatus = api.MemberStatus<number>;
export type ReadLogRequest = api.ReadLogRequest<number>;
export type KeyChangeReply = api.KeyChange<Uint8Array>;
export type LogEntryReply = Sent<api.LogEntry<number, Uint8Array>>;
export type ReadLogReply = Omit<api.ReadLogReply<number, Uint8Array>, 'entries'> & { entries: LogEntryReply[] };
export type SubscribeViewName = api.WireSubscribeView;
export type SubscribeRequest = api.SubscribeRequest<number, Buffer>;
export type SubscribeReply = Omit<api.SubscribeReply<number, Uint8Array>, 'entries'> & { entries: LogEntryReply[] };
export type CommitPositionRequest = api.CommitPositionRequest<number>;
export type CommitPositionReply = Sent<api.CommitPositionReply<number>>;
export type DeleteConsumerRequest = api.DeleteConsumerRequest;
export type DeleteConsumerReply = Sent<api.DeleteConsumerReply<number>>;
export type ConsumersRequest = api.ConsumersRequest;
export type ConsumerInfoReply = api.ConsumerInfo<number>;
export type ConsumersReply = api.ConsumersReply<number>;
export type RegisterProducerReply = Sent<api.RegisterProducerReply<number>>;
