/**
 * Writes as messages on a Calls stream (the client's `writeTransport:
 * 'calls'`): one stream per endpoint, opened on first use and again after it
 * breaks, each attempt sent with an id of its own and answered under it.
 *
 * What an attempt learns maps onto what a unary call would have told
 * (call-failure.ts), so verdicts.ts decides the same way: a write's failure
 * reply is the node's own status for that write (fromServer); a stream that
 * ends or breaks before the answer, or an answer that does not come by the
 * deadline, leaves the write's outcome open, as a unary call cut off in
 * flight does (sent, not from the server).
 */
import * as grpc from '@grpc/grpc-js';
import type { CallReply, CallRequest } from '../api/client-api.js';
import { type AttemptOutcome, clientSideFailure } from './call-failure.js';
import { StatusCode } from './errors.js';
import { methodDefinition } from './proto.js';

/** The writes a Calls stream carries (the same names as the client's operations). */
export type StreamedWrite = 'put' | 'delete' | 'compareAndSwap' | 'append';

type Settle = (outcome: AttemptOutcome<unknown>) => void;

/** Grace after the write's own deadline before the client stops waiting for the node's DEADLINE_EXCEEDED. */
const LATE_ANSWER_MS = 250;

export class WriteStream {
  private readonly stream: grpc.ClientDuplexStream<CallRequest, CallReply>;
  private readonly waiting = new Map<string, { readonly settle: Settle; readonly timer: NodeJS.Timeout }>();
  private nextId = 1;
  /** The stream ended or broke: every later write needs a new one. */
  ended = false;

  constructor(
    client: grpc.Client,
    private readonly address: string,
    /** Whether the client was closed (a failure then says so). */
    private readonly closed: () => boolean,
  ) {
    const calls = methodDefinition('Calls');
    this.stream = client.makeBidiStreamRequest(calls.path, calls.requestSerialize, calls.responseDeserialize);
    this.stream.on('data', (reply: CallReply) => this.answer(reply));
    this.stream.on('error', (error: grpc.ServiceError) => this.end(error.code, error.details));
    this.stream.on('end', () => this.end(StatusCode.UNAVAILABLE, 'the node ended the stream'));
  }

  /** Sends one attempt of a write; `deadline` in ms since the epoch. */
  send<Res>(kind: StreamedWrite, request: unknown, deadline: number): Promise<AttemptOutcome<Res>> {
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
        Math.max(0, deadline - Date.now()) + LATE_ANSWER_MS,
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

  /** Every write still waiting was sent and may have been carried out: its outcome is open. */
  private end(code: number, details: string): void {
    this.ended = true;
    // A node that does not serve Calls (an older version) said so itself, and wrote nothing.
    const fromServer = code === grpc.status.UNIMPLEMENTED;
    for (const { settle, timer } of this.waiting.values()) {
      clearTimeout(timer);
      const failure = clientSideFailure(this.address, code, `the Calls stream ended: ${details}`, { closed: this.closed() });
      settle({ ok: false, failure: { ...failure, fromServer } });
    }
    this.waiting.clear();
  }
}
