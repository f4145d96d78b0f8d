/**
 * The membership API's contract (proto/raftlog/v1/cluster.proto, service
 * raftlog.v1.Cluster), for the client library and the node alike; the shapes
 * follow the conventions of client-api.ts.
 */
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/proto-loader';
import type { MemberStatus, OutgoingUint64, WireUint64 } from './client-api.js';
import { loadService, type Uint64Form } from './load-service.js';

export const CLUSTER_PROTO_PATH = fileURLToPath(new URL('../../proto/raftlog/v1/cluster.proto', import.meta.url));

export const CLUSTER_SERVICE_NAME = 'raftlog.v1.Cluster';

/** raftlog.v1.Cluster with 64-bit integers in the given form, for grpc-js (`server.addService`, or a call per method). */
export function loadClusterService(uint64: Uint64Form): ServiceDefinition {
  return loadService(CLUSTER_PROTO_PATH, CLUSTER_SERVICE_NAME, uint64);
}

/** A member as the wire carries it (the same message as in Status). */
export type WireMember<U = WireUint64> = MemberStatus<U>;
export type MemberListRequest = Record<string, never>;
export interface MemberListReply<U = WireUint64> {
  members: WireMember<U>[];
  configIndex: U;
  committed: boolean;
  leader: string;
  commitIndex: U;
  clusterId: string;
  clusterName: string;
}
export interface MemberAddRequest {
  id: string;
  address: string;
  learner: boolean;
}
export interface MemberPromoteRequest {
  id: string;
}
export interface MemberRemoveRequest {
  id: string;
}
export interface MemberChangeReply<U = WireUint64> {
  members: WireMember<U>[];
  index: U;
  leader: string;
}
export interface TransferLeadershipRequest {
  /** Empty: the leader picks the most caught-up voter. */
  to: string;
}
export interface TransferLeadershipReply<U = WireUint64> {
  leader: string;
  term: U;
  previousLeader: string;
}

/** Request and reply types of each method, as received (requests) and as sent (replies may use numbers). */
export interface ClusterMethods {
  MemberList: { request: MemberListRequest; reply: MemberListReply; outgoingReply: MemberListReply<OutgoingUint64> };
  MemberAdd: { request: MemberAddRequest; reply: MemberChangeReply; outgoingReply: MemberChangeReply<OutgoingUint64> };
  MemberPromote: { request: MemberPromoteRequest; reply: MemberChangeReply; outgoingReply: MemberChangeReply<OutgoingUint64> };
  MemberRemove: { request: MemberRemoveRequest; reply: MemberChangeReply; outgoingReply: MemberChangeReply<OutgoingUint64> };
  TransferLeadership: {
    request: TransferLeadershipRequest;
    reply: TransferLeadershipReply;
    outgoingReply: TransferLeadershipReply<OutgoingUint64>;
  };
}

export type ClusterMethodName = keyof ClusterMethods;

export const CLUSTER_METHODS: readonly ClusterMethodName[] = ['MemberList', 'MemberAdd', 'MemberPromote', 'MemberRemove', 'TransferLeadership'];
