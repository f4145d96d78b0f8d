/**
 * A raw Subscribe stream (raftlog.v1.RaftLog) on one node, for tests of the
 * server's contract without the client library: it records every reply and
 * how the stream ended, and waits for conditions on them.
 */
import * as grpc from '@grpc/grpc-js';
import { type LogEntryReply, RaftLogGrpcClient, type SubscribeReply, type SubscribeRequest } from '../../src/node/client-proto.js';
import { waitFor } from './wait-for.js';

/** Streams opened and not yet closed: closeAllSubscriptions() ends them after a test, passed or failed. */
const open = new Set<SubscribeStream>();

export class SubscribeStream {
  readonly replies: SubscribeReply[] = [];
  /** The status the stream ended with (an error), or 'end' for a stream the server closed with OK. */
  private ending: grpc.ServiceError | 'end' | null = null;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientReadableStream<SubscribeReply>;

  private constructor(
    readonly address: string,
    readonly request: Partial<SubscribeRequest>,
  ) {
    // A connection of its own: a paused subscriber must not hold up the test's other calls to the node.
    this.client = new RaftLogGrpcClient(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const subscribe = (this.client as unknown as Record<string, (request: object) => grpc.ClientReadableStream<SubscribeReply>>)['subscribe'];
    if (subscribe === undefined) throw new Error('the RaftLog client has no subscribe method');
    this.call = subscribe.call(this.client, request);
    this.call.on('data', (reply: SubscribeReply) => this.replies.push(reply));
    this.call.on('error', (error: grpc.ServiceError) => (this.ending ??= error));
    this.call.on('end', () => (this.ending ??= 'end'));
  }

  /** Opens Subscribe on the node at `address`. */
  static open(address: string, request: Partial<SubscribeRequest> = {}): SubscribeStream {
    const stream = new SubscribeStream(address, request);
    open.add(stream);
    return stream;
  }

  /** Every entry received so far, in the order received. */
  get entries(): LogEntryReply[] {
    return this.replies.flatMap((reply) => reply.entries);
  }

  /** The last index the replies so far cover; 0 before the first reply. */
  get coveredThrough(): number {
    return this.replies.at(-1)?.lastIndex ?? 0;
  }

  get endedWith(): grpc.ServiceError | 'end' | null {
    return this.ending;
  }

  /** Waits until `check` holds; fails early, with the status, if the stream ends first. */
  async until(what: string, check: (stream: this) => boolean, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      `${what} on the Subscribe stream at ${this.address}`,
      () => {
        if (check(this)) return true;
        if (this.ending !== null) {
          const how = this.ending === 'end' ? 'OK' : `${grpc.status[this.ending.code]}: ${this.ending.details}`;
          throw new Error(`the stream ended (${how}) after ${this.replies.length} replies, through index ${this.coveredThrough}`);
        }
        return false;
      },
      { timeoutMs, intervalMs: 20 },
    );
  }

  /** Waits until the replies cover every index up to `index`. */
  untilCovered(index: number, timeoutMs = 30_000): Promise<void> {
    return this.until(`replies covering index ${index}`, (stream) => stream.coveredThrough >= index, timeoutMs);
  }

  /** Waits for the stream to end with an error status and returns it. */
  async failure(timeoutMs = 30_000): Promise<grpc.ServiceError> {
    const ending = await waitFor(`the Subscribe stream at ${this.address} to end`, () => this.ending ?? undefined, { timeoutMs, intervalMs: 20 });
    if (ending === 'end') throw new Error(`the Subscribe stream at ${this.address} ended with OK, not an error`);
    return ending;
  }

  /** Stops reading: gRPC's flow control then holds the server back. */
  pause(): void {
    this.call.pause();
  }

  resume(): void {
    this.call.resume();
  }

  close(): void {
    open.delete(this);
    if (this.ending === null) this.call.cancel();
    this.client.close();
  }
}

export function closeAllSubscriptions(): void {
  for (const stream of [...open]) stream.close();
}

/**
 * What breaks the contract that replies cover consecutive ranges from
 * `from` on, with their entries inside their range in increasing index
 * order: one line per problem, none when the replies keep it.
 */
export function rangeProblems(replies: readonly SubscribeReply[], from: number): string[] {
  const problems: string[] = [];
  let next = from;
  let previousEntry = 0;
  replies.forEach((reply, i) => {
    const where = `reply ${i} (${reply.firstIndex}..${reply.lastIndex})`;
    if (reply.firstIndex !== next) problems.push(`${where} starts at ${reply.firstIndex}, expected ${next}`);
    for (const entry of reply.entries) {
      if (entry.index < reply.firstIndex || entry.index > reply.lastIndex) problems.push(`${where} holds entry ${entry.index}, outside its range`);
      if (entry.index <= previousEntry) problems.push(`${where} holds entry ${entry.index} after entry ${previousEntry}`);
      previousEntry = entry.index;
    }
    next = reply.lastIndex + 1;
  });
  return problems;
}

export const isHeartbeat = (reply: SubscribeReply): boolean => reply.firstIndex > reply.lastIndex;
