/**
 * gRPC server reflection (@grpc/reflection, protocol versions v1 and
 * v1alpha) on a node's port, so that grpcurl, grpcui and other languages'
 * tools can list and describe the API without the .proto files.
 *
 * Reflected: the client API (raftlog.v1.RaftLog), membership
 * (raftlog.v1.Cluster) and health (grpc.health.v1.Health). Not reflected:
 * the peer service (raftlog.v1.RaftPeer). It is no API: only raftlog nodes of
 * one version speak it to each other, its messages are Raft's own, and a tool
 * that calls it can only disturb the cluster (a forged heartbeat with a huge
 * term deposes every leader). Leaving it out hides nothing from an attacker
 * who has the source, and TLS is what keeps strangers off it; it keeps the
 * catalogue to what a user may call.
 */
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { CLIENT_PROTO_PATH, RAFTLOG_SERVICE_NAME } from '../api/client-api.js';
import { CLUSTER_PROTO_PATH, CLUSTER_SERVICE_NAME } from '../api/cluster-api.js';

export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

/** The services a reflection client lists. */
export const REFLECTED_SERVICES: readonly string[] = [RAFTLOG_SERVICE_NAME, CLUSTER_SERVICE_NAME, HEALTH_SERVICE_NAME];

/**
 * Registers the reflection service for REFLECTED_SERVICES on `server`.
 * Loading @grpc/reflection and indexing the protos takes some 200 ms of CPU,
 * so a node does it once it serves, not on its way there. Reflection names
 * the files by package (raftlog_v1.proto, grpc_health_v1.proto): proto-loader
 * merges the files of one package, and tools look symbols up, not files.
 */
export async function addReflection(server: Pick<grpc.Server, 'addService'>): Promise<void> {
  const { ReflectionService } = await import('@grpc/reflection');
  const files = [CLIENT_PROTO_PATH, CLUSTER_PROTO_PATH, healthProtoPath];
  const definitions = protoLoader.loadSync(files);
  for (const service of REFLECTED_SERVICES) {
    if (!(service in definitions)) throw new Error(`reflection: ${files.join(', ')} do not define ${service}`);
  }
  new ReflectionService(definitions, { services: [...REFLECTED_SERVICES] }).addToServer(server);
}
