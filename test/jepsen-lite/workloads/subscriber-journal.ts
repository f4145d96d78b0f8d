/**
 * What one subscriber of the subscribe workload received, and what happened
 * to its subscriptions: every entry handed to it (index, term, kind, record),
 * each start or resume, each reconnect the client library made, each
 * simulated crash. Written as `subscribers/<name>.jsonl` in the run's
 * output folder, one event per line, times in nanoseconds on the history's
 * clock; the subscription checker reads it in memory.
 *
 * The planted bug (`--bug skip-after-reconnect`) lives here, in the test
 * code: the first subscriber to see a reconnect becomes its victim, and from
 * then on drops the first entry it is handed after each reconnect, as a
 * subscriber that resumed one index too far would.
 */
import type { LogSubscription, SubscribedEntry } from '../../../src/client/index.js';
import { WIRE_KINDS } from '../../../src/client/reply-decoders.js';

export type SubscriberMode = 'plain' | 'consumer';

/** The planted bugs of the subscribe workload (only one so far). */
export const PLANTED_BUGS = ['skip-after-reconnect'] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number];

export type JournalEvent =
  /**
   * A subscription opened: the first (segment 1), or a consumer's resume
   * after a crash, or a plain subscriber's restart after a compacted start.
   * `from`: the index asked for (a plain subscriber); a consumer starts after
   * its committed position, which the checker works out from the history.
   */
  | { readonly type: 'start'; readonly time: number; readonly segment: number; readonly node: string; readonly from: number | null }
  /** An entry handed to the subscriber, as the final log's entries are described (FinalEntry). */
  | {
      readonly type: 'entry';
      readonly time: number;
      readonly index: number;
      readonly term: number;
      readonly kind: string;
      readonly record: string;
      readonly key: string;
      /** A Put's value or a CompareAndSwap's new value, as text; "" otherwise. */
      readonly value: string;
      /** The node whose stream delivered it. */
      readonly node: string | null;
    }
  /** The library moved to another stream (`reconnects` more than before) since the last entry. */
  | {
      readonly type: 'reconnect';
      readonly time: number;
      readonly from: string | null;
      readonly to: string | null;
      readonly reconnects: number;
      readonly after: number;
    }
  /** A consumer "crashed": closed its subscription without committing, or dropped its whole client. */
  | { readonly type: 'crash'; readonly time: number; readonly how: CrashKind; readonly after: number }
  /**
   * The node no longer held the index due (OUT_OF_RANGE, at the start or
   * mid-stream when it compacted past a reader that lagged): the subscriber
   * goes on from `firstIndex`. `fromIndex` is the index that was due (the
   * subscription's coveredThrough + 1); `reportedFromIndex`, what the
   * library's RaftLogCompactedError said, when that differs.
   */
  | {
      readonly type: 'compacted';
      readonly time: number;
      readonly fromIndex: number;
      readonly firstIndex: number;
      readonly reportedFromIndex?: number;
    }
  /** The planted bug dropped the entry at `index` (kept in the file for people; the checker must find the hole without it). */
  | { readonly type: 'bug-dropped'; readonly time: number; readonly index: number }
  /** The subscription ended with an error other than a compacted start. */
  | { readonly type: 'error'; readonly time: number; readonly message: string }
  /** The workload stopped the subscriber. */
  | { readonly type: 'stop'; readonly time: number; readonly after: number };

export type CrashKind = 'close' | 'drop-client';

/** A subscriber's whole journal. */
export interface SubscriberRecord {
  readonly name: string;
  readonly mode: SubscriberMode;
  /** The durable consumer's name; null for a plain subscriber. */
  readonly consumer: string | null;
  /** The node its first subscription was pinned to. */
  readonly pinnedTo: string;
  readonly events: readonly JournalEvent[];
}

/** Chooses the planted bug's victim (the first subscriber to see a reconnect) and counts what it dropped. */
export class SkipAfterReconnect {
  victim: string | null = null;
  dropped = 0;

  /** Whether `name` drops the entry it is handed after a reconnect. */
  strikes(name: string): boolean {
    this.victim ??= name;
    return this.victim === name;
  }
}

export class SubscriberJournal {
  private readonly events: JournalEvent[] = [];
  private segment = 0;
  private seenReconnects = 0;
  private lastNode: string | null = null;
  private last = 0;

  constructor(
    readonly name: string,
    readonly mode: SubscriberMode,
    readonly consumer: string | null,
    readonly pinnedTo: string,
    private readonly now: () => number,
    private readonly bug: SkipAfterReconnect | null,
  ) {}

  /** The highest index recorded. */
  get lastIndex(): number {
    return this.last;
  }

  /** Starts a segment; call before subscribe(), so that commits made before it count as visible to it. */
  start(node: string, from: number | null): void {
    this.segment++;
    this.seenReconnects = 0;
    this.lastNode = node;
    this.events.push({ type: 'start', time: this.now(), segment: this.segment, node, from });
  }

  /**
   * Records an entry the subscription handed out, after a reconnect event if
   * the library reconnected since the last one. False when the planted bug
   * dropped it: the subscriber then acts as if it never saw it.
   */
  deliver(entry: SubscribedEntry, subscription: Pick<LogSubscription, 'node' | 'reconnects'>): boolean {
    const node = subscription.node;
    if (subscription.reconnects > this.seenReconnects) {
      this.events.push({
        type: 'reconnect',
        time: this.now(),
        from: this.lastNode,
        to: node,
        reconnects: subscription.reconnects - this.seenReconnects,
        after: this.last,
      });
      this.seenReconnects = subscription.reconnects;
      if (this.bug?.strikes(this.name) === true) {
        this.bug.dropped++;
        this.events.push({ type: 'bug-dropped', time: this.now(), index: entry.index });
        return false;
      }
    }
    this.lastNode = node;
    this.last = Math.max(this.last, entry.index);
    this.events.push({
      type: 'entry',
      time: this.now(),
      index: entry.index,
      term: entry.term,
      kind: WIRE_KINDS[entry.kind] ?? entry.kind,
      record: entry.record === null ? '' : Buffer.from(entry.record).toString('utf8'),
      key: entry.key === null ? '' : Buffer.from(entry.key).toString('utf8'),
      value: entry.value === null ? '' : Buffer.from(entry.value).toString('utf8'),
      node,
    });
    return true;
  }

  crash(how: CrashKind): void {
    this.events.push({ type: 'crash', time: this.now(), how, after: this.last });
  }

  compacted(fromIndex: number, firstIndex: number, reportedFromIndex = fromIndex): void {
    this.events.push({
      type: 'compacted',
      time: this.now(),
      fromIndex,
      firstIndex,
      ...(reportedFromIndex === fromIndex ? {} : { reportedFromIndex }),
    });
  }

  error(message: string): void {
    this.events.push({ type: 'error', time: this.now(), message });
  }

  stop(): void {
    this.events.push({ type: 'stop', time: this.now(), after: this.last });
  }

  record(): SubscriberRecord {
    return { name: this.name, mode: this.mode, consumer: this.consumer, pinnedTo: this.pinnedTo, events: [...this.events] };
  }
}

/** A journal as JSON lines: a header line with who it is, then one event per line. */
export function formatJournal(record: SubscriberRecord): string {
  const header = { subscriber: record.name, mode: record.mode, consumer: record.consumer, pinnedTo: record.pinnedTo };
  return [header, ...record.events].map((line) => JSON.stringify(line)).join('\n') + '\n';
}
