/**
 * The peer service raftlog.v1.RaftPeer (proto/raftlog/v1/raft.proto), loaded
 * at run time with @grpc/proto-loader.
 */
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { passingOnMalformedRequests } from './malformed-requests.js';
import type { WireDeliverReply, WireMessageBatch } from './wire-codec.js';

export const RAFT_PROTO_PATH = fileURLToPath(new URL('../../proto/raftlog/v1/raft.proto', import.meta.url));

/**
 * The shape wire-codec.ts expects: camelCase names, uint64 as plain numbers
 * (indexes and terms stay far below 2^53; larger values are refused when
 * decoding), enums by name, bytes as Buffer, the oneof's choice in `body`,
 * absent fields filled with their defaults.
 */
export const RAFT_PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

const packageDefinition = protoLoader.loadSync(RAFT_PROTO_PATH, RAFT_PROTO_LOADER_OPTIONS);

/** The service definition: clients call with it. */
export const raftPeerServiceDefinition = packageDefinition['raftlog.v1.RaftPeer'] as unknown as grpc.ServiceDefinition;

/** What a node serves (`server.addService(...)`): requests that do not decode reach the handlers, which answer INVALID_ARGUMENT. */
export const raftPeerServerDefinition = passingOnMalformedRequests(raftPeerServiceDefinition, RAFT_PROTO_PATH);

/** raftlog.v1.RaftPeer/Deliver: path, serializers and deserializers of both directions. */
export const deliverMethod = raftPeerServiceDefinition['Deliver'] as grpc.MethodDefinition<WireMessageBatch, WireDeliverReply>;

/** raftlog.v1.RaftPeer/Stream: the long-lived call nodes send their batches on. */
export const streamMethod = raftPeerServiceDefinition['Stream'] as grpc.MethodDefinition<WireMessageBatch, WireDeliverReply>;
