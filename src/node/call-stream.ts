/**
 * Calls (raftlog.v1.RaftLog): many writes and reads over one bidirectional
 * stream. Each CallRequest is served by the same body and the same rules as
 * its unary method (servingCalls in unary-calls.ts: held while the
 * leadership changes, a write forwarded by a follower); its answer or its
 * failure goes back as a CallReply with the request's id, as soon as it is
 * known. What a stream saves is gRPC's per-call work: a unary call costs an
 * HTTP/2 stream with headers and trailers on both sides, several times the
 * cost of a message on a stream that is already open (npm run
 * bench:grpc-calls).
 *
 * Memory per stream is bounded: past MAX_IN_FLIGHT calls in flight (read,
 * their reply not yet handed to gRPC) a call is refused at once with
 * RESOURCE_EXHAUSTED, nothing proposed; and while gRPC holds back replies
 * the caller does not read, the node stops reading, so that HTTP/2 flow
 * control holds the sender back.
 *
 * A stopping node (a graceful stop, after it handed its leadership over)
 * carries out no more calls: each one it reads from then on is refused
 * with UNAVAILABLE, nothing written, and once every call it had read is
 * answered it ends the stream with OK. Ending at once with UNAVAILABLE, as
 * it first did, cut off writes that were still being served (held or
 * forwarded to the new leader) and left their outcome unknown to a caller
 * that a unary call would have answered. So an OK end is a promise: every
 * write the node read was answered before it, and a write still without an
 * answer was never read and not carried out.
 */
import * as grpc from '@grpc/grpc-js';
import type { CallFailure, CallReply, CallRequest } from './client-proto.js';
import { malformedReason } from './malformed-requests.js';
import type { RaftNode } from './raft-node.js';
import { type CallBody, type CallStatus, cappedDeadline, NOT_LEADER_TRAILER, type ServeCall } from './unary-calls.js';

/** Calls a stream may have in flight; more are refused with RESOURCE_EXHAUSTED until answers go out. */
export const MAX_IN_FLIGHT = 1000;

type Stream = grpc.ServerDuplexStream<CallRequest, CallReply>;
type Kind = 'put' | 'delete' | 'compareAndSwap' | 'append' | 'get';

/** The body of each call a Calls request may carry, as its unary method serves it. */
export type CallBodies = { readonly [K in Kind]: CallBody<NonNullable<CallRequest[K]>, NonNullable<CallReply[K]>> };

export function callStreamHandler(getNode: () => RaftNode | null, serve: ServeCall<Kind>, bodies: CallBodies): (call: Stream) => void {
  return (stream) => {
    let inFlight = 0;
    // The caller sent its last call, or the node is stopping: the stream ends once every call in flight is answered.
    let ending = false;
    const endWhenAnswered = () => {
      if (ending && inFlight === 0 && !stream.writableEnded) stream.end();
    };
    const settled = () => {
      inFlight--;
      endWhenAnswered();
    };
    // Replies gRPC has not taken yet past its buffer: stop reading until it has (a caller that does not read its answers).
    let paused = false;
    stream.on('drain', () => {
      if (paused) {
        paused = false;
        stream.resume();
      }
    });
    const reply = (message: CallReply, counted: boolean) => {
      const done = counted ? settled : () => undefined;
      if (stream.cancelled || stream.destroyed || stream.writableEnded) {
        done();
        return;
      }
      if (!stream.write(message, done) && !paused) {
        paused = true;
        stream.pause();
      }
    };
    // Set once the stream ended with an error: what it still delivers is not served.
    let over = false;
    const endWith = (code: grpc.status, details: string) => {
      if (over) return;
      over = true;
      stopWatching?.();
      stream.emit('error', { code, details });
    };
    // A stopping node ends its streams once their calls in flight are answered (see above): an open stream would
    // otherwise hold the server's graceful shutdown until it is forced.
    let stopWatching: (() => void) | null = null;
    const watch = (node: RaftNode) => {
      if (stopWatching !== null) return;
      stopWatching = node.onApplied(() => {
        if (!node.isStopped) return;
        ending = true;
        endWhenAnswered();
      });
    };
    for (const event of ['cancelled', 'close'] as const) stream.on(event, () => stopWatching?.());
    stream.on('data', (request: CallRequest) => {
      // After the stream's OK end nothing read is carried out: that end promised that every call read was answered.
      if (over || stream.writableEnded) return;
      const malformed = malformedReason(request);
      if (malformed !== null) {
        // Without a readable id there is nothing to answer the call with: the stream ends.
        endWith(grpc.status.INVALID_ARGUMENT, `malformed request on a Calls stream: ${malformed}`);
        return;
      }
      if (!Number.isSafeInteger(request.id)) {
        // Decoded as a double, the id could not be echoed exactly: answering under another id would be worse than ending.
        endWith(grpc.status.INVALID_ARGUMENT, `call id ${request.id} is above 2^53 - 1, the largest id this node echoes exactly`);
        return;
      }
      const { id } = request;
      const failed = (code: grpc.status, message: string, nothingWritten = false): CallReply => ({
        id,
        failure: { code, message, nothingWritten } satisfies CallFailure,
      });
      const node = getNode();
      if (node === null) {
        reply(failed(grpc.status.UNAVAILABLE, 'the node is starting', true), false);
        return;
      }
      watch(node);
      if (node.isStopped) {
        ending = true;
        reply(failed(grpc.status.UNAVAILABLE, `node ${node.id} is shutting down; call ${id} was not carried out`, true), false);
        endWhenAnswered();
        return;
      }
      const kind = request.call;
      const body = kind === undefined ? undefined : request[kind];
      if (kind === undefined || body === undefined || body === null) {
        reply(
          failed(grpc.status.INVALID_ARGUMENT, `node ${node.id}: call ${id} names no write or read (put, delete, compare_and_swap, append or get)`),
          false,
        );
        return;
      }
      if (inFlight >= MAX_IN_FLIGHT) {
        // Refused at once, not read later: a call read late would start its deadline late, and a write could be carried
        // out after its caller gave up. The client takes this as it takes the leader's admission refusals.
        const message = `node ${node.id}: ${MAX_IN_FLIGHT} calls of this stream are in flight; call ${id} was not carried out (wait for answers)`;
        reply(failed(grpc.status.RESOURCE_EXHAUSTED, message, true), false);
        return;
      }
      inFlight++;
      const deadline = cappedDeadline(request.timeoutMs > 0 ? Date.now() + request.timeoutMs : null);
      serveOne(serve, kind, bodies, node, body, deadline).then(
        (answer) => reply({ id, [kind]: answer }, true),
        (status: CallStatus) => reply(failed(status.code, status.details, status.metadata.get(NOT_LEADER_TRAILER).length > 0), true),
      );
    });
    stream.on('end', () => {
      ending = true;
      endWhenAnswered();
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
