/**
 * Benchmark subscribers: raw gRPC Subscribe streams (COMMANDS view, no
 * filter) from the tail, each on its own channel, spread over the nodes. Each
 * one checks that its covered ranges join up, remembers which indexes it
 * received, and times stamped records from send to delivery. When its stream
 * fails (its node was killed) it resubscribes on the next node from the index
 * after the last one it covered, so the check spans the move.
 */
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import type { SubscribeReply } from '../../src/node/client-proto.js';
import { type RaftLogStub, sleep, stubFor } from './client.js';
import { ackedBeforeStart, CoverageCheck, describeProblem, IndexSet, lagBehind, sentTimeOf, undelivered } from './delivery-check.js';
import { errorKind, now } from './load.js';
import { type LatencyStats, latencyStats, r1 } from './stats.js';

/** Pause before resubscribing after a stream failed: short, as the failover gap counts it. */
const RESUBSCRIBE_PAUSE_MS = 10;

export interface SubscriberReport {
  /** The node it started on, then each node it moved to. */
  readonly nodes: string[];
  readonly start_index: number | null;
  /** Last index covered when the report was made. */
  readonly through: number | null;
  /** Appended records delivered inside the measured window. */
  readonly delivered: number;
  readonly delivered_per_s: number;
  /** Replies that carried entries inside the measured window: delivered ÷ replies is the batch a node sends. */
  readonly replies_with_entries: number;
  /** Highest acknowledged index when the writers stopped, minus the last index this subscriber had covered then. */
  readonly lag_at_end: number;
  /** Acknowledged appends at or after its start index that it never received, after the drain. */
  readonly undelivered_after_drain: number;
  readonly first_undelivered: number[];
  /** Acknowledged appends below its start index (it could not be expected to see them): a harness error unless 0. */
  readonly acked_before_start: number;
  /** Breaks of the Subscribe contract it saw (gaps, overlaps, dropped entries); 0 is the only good answer. */
  readonly coverage_problems: number;
  readonly problems: string[];
  readonly stream_errors: Record<string, number>;
  readonly resubscribes: number;
}

/** Delivery after a failure: from a mark (the kill) to the first entry delivered, and to the first record sent after it. */
export interface AfterMark {
  /** Mark → the next entry delivered at all. */
  readonly next_delivery_ms: number | null;
  /** Mark → the first delivered record that was sent after the mark: when new writes flow to the subscriber again. */
  readonly fresh_delivery_ms: number | null;
}

export class Subscriber {
  readonly coverage = new CoverageCheck();
  readonly received = new IndexSet();
  /** Send → delivery of the stamped records delivered inside the window (ms). */
  readonly e2e: number[] = [];
  delivered = 0;
  repliesWithEntries = 0;
  resubscribes = 0;
  readonly nodes: string[] = [];
  readonly streamErrors: Record<string, number> = {};
  /** Entries covered when the window ended (for the lag at the end). */
  throughAtWindowEnd: number | null = null;

  private readonly stubs = new Map<number, RaftLogStub>();
  private stream: ClientReadableStream<SubscribeReply> | null = null;
  private on: number;
  private closed = false;
  private windowStart = Infinity;
  private windowEnd = Infinity;
  private mark: number | null = null;
  private afterMarkAny: number | null = null;
  private afterMarkFresh: number | null = null;
  private markReplies: (() => void)[] = [];
  private readonly firstReply: Promise<void>;
  private gotFirstReply: () => void = () => {};

  constructor(
    private readonly endpoints: readonly { endpoint: string; name?: string }[],
    startOn: number,
  ) {
    this.on = startOn % endpoints.length;
    this.firstReply = new Promise((resolve) => (this.gotFirstReply = resolve));
    this.open();
  }

  /** Resolves at the first reply (data or heartbeat): from then on the start index is known. */
  ready(): Promise<void> {
    return this.firstReply;
  }

  startWindow(t: number): void {
    this.windowStart = t;
    this.windowEnd = Infinity;
  }

  endWindow(t: number): void {
    this.windowEnd = t;
    this.throughAtWindowEnd = this.coverage.through;
  }

  /** Start timing delivery after t (a kill). */
  markAt(t: number): void {
    this.mark = t;
    this.afterMarkAny = null;
    this.afterMarkFresh = null;
  }

  afterMark(): AfterMark {
    const m = this.mark;
    return {
      next_delivery_ms: m === null || this.afterMarkAny === null ? null : r1(this.afterMarkAny - m),
      fresh_delivery_ms: m === null || this.afterMarkFresh === null ? null : r1(this.afterMarkFresh - m),
    };
  }

  /** Resolves when a record sent after the mark has been delivered, or after ms. */
  async waitFreshDelivery(ms: number): Promise<void> {
    if (this.afterMarkFresh !== null) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      this.markReplies.push(resolve);
    });
    clearTimeout(timer);
  }

  report(acked: IndexSet, highestAckedAtEnd: number, seconds: number): SubscriberReport {
    const start = this.coverage.start;
    const missing = undelivered(acked, this.received, start);
    return {
      nodes: [...this.nodes],
      start_index: start,
      through: this.coverage.through,
      delivered: this.delivered,
      delivered_per_s: Math.round(this.delivered / seconds),
      replies_with_entries: this.repliesWithEntries,
      lag_at_end: lagBehind(highestAckedAtEnd, this.throughAtWindowEnd),
      undelivered_after_drain: missing.missing,
      first_undelivered: missing.first,
      acked_before_start: ackedBeforeStart(acked, start),
      coverage_problems: this.coverage.problemCount,
      problems: this.coverage.problems.map(describeProblem),
      stream_errors: { ...this.streamErrors },
      resubscribes: this.resubscribes,
    };
  }

  close(): void {
    this.closed = true;
    this.stream?.cancel();
    this.stream = null;
    for (const stub of this.stubs.values()) stub.close();
  }

  private stub(i: number): RaftLogStub {
    let stub = this.stubs.get(i);
    if (stub === undefined) {
      stub = stubFor((this.endpoints[i] as { endpoint: string }).endpoint);
      this.stubs.set(i, stub);
    }
    return stub;
  }

  private open(): void {
    const endpoint = this.endpoints[this.on] as { endpoint: string; name?: string };
    this.nodes.push(endpoint.name ?? endpoint.endpoint);
    const through = this.coverage.through;
    const request =
      through === null
        ? { fromTail: true, view: 'SUBSCRIBE_VIEW_COMMANDS' as const }
        : { fromIndex: through + 1, view: 'SUBSCRIBE_VIEW_COMMANDS' as const };
    const stream = this.stub(this.on).subscribe(request);
    this.stream = stream;
    stream.on('data', (reply: SubscribeReply) => this.onReply(reply));
    const failed = (error: Partial<ServiceError> | Error): void => {
      if (this.closed || this.stream !== stream) return;
      this.stream = null;
      const kind = errorKind(error);
      this.streamErrors[kind] = (this.streamErrors[kind] ?? 0) + 1;
      void this.resubscribe();
    };
    stream.on('error', failed);
    stream.on('end', () => failed(new Error(`node ${endpoint.name ?? endpoint.endpoint} ended the stream`)));
  }

  private async resubscribe(): Promise<void> {
    await sleep(RESUBSCRIBE_PAUSE_MS);
    if (this.closed) return;
    this.on = (this.on + 1) % this.endpoints.length;
    this.resubscribes++;
    this.open();
  }

  private onReply(reply: SubscribeReply): void {
    const t = now();
    const indexes = reply.entries.map((e) => e.index);
    this.coverage.accept({ firstIndex: reply.firstIndex, lastIndex: reply.lastIndex, entryIndexes: indexes });
    const inWindow = t >= this.windowStart && t <= this.windowEnd;
    if (inWindow && reply.entries.length > 0) this.repliesWithEntries++;
    for (const entry of reply.entries) {
      this.received.add(entry.index);
      if (this.mark !== null) this.afterMarkAny ??= t;
      if (entry.kind !== 'LOG_ENTRY_KIND_APPEND') continue;
      const sent = sentTimeOf(entry.record);
      if (sent === null || sent > t) continue;
      if (this.mark !== null && this.afterMarkFresh === null && sent >= this.mark) {
        this.afterMarkFresh = t;
        for (const wake of this.markReplies.splice(0)) wake();
      }
      if (inWindow) {
        this.delivered++;
        this.e2e.push(t - sent);
      }
    }
    this.gotFirstReply();
  }
}

export interface GroupReport {
  readonly subscribers: number;
  readonly per_subscriber: SubscriberReport[];
  /** Per subscriber, in one list each, for reading at a glance. */
  readonly delivered_per_s: number[];
  readonly lag_at_end: number[];
  readonly undelivered_after_drain: number[];
  readonly coverage_problems: number[];
  /** Send → delivery of every record delivered in the window, all subscribers pooled. */
  readonly e2e_ms: LatencyStats;
  /** Time the drain took: until every subscriber had covered the highest acknowledged index (or the limit). */
  readonly drain_ms: number;
  /** Whether every subscriber covered the highest acknowledged index before the drain's limit. */
  readonly drained: boolean;
}

/** K subscribers spread round the nodes, the first on `firstOn`. */
export class SubscriberGroup {
  readonly members: Subscriber[];

  private constructor(members: Subscriber[]) {
    this.members = members;
  }

  static open(endpoints: readonly { endpoint: string; name?: string }[], count: number, firstOn = 0): SubscriberGroup {
    return new SubscriberGroup(Array.from({ length: count }, (_, k) => new Subscriber(endpoints, firstOn + k)));
  }

  /** Waits for every subscriber's first reply (a heartbeat comes within about a second on an idle log). */
  async waitReady(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
    try {
      const outcome = await Promise.race([Promise.all(this.members.map((s) => s.ready())), timeout]);
      if (outcome === 'timeout') {
        const waiting = this.members
          .filter((s) => s.coverage.start === null)
          .map((s) => `${s.nodes.join('->')} errors ${JSON.stringify(s.streamErrors)}`);
        throw new Error(`${waiting.length} of ${this.members.length} subscribers had no reply within ${ms} ms: ${waiting.join('; ')}`);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  startWindow(t: number): void {
    for (const s of this.members) s.startWindow(t);
  }

  endWindow(t: number): void {
    for (const s of this.members) s.endWindow(t);
  }

  markAt(t: number): void {
    for (const s of this.members) s.markAt(t);
  }

  /** Waits until every subscriber has covered `index`, for at most ms; returns how long it waited and whether all got there. */
  async drain(index: number, ms: number): Promise<{ ms: number; drained: boolean }> {
    const t0 = now();
    const done = (): boolean => this.members.every((s) => (s.coverage.through ?? 0) >= index);
    while (!done() && now() - t0 < ms) await sleep(20);
    return { ms: Math.round(now() - t0), drained: done() };
  }

  report(acked: IndexSet, highestAckedAtEnd: number, seconds: number, drain: { ms: number; drained: boolean }): GroupReport {
    const per = this.members.map((s) => s.report(acked, highestAckedAtEnd, seconds));
    return {
      subscribers: per.length,
      per_subscriber: per,
      delivered_per_s: per.map((p) => p.delivered_per_s),
      lag_at_end: per.map((p) => p.lag_at_end),
      undelivered_after_drain: per.map((p) => p.undelivered_after_drain),
      coverage_problems: per.map((p) => p.coverage_problems),
      e2e_ms: latencyStats(this.members.flatMap((s) => s.e2e)),
      drain_ms: drain.ms,
      drained: drain.drained,
    };
  }

  close(): void {
    for (const s of this.members) s.close();
  }
}
