/**
 * Calls (raftlog.v1.RaftLog): many writes over one bidirectional stream.
 * Each CallRequest is served by the same body and the same rules as its
 * unary method (servingCalls in unary-calls.ts: held while the leadership
 * changes, forwarded by a follower); its answer or its failure goes back as
 * a CallReply with the request's id, as soon as it is known. What a stream
 * saves is gRPC's per-call work: a unary call costs an HTTP/2 stream with
 * headers and trailers on both sides, several times the cost of a message
 * on a stream that is already open (npm run bench:calls).
 *
 * Memory per stream is bounded: the node stops reading the stream while
 * MAX_IN_FLIGHT writes are in flight (read, but their reply not yet handed
 * to gRPC), and HTTP/2 flow control then holds the sender back.
 */
import * as grpc from '@grpc/grpc-js';
import type { CallFailure, CallReply, CallRequest } from './client-proto.js';
import { malformedReason } from './malformed-requests.js';
import type { RaftNode } from './raft-node.js';
import { type CallBody, type CallStatus, cappedDeadline, NOT_LEADER_TRAILER, type ServeCall } from './unary-calls.js';

/** Writes a stream may have in flight before the node stops reading it. */
export const MAX_IN_FLIGHT = 1000;

type Stream = grpc.ServerDuplexStream<CallRequest, CallReply>;
type Kind = 'put' | 'delete' | 'compareAndSwap' | 'append';

/** The body of each write a Calls request may carry, as its unary method serves it. */
export type CallBodies = { readonly [K in Kind]: CallBody<NonNullable<CallRequest[K]>, NonNullable<CallReply[K]>> };

export function callStreamHandler(getNode: () => RaftNode | null, serve: ServeCall<Kind>, bodies: CallBodies): (call: Stream) => void {
  return (stream) => {
    let inFlight = 0;
    let paused = false;
    // The caller sent its last write: the stream ends once every write in flight is answered.
    let ending = false;
    const settled = () => {
      inFlight--;
      if (paused && inFlight < MAX_IN_FLIGHT) {
        paused = false;
        stream.resume();
      }
      if (ending && inFlight === 0 && !stream.writableEnded) stream.end();
    };
    const reply = (message: CallReply) => {
      if (stream.cancelled || stream.destroyed || stream.writableEnded) {
        settled();
        return;
      }
      stream.write(message, settled);
    };
    // Set once the stream ended with an error: what it still delivers is not served.
    let refused = false;
    const refuse = (details: string) => {
      refused = true;
      stream.emit('error', { code: grpc.status.INVALID_ARGUMENT, details });
    };
    stream.on('data', (request: CallRequest) => {
      if (refused) return;
      const malformed = malformedReason(request);
      if (malformed !== null) {
        // Without a readable id there is nothing to answer the write with: the stream ends.
        refuse(`malformed request on a Calls stream: ${malformed}`);
        return;
      }
      if (!Number.isSafeInteger(request.id)) {
        // Decoded as a double, the id could not be echoed exactly: answering under another id would be worse than ending.
        refuse(`call id ${request.id} is above 2^53 - 1, the largest id this node echoes exactly`);
        return;
      }
      inFlight++;
      if (inFlight >= MAX_IN_FLIGHT && !paused) {
        paused = true;
        stream.pause();
      }
      const { id } = request;
      const failed = (code: grpc.status, message: string, nothingWritten = false): CallReply => ({
        id,
        failure: { code, message, nothingWritten } satisfies CallFailure,
      });
      const node = getNode();
      if (node === null) {
        reply(failed(grpc.status.UNAVAILABLE, 'the node is starting'));
        return;
      }
      const kind = request.call;
      const body = kind === undefined ? undefined : request[kind];
      if (kind === undefined || body === undefined || body === null) {
        reply(failed(grpc.status.INVALID_ARGUMENT, `node ${node.id}: call ${id} names no write (put, delete, compare_and_swap or append)`));
        return;
      }
      const deadline = cappedDeadline(request.timeoutMs > 0 ? Date.now() + request.timeoutMs : null);
      serveOne(serve, kind, bodies, node, body, deadline).then(
        (answer) => reply({ id, [kind]: answer }),
        (status: CallStatus) => reply(failed(status.code, status.details, status.metadata.get(NOT_LEADER_TRAILER).length > 0)),
      );
    });
    stream.on('end', () => {
      ending = true;
      if (inFlight === 0 && !stream.writableEnded) stream.end();
    });
  };
}

function serveOne<K extends Kind>(
  serve: ServeCall<Kind>,
  kind: K,
  bodies: CallBodies,
  node: RaftNode,
  request: NonNullable<CallRequest[K]>,
  deadline: number,
): Promise<NonNullable<CallReply[K]>> {
  return serve(kind, bodies[kind] as CallBody<NonNullable<CallRequest[K]>, NonNullable<CallReply[K]>>, node, request, deadline, false, null);
}
