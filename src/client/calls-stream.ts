/**
 * Writes and Gets as messages on a Calls stream (the client's
 * `writeTransport` and `readTransport: 'calls'`): one stream per endpoint,
 * opened on first use and again after it breaks, each attempt sent with an
 * id of its own and answered under it.
 *
 * What an attempt learns maps onto what a unary call would have told
 * (call-failure.ts), so verdicts.ts decides the same way: a call's failure
 * reply is the node's own status for that call (fromServer); a stream that
 * ends or breaks before the answer, or an answer that does not come by the
 * deadline, leaves a write's outcome open, as a unary call cut off in
 * flight does (sent, not from the server). A Get has no outcome to leave
 * open: it is tried again, as a unary Get would be.
 */
import * as grpc from '@grpc/grpc-js';
import type { CallReply, CallRequest } from '../api/client-api.js';
import { type AttemptOutcome, type CallFailure, clientSideFailure, failureOfCall } from './call-failure.js';
import { StatusCode } from './errors.js';
import { methodDefinition } from './proto.js';

/** The calls a Calls stream carries (the same names as the client's operations). */
export type StreamedCall = 'put' | 'delete' | 'compareAndSwap' | 'append' | 'get';

type Settle = (outcome: AttemptOutcome<unknown>) => void;

/**
 * Grace after a write's own deadline before the client stops waiting for the
 * node's DEADLINE_EXCEEDED (which tells more than silence: the write may have
 * failed definitely). A Get gets none: its answer after the deadline is of no
 * use, and a unary Get ends at the deadline too.
 */
const LATE_ANSWER_MS = 250;

export class CallsStream {
  private readonly stream: grpc.ClientDuplexStream<CallRequest, CallReply>;
  private readonly waiting = new Map<string, { readonly settle: Settle; readonly timer: NodeJS.Timeout }>();
  private nextId = 1;
  /** The stream ended or broke: every later call needs a new one. */
  ended = false;
  /** The node itself answered the stream with UNIMPLEMENTED: it does not serve Calls (an older version); it carried out nothing sent on it. */
  unsupported = false;
  /** The status the stream ended with, once grpc-js has reported it. */
  private status: grpc.StatusObject | null = null;

  constructor(
    client: grpc.Client,
    private readonly address: string,
    /** Whether the client was closed (a failure then says so). */
    private readonly closed: () => boolean,
  ) {
    const calls = methodDefinition('Calls');
    this.stream = client.makeBidiStreamRequest(calls.path, calls.requestSerialize, calls.responseDeserialize);
    this.stream.on('data', (reply: CallReply) => this.answer(reply));
    this.stream.on('error', (error: grpc.ServiceError) => this.end(error));
    this.stream.on('status', (status: grpc.StatusObject) => {
      this.status = status;
    });
    // 'end' comes after every answer the stream carried was read ('status' may come before them).
    this.stream.on('end', () => this.end(null));
  }

  /** Sends one attempt of a call; `deadline` in ms since the epoch. */
  send<Res>(kind: StreamedCall, request: unknown, deadline: number): Promise<AttemptOutcome<Res>> {
    return new Promise((resolve) => {
      const settle = resolve as Settle;
      if (this.ended) {
        settle({
          ok: false,
          failure: clientSideFailure(this.address, StatusCode.UNAVAILABLE, 'the Calls stream had ended', { notSent: true, closed: this.closed() }),
        });
        return;
      }
      const id = String(this.nextId++);
      const timer = setTimeout(
        () => {
          if (!this.waiting.delete(id)) return;
          settle({
            ok: false,
            failure: clientSideFailure(this.address, StatusCode.DEADLINE_EXCEEDED, 'no answer on the Calls stream within the deadline'),
          });
        },
        Math.max(0, deadline - Date.now()) + (kind === 'get' ? 0 : LATE_ANSWER_MS),
      );
      this.waiting.set(id, { settle, timer });
      this.stream.write({ id, timeoutMs: Math.max(1, Math.ceil(deadline - Date.now())), call: kind, [kind]: request });
    });
  }

  cancel(): void {
    this.stream.cancel();
  }

  private answer(reply: CallReply): void {
    const id = String(reply.id);
    const waiter = this.waiting.get(id);
    if (waiter === undefined) return;
    this.waiting.delete(id);
    clearTimeout(waiter.timer);
    const failure = reply.failure;
    if (failure != null) {
      waiter.settle({ ok: false, failure: { ...clientSideFailure(this.address, failure.code, failure.message), fromServer: true } });
      return;
    }
    const result = reply.result === undefined || reply.result === 'failure' ? undefined : reply[reply.result];
    if (result == null) {
      waiter.settle({
        ok: false,
        failure: clientSideFailure(this.address, StatusCode.INTERNAL, `the node's answer to call ${id} carries no result`),
      });
      return;
    }
    waiter.settle({ ok: true, reply: result });
  }

  /**
   * The stream ended (`error` null: after every answer on it was read) or
   * broke. A status that breaks the stream is not an answer to any one
   * write: the node may have carried out any write it read before. So every
   * write still waiting is open, with three exceptions where nothing can
   * have been carried out: the node ended the stream with OK (it does so
   * only once every call it read is answered, see Calls in client.proto),
   * it answered UNIMPLEMENTED itself (it has no Calls method), or the stream
   * never left the client (no connection was established for it).
   */
  private end(error: grpc.ServiceError | null): void {
    // grpc-js follows an error with 'end': the first says how the stream ended.
    if (this.ended) return;
    this.ended = true;
    if (error === null && this.status?.code === grpc.status.OK) {
      this.failWaiting({
        ...clientSideFailure(this.address, StatusCode.UNAVAILABLE, 'the node ended the Calls stream before it read the call (it is stopping)', {
          closed: this.closed(),
        }),
        fromServer: true,
      });
      return;
    }
    const seen =
      error === null
        ? clientSideFailure(this.address, StatusCode.UNAVAILABLE, 'the node ended the stream', { closed: this.closed() })
        : failureOfCall(this.address, error, this.closed());
    this.unsupported = seen.fromServer && seen.code === grpc.status.UNIMPLEMENTED;
    this.failWaiting({
      ...seen,
      details: seen.notSent ? seen.details : `the Calls stream ended: ${seen.details}`,
      fromServer: this.unsupported,
    });
  }

  private failWaiting(failure: CallFailure): void {
    for (const { settle, timer } of this.waiting.values()) {
      clearTimeout(timer);
      settle({ ok: false, failure });
    }
    this.waiting.clear();
  }
}
