/**
 * Loads a service of the client API from its .proto file at run time with
 * @grpc/proto-loader: camelCase field names, enums as their names, bytes as
 * Buffers, absent fields filled with their defaults, and 64-bit integers in
 * the form the caller computes with. The client keeps them as decimal strings
 * (nothing is lost past 2^53); the node as numbers (its indexes and terms stay
 * far below 2^53). Each form of a file is loaded once, on first use: loading
 * costs some 25 ms, which a process that never asks for a form does not pay.
 */
import { loadSync, type ServiceDefinition } from '@grpc/proto-loader';

/** How a 64-bit integer arrives: 'decimal-string' ("12"), or 'number' (12). */
export type Uint64Form = 'decimal-string' | 'number';

const loaded = new Map<string, ServiceDefinition>();

/** The service `serviceName` of `protoPath`; throws when the file does not define it. */
export function loadService(protoPath: string, serviceName: string, uint64: Uint64Form): ServiceDefinition {
  const key = `${protoPath}\n${serviceName}\n${uint64}`;
  const known = loaded.get(key);
  if (known !== undefined) return known;
  const packageDefinition = loadSync(protoPath, {
    keepCase: false,
    longs: uint64 === 'number' ? Number : String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const service = packageDefinition[serviceName];
  if (service === undefined || 'format' in service) throw new Error(`${protoPath} does not define the service ${serviceName}`);
  loaded.set(key, service);
  return service;
}
