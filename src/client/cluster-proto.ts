/**
 * The membership API's wire contract, loaded from
 * proto/raftlog/v1/cluster.proto with the same loader options as the client
 * API (src/client/proto.ts): camelCase fields, 64-bit integers as decimal
 * strings, absent fields filled with their defaults.
 *
 * Both sides can use it: the client in this folder, and any server (or test
 * fake) that registers `clusterService` with a grpc-js Server.
 */
import { fileURLToPath } from 'node:url';
import { loadSync, type MethodDefinition, type ServiceDefinition } from '@grpc/proto-loader';
import type { WireUint64 } from './proto.js';

export const CLUSTER_PROTO_PATH = fileURLToPath(new URL('../../proto/raftlog/v1/cluster.proto', import.meta.url));

export const CLUSTER_SERVICE_NAME = 'raftlog.v1.Cluster';

const packageDefinition = loadSync(CLUSTER_PROTO_PATH, {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: false,
});

const service = packageDefinition[CLUSTER_SERVICE_NAME];
if (service === undefined || 'format' in service) {
  throw new Error(`${CLUSTER_PROTO_PATH} does not define the service ${CLUSTER_SERVICE_NAME}`);
}

/** The service definition to pass to grpc-js (`server.addService`, or `makeUnaryRequest` per method). */
export const clusterService: ServiceDefinition = service;

type OutgoingUint64 = string | number;

/** A member as the wire carries it; `role` is "voter" or "learner". */
export interface WireMember<U = WireUint64> {
  id: string;
  address: string;
  role: string;
  matchIndex: U;
}
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

/** Request and reply types of each method, as received (requests) and as sent (replies may use numbers). */
export interface ClusterMethods {
  MemberList: { request: MemberListRequest; reply: MemberListReply; outgoingReply: MemberListReply<OutgoingUint64> };
  MemberAdd: { request: MemberAddRequest; reply: MemberChangeReply; outgoingReply: MemberChangeReply<OutgoingUint64> };
  MemberPromote: { request: MemberPromoteRequest; reply: MemberChangeReply; outgoingReply: MemberChangeReply<OutgoingUint64> };
  MemberRemove: { request: MemberRemoveRequest; reply: MemberChangeReply; outgoingReply: MemberChangeReply<OutgoingUint64> };
}

export type ClusterMethodName = keyof ClusterMethods;

export const CLUSTER_METHODS: readonly ClusterMethodName[] = ['MemberList', 'MemberAdd', 'MemberPromote', 'MemberRemove'];

/** The grpc-js method definition of one call, typed with its request and reply. */
export function clusterMethodDefinition<M extends ClusterMethodName>(
  method: M,
): MethodDefinition<ClusterMethods[M]['request'], ClusterMethods[M]['reply']> {
  const definition = clusterService[method];
  if (definition === undefined) throw new Error(`${CLUSTER_SERVICE_NAME} has no method ${method}`);
  // proto-loader types every method as MethodDefinition<object, object>; the
  // interfaces above describe what these particular messages hold.
  return definition as unknown as MethodDefinition<ClusterMethods[M]['request'], ClusterMethods[M]['reply']>;
}
