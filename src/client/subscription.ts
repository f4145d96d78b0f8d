/**
 * client.subscribe(): the committed log as an async iterable of entries,
 * one at a time and in index order, across node failures.
 *
 * Each Subscribe reply covers a contiguous range of indexes, and the next
 * reply starts where the last one ended (client.proto). The subscription
 * checks that of every reply, and a reply that breaks it ends the iteration
 * with an error: a gap is a bug somewhere, never something to step over.
 *
 * When a stream fails (the node goes away, the connection drops, no reply
 * comes for stallTimeoutMs, or the node has known no leader for that long),
 * the subscription opens a new stream on the next endpoint, after a backoff,
 * from the index after the last one covered: every committed entry is seen
 * exactly once, in order. It waits out an outage however long it lasts; only
 * answers that another node would give alike end it: a start that was
 * compacted away (RaftLogCompactedError) or a request the node rejects
 * (RaftLogInvalidArgumentError).
 *
 * Memory: the subscription holds at most one reply beyond the one being
 * handed out. Until the caller has taken its entries, the stream reads
 * nothing more, so gRPC's flow control holds back the node, which then
 * slows this stream only.
 *
 * A consumer subscription can commit its position, by hand (commit()) or as
 * the caller goes (autoCommit). Only what the caller has taken counts: an
 * entry is taken once the caller asks for the next one (or stops the
 * subscription waiting for one), so an entry whose processing failed is
 * delivered again to the consumer's next subscription (at least once).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { SubscribeReply, SubscribeRequest } from '../api/client-api.js';
import { attemptFailure, type CallFailure, clientSideFailure, failureOfCall, reasonOf } from './call-failure.js';
import { CONSUMER_OPERATIONS, checkPosition } from './consumers.js';
import type { Cancellable, Endpoint, EndpointPool } from './endpoint-pool.js';
import {
  type AttemptFailure,
  FIRST_INDEX_METADATA_KEY,
  RaftLogCompactedError,
  RaftLogError,
  RaftLogInvalidArgumentError,
  rejectedBeforeSending,
  StatusCode,
  statusCodeName,
} from './errors.js';
import type { ClientSettings } from './options.js';
import { methodDefinition } from './proto.js';
import { subscribedEntry, toNumber } from './reply-decoders.js';
import { ReplyGate } from './reply-gate.js';
import type { CommitPositionResult, SubscribedEntry } from './results.js';
import { type SubscribeOptions, type SubscriptionPlan, subscriptionPlan } from './subscribe-options.js';
import { closedError } from './verdicts.js';

export type { AutoCommitOptions, SubscribeOptions, SubscribeView } from './subscribe-options.js';

const OP = CONSUMER_OPERATIONS.subscribe;

/** Commits a consumer's position (the client's commitPosition). */
export type CommitConsumerPosition = (consumer: string, position: number) => Promise<CommitPositionResult>;

/** What a subscription needs of its client. */
export interface SubscriptionContext {
  readonly pool: EndpointPool;
  readonly settings: ClientSettings;
  readonly commitPosition: CommitConsumerPosition;
}

/** How one stream ended. */
type StreamEnd =
  | { readonly kind: 'retry'; readonly failure: AttemptFailure; readonly delivered: boolean }
  | { readonly kind: 'fatal'; readonly error: RaftLogError }
  | { readonly kind: 'stopped' };

/** One Subscribe stream on one endpoint. */
class StreamAttempt {
  delivered = false;
  /** Since when every reply has said the node knows no leader; null while it knows one. */
  leaderlessSince: number | null = null;
  private over = false;
  private stallTimer: NodeJS.Timeout | null = null;
  private call: grpc.ClientReadableStream<SubscribeReply> | null = null;

  constructor(
    readonly endpoint: Endpoint,
    readonly gate: ReplyGate,
    readonly fromIndex: number,
    private readonly stallTimeoutMs: number,
    private readonly resolve: (end: StreamEnd) => void,
  ) {}

  get isOver(): boolean {
    return this.over;
  }

  attach(call: grpc.ClientReadableStream<SubscribeReply>): void {
    this.call = call;
  }

  /** (Re)starts the stall clock while the subscription wants replies; stops it while the gate holds them back. */
  watchForStall(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    if (this.over || !this.gate.isOpen) return;
    this.stallTimer = setTimeout(() => {
      this.finish({
        kind: 'retry',
        delivered: this.delivered,
        failure: {
          endpoint: this.endpoint.address,
          code: StatusCode.UNAVAILABLE,
          codeName: statusCodeName(StatusCode.UNAVAILABLE),
          reason: `no reply, not even a heartbeat, for ${this.stallTimeoutMs} ms`,
          fromServer: false,
        },
      });
    }, this.stallTimeoutMs);
  }

  finish(end: StreamEnd): void {
    if (this.over) return;
    this.over = true;
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.gate.kill();
    this.call?.cancel();
    this.resolve(end);
  }
}

/** A reply whose entries are being handed out. */
interface QueuedReply {
  readonly entries: readonly SubscribedEntry[];
  taken: number;
  /** The last index the reply covers. */
  readonly last: number;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * A subscription to the committed log: iterate it with `for await`. Breaking
 * out of the loop closes it. See the module comment for what it guarantees.
 */
export class LogSubscription implements AsyncIterableIterator<SubscribedEntry> {
  private readonly queue: QueuedReply[] = [];
  /** The index the next reply must start at; null until the first reply says where a tail or consumer subscription starts. */
  private expectedNext: number | null;
  /**
   * Since a node answered OUT_OF_RANGE for the index this subscription
   * needs next: the endpoints tried without getting it. Nodes compact, and
   * keep their CHANGES windows, each on its own: one node's "no longer held"
   * is final only once every endpoint was tried (a node that is down counts
   * as tried: waiting for it could be forever) and none served the index.
   */
  private outOfRange: { readonly index: number; readonly tried: Set<string>; error: RaftLogError } | null = null;
  private covered: number;
  /** The index of the entry the caller holds (handed out, and the caller has not asked for the next); null while it holds none. */
  private held: number | null = null;
  /**
   * The last entry handed out that was not consumer bookkeeping (a position
   * commit or a consumer deletion). autoCommit waits for one: each commit is
   * itself an entry, and committing past it would write an entry per commit
   * on an idle log, forever (and consumers would feed each other).
   */
  private lastWorkIndex = 0;
  private lastCommitIndex = 0;
  private lastNode: string | null = null;
  private reconnectCount = 0;
  private current: StreamAttempt | null = null;
  /** Set once the iteration is to end: with an error, after the entries already received are handed out. */
  private ending: { readonly error: RaftLogError | null; thrown: boolean } | null = null;
  private stopped = false;
  private readonly stopping = new AbortController();
  private waiter: (() => void) | null = null;
  private steps: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | null = null;
  /** The consumer's position as this subscription knows it committed (its start, or its latest commit); null while unknown. */
  private committed: number | null = null;
  private commitInFlight: Promise<void> | null = null;
  private lastCommitAt = Date.now();
  private commitError: RaftLogError | null = null;
  private readonly onAbort = () => void this.close().catch(() => undefined);
  private readonly tracked: Cancellable = { cancel: () => this.endWith(closedError(OP)) };

  /** Opens the subscription at once; use client.subscribe(). */
  constructor(
    private readonly plan: SubscriptionPlan,
    private readonly context: SubscriptionContext,
  ) {
    const start = plan.start;
    this.expectedNext = start.kind === 'index' ? start.from : null;
    this.covered = start.kind === 'index' ? start.from - 1 : 0;
    if (plan.signal?.aborted === true) {
      this.stopped = true;
      return;
    }
    if (context.pool.closed) {
      this.ending = { error: closedError(OP), thrown: false };
      return;
    }
    plan.signal?.addEventListener('abort', this.onAbort, { once: true });
    context.pool.track(this.tracked);
    void this.run();
  }

  /**
   * The last index covered: every entry up to it that passes the filter has
   * been handed to the caller (filtered-out indexes included). 0 until the
   * first reply says where a tail or consumer subscription starts.
   */
  get coveredThrough(): number {
    return this.covered;
  }

  /**
   * What the caller has taken: coveredThrough, less the entry it holds
   * while it has not asked for the next one. What autoCommit commits.
   */
  get consumedThrough(): number {
    return this.held === null ? this.covered : Math.min(this.covered, this.held - 1);
  }

  /** The commit index of the node, as of its latest reply. */
  get commitIndex(): number {
    return this.lastCommitIndex;
  }

  /** How many committed entries the caller trails by: commitIndex - coveredThrough (0 when caught up). */
  get lag(): number {
    return Math.max(0, this.lastCommitIndex - this.covered);
  }

  /** The node that sent the latest reply; null before the first. */
  get node(): string | null {
    return this.lastNode;
  }

  /** How many times the subscription has tried another stream after a failed one. */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /** The consumer position known committed: where it started, or its latest commit; null before that is known or without a consumer. */
  get committedPosition(): number | null {
    return this.committed;
  }

  /** Why the latest automatic commit failed (it is tried again at the next occasion); null after one succeeds. */
  get lastCommitError(): RaftLogError | null {
    return this.commitError;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<SubscribedEntry, undefined>> {
    const step = this.steps.then(() => this.step());
    this.steps = step.catch(() => undefined);
    return step;
  }

  /** What for-await calls when the loop is left early: closes the subscription. */
  async return(): Promise<IteratorReturnResult<undefined>> {
    await this.close();
    return DONE;
  }

  /**
   * Commits the consumer's position: `position`, or by default
   * coveredThrough (everything handed out so far, the entry the caller
   * holds included). Refused (RaftLogFailedPreconditionError) if it would
   * move the consumer backwards.
   */
  async commit(position?: number): Promise<CommitPositionResult> {
    const op = CONSUMER_OPERATIONS.commitPosition;
    const consumer = this.plan.consumer;
    if (consumer === null) throw rejectedBeforeSending(op, 'this subscription has no consumer (subscribe({ consumer }))');
    if (position === undefined && this.expectedNext === null) {
      throw rejectedBeforeSending(op, 'the subscription has not started yet, so it has covered nothing to commit; give a position');
    }
    const target = position === undefined ? this.covered : checkPosition(op, position);
    const result = await this.context.commitPosition(consumer, target);
    this.noteCommitted(result.position);
    return result;
  }

  /**
   * Ends the subscription: the iteration ends (a pending next() resolves
   * as done) and the stream is cancelled. With autoCommit, commits what the
   * caller has taken, once more; the promise rejects if that commit fails.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.stop();
    if (this.plan.autoCommit === null || this.plan.consumer === null) return;
    if (this.commitInFlight !== null) await this.commitInFlight;
    const position = this.consumedThrough;
    if (this.committed === null || position <= this.committed) return;
    const result = await this.context.commitPosition(this.plan.consumer, position);
    this.noteCommitted(result.position);
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopping.abort();
    this.current?.finish({ kind: 'stopped' });
    this.plan.signal?.removeEventListener('abort', this.onAbort);
    this.context.pool.untrack(this.tracked);
    this.wake();
  }

  /** Ends the iteration with `error` once the entries already received are handed out. */
  private endWith(error: RaftLogError): void {
    if (this.ending !== null || this.stopped) return;
    this.ending = { error, thrown: false };
    this.current?.finish({ kind: 'fatal', error });
    // A for-await loop does not call return() when next() throws: let go of the caller's signal here.
    this.plan.signal?.removeEventListener('abort', this.onAbort);
    this.context.pool.untrack(this.tracked);
    this.wake();
  }

  private async step(): Promise<IteratorResult<SubscribedEntry, undefined>> {
    // The caller is back for more: it is done with what it was handed.
    this.held = null;
    this.maybeAutoCommit();
    for (;;) {
      if (this.stopped) return DONE;
      const entry = this.take();
      if (entry !== null) return { done: false, value: entry };
      if (this.ending !== null) {
        const { error } = this.ending;
        if (error === null || this.ending.thrown) return DONE;
        this.ending.thrown = true;
        throw error;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  /** The next entry to hand out, or null when none has arrived. */
  private take(): SubscribedEntry | null {
    const head = this.queue[0];
    if (head === undefined) return null;
    const entry = head.entries[head.taken++] as SubscribedEntry;
    if (head.taken === head.entries.length) {
      this.queue.shift();
      this.covered = head.last;
      this.absorbEmptyReplies();
    } else {
      this.covered = entry.index;
    }
    this.held = entry.index;
    if (entry.kind !== 'commit-position' && entry.kind !== 'delete-consumer') this.lastWorkIndex = entry.index;
    if (this.queue.length === 0 && this.current !== null) {
      // The caller has the last entry received: let the next reply in while it works.
      this.current.gate.open();
      this.current.watchForStall();
    }
    return entry;
  }

  /** Replies at the head of the queue that hold no entry (heartbeats, filtered ranges) only move coveredThrough. */
  private absorbEmptyReplies(): void {
    while (this.queue[0] !== undefined && this.queue[0].entries.length === 0) {
      this.covered = this.queue[0].last;
      this.queue.shift();
    }
  }

  /** Checks a reply against the ranges before it, and queues its entries; a reply that breaks the contract is the error returned. */
  private accept(reply: SubscribeReply, attempt: StreamAttempt): RaftLogError | null {
    const where = `node ${reply.node || '(unnamed)'} at ${attempt.endpoint.address}`;
    const first = toNumber(reply.firstIndex);
    const last = toNumber(reply.lastIndex);
    const range = `${first}..${last}`;
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 1) {
      return this.violation(attempt, `${where} sent a reply covering ${range}: not a range of log indexes`);
    }
    if (this.expectedNext !== null && first !== this.expectedNext) {
      const before = this.expectedNext - 1;
      return this.violation(
        attempt,
        `${where} sent a reply covering ${range}; expected it to start at ${this.expectedNext}, right after index ${before}, the last one covered` +
          (first > this.expectedNext
            ? ` (indexes ${this.expectedNext}..${first - 1} would be skipped)`
            : ' (it goes back over indexes already covered)'),
      );
    }
    if (last < first - 1) return this.violation(attempt, `${where} sent a reply covering ${range}: it ends more than one index before it starts`);
    const entries: SubscribedEntry[] = [];
    let previous = first - 1;
    for (const wire of reply.entries) {
      const index = toNumber(wire.index);
      if (!(index > previous && index <= last)) {
        const why = index > last || index < first ? `outside the range ${range} it covers` : `after entry ${previous}: out of order`;
        return this.violation(attempt, `${where} sent entry ${wire.index} ${why}`);
      }
      previous = index;
      entries.push(subscribedEntry(wire, this.plan.view));
    }

    if (this.expectedNext === null) {
      // The first reply of a tail or consumer subscription says where it starts.
      this.covered = first - 1;
    }
    // A consumer subscription starts right after the consumer's committed position.
    if (this.committed === null && this.plan.start.kind === 'consumer') this.committed = first - 1;
    this.expectedNext = last + 1;
    this.lastCommitIndex = toNumber(reply.commitIndex);
    this.lastNode = reply.node === '' ? this.lastNode : reply.node;
    this.queue.push({ entries, taken: 0, last });
    this.absorbEmptyReplies();
    this.wake();
    this.maybeAutoCommit();
    return null;
  }

  private violation(attempt: StreamAttempt, message: string): RaftLogError {
    return new RaftLogError({
      operation: OP,
      code: StatusCode.INTERNAL,
      endpoint: attempt.endpoint.address,
      message: `subscribe: ${message}. Replies must cover consecutive ranges with their entries inside, in index order (client.proto, SubscribeReply)`,
    });
  }

  /** Commits in the background when the caller has taken enough since the last commit, or enough time has passed. */
  private maybeAutoCommit(): void {
    const rule = this.plan.autoCommit;
    const consumer = this.plan.consumer;
    if (rule === null || consumer === null || this.committed === null || this.commitInFlight !== null || this.stopped) return;
    const position = this.consumedThrough;
    // Only work counts: past nothing but consumer bookkeeping (commits are entries too), committing would
    // feed itself, one entry per commit, forever.
    if (position <= this.committed || Math.min(this.lastWorkIndex, position) <= this.committed) return;
    const dueByEntries = rule.everyEntries !== null && position - this.committed >= rule.everyEntries;
    const dueByTime = rule.everyMs !== null && Date.now() - this.lastCommitAt >= rule.everyMs;
    if (!dueByEntries && !dueByTime) return;
    this.commitInFlight = this.context
      .commitPosition(consumer, position)
      .then(
        (result) => {
          this.noteCommitted(result.position);
          this.commitError = null;
          return true;
        },
        (error: unknown) => {
          this.commitError =
            error instanceof RaftLogError
              ? error
              : new RaftLogError({
                  operation: CONSUMER_OPERATIONS.commitPosition,
                  code: StatusCode.UNKNOWN,
                  endpoint: null,
                  message: `commitPosition: ${String(error)}`,
                  cause: error,
                });
          return false;
        },
      )
      .then((succeeded) => {
        this.commitInFlight = null;
        // The caller may have taken more while the commit was on its way; a failed commit waits for the next occasion.
        if (succeeded) this.maybeAutoCommit();
      });
  }

  private noteCommitted(position: number): void {
    this.lastCommitAt = Date.now();
    if (this.committed === null || position > this.committed) this.committed = position;
  }

  /** Streams from one endpoint after another until the subscription ends. Never rejects. */
  private async run(): Promise<void> {
    const { pool, settings } = this.context;
    let endpoint = this.plan.endpoint === null ? (pool.attemptOrder()[0] as Endpoint) : pool.endpointAt(this.plan.endpoint);
    let failuresInARow = 0;
    let lastFailure: AttemptFailure | null = null;
    try {
      for (let attempt = 0; !this.stopped && this.ending === null; attempt++) {
        if (failuresInARow > 0) {
          const pause = Math.random() * Math.min(settings.backoffMaxMs, settings.backoffInitialMs * 2 ** (failuresInARow - 1));
          try {
            await sleep(pause, undefined, { signal: this.stopping.signal });
          } catch {
            return;
          }
        }
        if (attempt > 0) this.reconnectCount++;
        const end = await this.streamOn(endpoint);
        if (end.kind === 'stopped') return;
        if (end.kind === 'fatal') {
          this.endWith(end.error);
          return;
        }
        lastFailure = end.failure;
        failuresInARow = end.delivered ? 1 : failuresInARow + 1;
        const outOfRange = this.outOfRange;
        if (outOfRange !== null) {
          if (this.expectedNext !== null && this.expectedNext !== outOfRange.index) {
            this.outOfRange = null; // progress since: that start was served after all
          } else {
            outOfRange.tried.add(endpoint.address);
            if (pool.known.every((known) => outOfRange.tried.has(known.address))) {
              this.endWith(outOfRange.error);
              return;
            }
          }
        }
        endpoint = this.nextEndpoint(endpoint);
      }
    } catch (error) {
      this.endWith(
        new RaftLogError({
          operation: OP,
          code: StatusCode.INTERNAL,
          endpoint: endpoint.address,
          message: `subscribe: unexpected failure on ${endpoint.address}: ${(error as Error).message ?? String(error)}`,
          attempts: lastFailure === null ? [] : [lastFailure],
          cause: error,
        }),
      );
    }
  }

  /** After `endpoint`, the next known one (from the start of the pool's order for an endpoint not known). */
  private nextEndpoint(endpoint: Endpoint): Endpoint {
    const { pool } = this.context;
    // The node that failed may have left the cluster, and members may have joined.
    pool.refreshMembers();
    const known = pool.known;
    const at = known.indexOf(endpoint);
    return (at < 0 ? pool.attemptOrder()[0] : known[(at + 1) % known.length]) as Endpoint;
  }

  private request(): SubscribeRequest {
    const base: SubscribeRequest = {
      fromIndex: 0,
      fromTail: false,
      consumer: '',
      view: this.plan.view === 'changes' ? 'SUBSCRIBE_VIEW_CHANGES' : 'SUBSCRIBE_VIEW_COMMANDS',
      kinds: this.plan.kinds,
      keyPrefix: this.plan.keyPrefix,
    };
    if (this.expectedNext !== null) return { ...base, fromIndex: this.expectedNext };
    const start = this.plan.start;
    switch (start.kind) {
      case 'index':
        return { ...base, fromIndex: start.from };
      case 'tail':
        return { ...base, fromTail: true };
      case 'consumer':
        return { ...base, consumer: start.consumer, fromIndex: start.from, fromTail: start.tail };
    }
  }

  /** One stream on one endpoint, until it fails, stalls, breaks the contract or the subscription ends. */
  private async streamOn(endpoint: Endpoint): Promise<StreamEnd> {
    const { pool, settings } = this.context;
    if (pool.closed) return { kind: 'fatal', error: closedError(OP) };
    const client = pool.clientOf(endpoint);
    const connection = await pool.waitForConnection(client, Date.now() + settings.connectTimeoutMs);
    if (this.stopped) return { kind: 'stopped' };
    if (pool.closed) return { kind: 'fatal', error: closedError(OP) };
    if (connection !== 'ready') {
      return {
        kind: 'retry',
        delivered: false,
        failure: attemptFailure(clientSideFailure(endpoint.address, StatusCode.UNAVAILABLE, connection, { notSent: true })),
      };
    }

    const request = this.request();
    const fromIndex = toNumber(request.fromIndex);
    return await new Promise<StreamEnd>((resolve) => {
      const attempt = new StreamAttempt(endpoint, new ReplyGate(this.queue.length === 0), fromIndex, this.plan.stallTimeoutMs, (end) => {
        if (this.current === attempt) this.current = null;
        resolve(end);
      });
      this.current = attempt;
      const method = methodDefinition('Subscribe');
      let call: grpc.ClientReadableStream<SubscribeReply>;
      try {
        call = client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, request, new grpc.Metadata(), {
          interceptors: [attempt.gate.interceptor],
        });
      } catch (error) {
        // grpc-js refuses to start a call on a closed channel.
        const failure = clientSideFailure(endpoint.address, StatusCode.UNAVAILABLE, (error as Error).message, { notSent: true, closed: pool.closed });
        attempt.finish(
          failure.closed ? { kind: 'fatal', error: closedError(OP) } : { kind: 'retry', delivered: false, failure: attemptFailure(failure) },
        );
        return;
      }
      attempt.attach(call);
      call.on('data', (reply: SubscribeReply) => this.onReply(attempt, reply));
      call.on('error', (error: grpc.ServiceError) => {
        if (!attempt.isOver) attempt.finish(this.streamFailed(attempt, failureOfCall(endpoint.address, error, pool.closed)));
      });
      call.on('status', (status: grpc.StatusObject) => {
        if (status.code !== grpc.status.OK || attempt.isOver) return;
        const failure = clientSideFailure(endpoint.address, StatusCode.UNAVAILABLE, 'the node ended the stream, which it only does on request');
        attempt.finish({ kind: 'retry', delivered: attempt.delivered, failure: attemptFailure(failure) });
      });
      attempt.watchForStall();
    });
  }

  private onReply(attempt: StreamAttempt, reply: SubscribeReply): void {
    if (attempt.isOver) return;
    const problem = this.accept(reply, attempt);
    if (problem !== null) {
      attempt.finish({ kind: 'fatal', error: problem });
      return;
    }
    if (!attempt.delivered) {
      attempt.delivered = true;
      this.context.pool.learnNode(attempt.endpoint, reply.node);
    }
    const now = Date.now();
    if (reply.leader !== '') {
      attempt.leaderlessSince = null;
    } else {
      attempt.leaderlessSince ??= now;
      const heartbeat = toNumber(reply.firstIndex) > toNumber(reply.lastIndex);
      // A node cut off from the others knows no leader, and would send nothing new: another node may.
      if (heartbeat && now - attempt.leaderlessSince >= this.plan.stallTimeoutMs) {
        const failure = clientSideFailure(
          attempt.endpoint.address,
          StatusCode.UNAVAILABLE,
          `node ${reply.node} has known no leader for ${now - attempt.leaderlessSince} ms`,
        );
        attempt.finish({ kind: 'retry', delivered: true, failure: attemptFailure(failure) });
        return;
      }
    }
    attempt.watchForStall();
  }

  /** What a stream's failure means: try another node, or end the iteration with an error. */
  private streamFailed(attempt: StreamAttempt, failure: CallFailure): StreamEnd {
    if (failure.closed) return { kind: 'fatal', error: closedError(OP) };
    const { endpoint, code, details } = failure;
    switch (code) {
      case StatusCode.OUT_OF_RANGE: {
        const needed = this.expectedNext ?? attempt.fromIndex;
        const error = compactedStartError(needed, failure) ?? this.failedError(failure);
        if (this.outOfRange?.index !== needed) this.outOfRange = { index: needed, tried: new Set(), error };
        else this.outOfRange.error = error;
        // run() counts this endpoint as tried, and ends the subscription once every endpoint was.
        return { kind: 'retry', delivered: false, failure: attemptFailure(failure) };
      }
      case StatusCode.INVALID_ARGUMENT:
        return {
          kind: 'fatal',
          error: new RaftLogInvalidArgumentError({
            operation: OP,
            code,
            endpoint,
            details,
            attempts: [attemptFailure(failure)],
            message: `subscribe rejected by ${endpoint}: ${details || 'invalid argument'} (INVALID_ARGUMENT)`,
          }),
        };
      case StatusCode.UNAVAILABLE:
      case StatusCode.CANCELLED:
      case StatusCode.INTERNAL:
      case StatusCode.DEADLINE_EXCEEDED:
      case StatusCode.RESOURCE_EXHAUSTED:
      case grpc.status.ABORTED:
      // Seen from a node in the middle of a membership change (jepsen-lite, all nemeses): another node serves.
      case grpc.status.UNIMPLEMENTED:
        return { kind: 'retry', delivered: attempt.delivered, failure: attemptFailure(failure) };
      default:
        return { kind: 'fatal', error: this.failedError(failure) };
    }
  }

  private failedError(failure: CallFailure): RaftLogError {
    const { endpoint, code, details } = failure;
    return new RaftLogError({
      operation: OP,
      code,
      endpoint,
      details,
      attempts: [attemptFailure(failure)],
      message: `subscribe on ${endpoint} failed: ${reasonOf(failure)}`,
    });
  }
}

/** A node's OUT_OF_RANGE answer to a start it no longer holds, when it gives the first index it does hold. */
function compactedStartError(fromIndex: number, failure: CallFailure): RaftLogCompactedError | null {
  const given = failure.trailers?.get(FIRST_INDEX_METADATA_KEY)[0];
  const firstIndex = typeof given === 'string' && /^[1-9][0-9]*$/.test(given) ? Number(given) : NaN;
  if (!Number.isSafeInteger(firstIndex)) return null;
  const { endpoint, code, details } = failure;
  return new RaftLogCompactedError({
    operation: OP,
    code,
    endpoint,
    details,
    attempts: [attemptFailure(failure)],
    fromIndex,
    firstIndex,
    message: `subscribe on ${endpoint}: ${details || `cannot stream from index ${fromIndex}: the log starts at ${firstIndex}`} (OUT_OF_RANGE)`,
  });
}

/** Checks the options and opens the subscription (client.subscribe()). */
export function openSubscription(context: SubscriptionContext, options: SubscribeOptions): LogSubscription {
  return new LogSubscription(subscriptionPlan(options), context);
}
