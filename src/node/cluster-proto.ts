/**
 * The membership service raftlog.v1.Cluster as the server side sees it: the
 * same contract as src/client/cluster-proto.ts, loaded with uint64 as numbers
 * (indexes the node computes with) where the client keeps decimal strings.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { CLUSTER_PROTO_PATH, CLUSTER_SERVICE_NAME } from '../client/cluster-proto.js';
import { passingOnMalformedRequests, type MemberStatus } from './client-proto.js';

const packageDefinition = protoLoader.loadSync(CLUSTER_PROTO_PATH, {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** The service to register on a node's gRPC server; requests that do not decode reach the handler, which answers INVALID_ARGUMENT. */
export const clusterServiceDefinition: grpc.ServiceDefinition = passingOnMalformedRequests(
  packageDefinition[CLUSTER_SERVICE_NAME] as unknown as grpc.ServiceDefinition,
);

/** A generic client of raftlog.v1.Cluster, used by a node to forward a call to its leader. */
export const ClusterGrpcClient = grpc.makeGenericClientConstructor(clusterServiceDefinition, 'Cluster');

/** Method names as the generic client spells them. */
export type ClusterMethod = 'memberList' | 'memberAdd' | 'memberPromote' | 'memberRemove';

export type Member = MemberStatus;
export type MemberListRequest = Record<string, never>;
export interface MemberListReply {
  members: Member[];
  configIndex: number;
  committed: boolean;
  leader: string;
  commitIndex: number;
  clusterId: string;
  clusterName: string;
}
export interface MemberAddRequest {
  id: string;
  address: string;
  learner: boolean;
}
export interface MemberIdRequest {
  id: string;
}
export interface MemberChangeReply {
  members: Member[];
  index: number;
  leader: string;
}
