/**
 * The flow control of a subscription's stream, as a grpc-js interceptor.
 */
import * as grpc from '@grpc/grpc-js';
import type { SubscribeReply } from '../api/client-api.js';

/**
 * Holds back the stream's next reply while the subscription has entries
 * the caller has not taken: a gRPC interceptor that passes a reply on only
 * when the gate is open, and closes the gate behind a reply that carries
 * entries. A held reply keeps gRPC from reading further, so the node's
 * writes wait on flow control. (Pausing the stream object would not do:
 * grpc-js keeps reading into its buffer of 16 messages.)
 */
export class ReplyGate {
  private wanted: boolean;
  private held: { readonly message: SubscribeReply; readonly passOn: (message: SubscribeReply) => void } | null = null;
  private dead = false;

  constructor(open: boolean) {
    this.wanted = open;
  }

  get isOpen(): boolean {
    return this.wanted;
  }

  readonly interceptor: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, _listener, next) => {
        next(metadata, {
          onReceiveMessage: (message: SubscribeReply, passOn: (message: SubscribeReply) => void) => {
            if (this.dead) {
              passOn(message);
            } else if (this.wanted) {
              this.closeBehind(message);
              passOn(message);
            } else {
              this.held = { message, passOn };
            }
          },
        });
      },
    });

  open(): void {
    if (this.wanted || this.dead) return;
    this.wanted = true;
    const held = this.held;
    this.held = null;
    if (held === null) return;
    // Not from within the caller's step: the reply's handler changes what that step is looking at.
    queueMicrotask(() => {
      if (!this.dead) this.closeBehind(held.message);
      held.passOn(held.message);
    });
  }

  /** The stream is over: a held reply is let through (and ignored) so that grpc-js can finish the call. */
  kill(): void {
    this.dead = true;
    const held = this.held;
    this.held = null;
    if (held !== null) queueMicrotask(() => held.passOn(held.message));
  }

  private closeBehind(message: SubscribeReply): void {
    if (Array.isArray(message.entries) && message.entries.length > 0) this.wanted = false;
  }
}
