/**
 * The client library's binding of the client API (src/api/client-api.ts):
 * raftlog.v1.RaftLog loaded with 64-bit integers as decimal strings, and each
 * method's grpc-js definition typed with its messages.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/proto-loader';
import { loadRaftLogService, RAFTLOG_SERVICE_NAME, type RaftLogMethodName, type RaftLogMethods } from '../api/client-api.js';

/** The service definition to pass to grpc-js (`server.addService`, or `makeUnaryRequest` per method). */
export const raftLogService: ServiceDefinition = loadRaftLogService('decimal-string');

/** The grpc-js method definition of one call, typed with its request and reply. */
export function methodDefinition<M extends RaftLogMethodName>(method: M): MethodDefinition<RaftLogMethods[M]['request'], RaftLogMethods[M]['reply']> {
  const definition = raftLogService[method];
  if (definition === undefined) throw new Error(`${RAFTLOG_SERVICE_NAME} has no method ${method}`);
  // proto-loader types every method as MethodDefinition<object, object>; the
  // interfaces of the contract describe what these particular messages hold.
  return definition as unknown as MethodDefinition<RaftLogMethods[M]['request'], RaftLogMethods[M]['reply']>;
}
