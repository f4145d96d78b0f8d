/**
 * The membership service raftlog.v1.Cluster as the node serves it: the
 * contract of src/api/cluster-api.ts with 64-bit integers as numbers (indexes
 * the node computes with).
 */
import * as grpc from '@grpc/grpc-js';
import type * as api from '../api/cluster-api.js';
import { CLUSTER_PROTO_PATH, loadClusterService } from '../api/cluster-api.js';
import type { MemberStatus } from './client-proto.js';
import { passingOnMalformedRequests } from './malformed-requests.js';

/** The service to register on a node's gRPC server; requests that do not decode reach the handler, which answers INVALID_ARGUMENT. */
export const clusterServiceDefinition: grpc.ServiceDefinition = passingOnMalformedRequests(
  loadClusterService('number') as unknown as grpc.ServiceDefinition,
  CLUSTER_PROTO_PATH,
);

/** A generic client of raftlog.v1.Cluster, used by a node to forward a call to its leader. */
export const ClusterGrpcClient = grpc.makeGenericClientConstructor(clusterServiceDefinition, 'Cluster');

/** Method names as the generic client spells them. */
export type ClusterMethod = 'memberList' | 'memberAdd' | 'memberPromote' | 'memberRemove' | 'transferLeadership';

// The messages with numbers for 64-bit integers: requests as the node receives them, replies as it sends them.
export type Member = MemberStatus;
export type MemberListRequest = api.MemberListRequest;
export type MemberListReply = api.MemberListReply<number>;
export type MemberAddRequest = api.MemberAddRequest;
/** MemberPromote's and MemberRemove's request. */
export type MemberIdRequest = api.MemberPromoteRequest;
export type MemberChangeReply = api.MemberChangeReply<number>;
export type TransferLeadershipRequest = api.TransferLeadershipRequest;
export type TransferLeadershipReply = api.TransferLeadershipReply<number>;
