/**
 * The client library's binding of the membership API (src/api/cluster-api.ts):
 * raftlog.v1.Cluster loaded with 64-bit integers as decimal strings, and each
 * method's grpc-js definition typed with its messages.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/proto-loader';
import { CLUSTER_SERVICE_NAME, type ClusterMethodName, type ClusterMethods, loadClusterService } from '../api/cluster-api.js';

/** The service definition to pass to grpc-js (`server.addService`, or `makeUnaryRequest` per method). */
export const clusterService: ServiceDefinition = loadClusterService('decimal-string');

/** The grpc-js method definition of one call, typed with its request and reply. */
export function clusterMethodDefinition<M extends ClusterMethodName>(
  method: M,
): MethodDefinition<ClusterMethods[M]['request'], ClusterMethods[M]['reply']> {
  const definition = clusterService[method];
  if (definition === undefined) throw new Error(`${CLUSTER_SERVICE_NAME} has no method ${method}`);
  // proto-loader types every method as MethodDefinition<object, object>; the
  // interfaces of the contract describe what these particular messages hold.
  return definition as unknown as MethodDefinition<ClusterMethods[M]['request'], ClusterMethods[M]['reply']>;
}
