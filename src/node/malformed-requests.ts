/**
 * Requests whose bytes are not a valid message of their method. grpc-js
 * answers a request it cannot decode with INTERNAL and no word of what was
 * wrong; raftlog answers INVALID_ARGUMENT saying why, so a service built with
 * passingOnMalformedRequests hands the handler a marker instead, which
 * malformedReason recognises.
 */
import type * as grpc from '@grpc/grpc-js';
import { protobufFramingProblem, requestTypeOf } from './protobuf-framing.js';

const MALFORMED = Symbol('malformed request');

/** What the server gets for request bytes that are not a valid message: the decoder's complaint, turned into INVALID_ARGUMENT by the service. */
export interface MalformedRequest {
  readonly [MALFORMED]: string;
}

export function malformedReason(request: unknown): string | null {
  return typeof request === 'object' && request !== null && MALFORMED in request ? (request as MalformedRequest)[MALFORMED] : null;
}

/**
 * grpc-js answers a request it cannot decode with INTERNAL; the client API
 * promises INVALID_ARGUMENT, so decoding failures are passed on to the handler
 * (see malformedReason). The decoder is lenient (it skips a field numbered 0,
 * reads groups, fills in defaults), so the framing is checked strictly first:
 * two stray bytes must not decode as an empty record that gets committed.
 */
export function passingOnMalformedRequests(loaded: grpc.ServiceDefinition, protoPath: string): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(loaded).map(([name, method]) => {
      const requestType = requestTypeOf(protoPath, method.path);
      return [
        name,
        {
          ...method,
          requestDeserialize: (bytes: Buffer): unknown => {
            const problem = protobufFramingProblem(requestType, bytes);
            if (problem !== null) return { [MALFORMED]: problem } satisfies MalformedRequest;
            try {
              return method.requestDeserialize(bytes);
            } catch (error) {
              return { [MALFORMED]: (error as Error).message } satisfies MalformedRequest;
            }
          },
        },
      ];
    }),
  );
}
