/**
 * The readers of the subscribe workload, each through its own RaftLogClient
 * talking to the nodes directly (as the workload's writers do), so that a
 * kill or a partition of the node a stream is on hits it:
 * - a plain subscriber follows the log from index 1, its first stream pinned
 *   to one node; the library fails it over to the next node when that one
 *   dies, stalls or loses its leader, and resumes at the next index;
 * - a durable consumer follows the log from its committed position,
 *   commits its position every few entries, and "crashes" every few
 *   seconds (closes its subscription without a final commit, or drops its
 *   whole client mid-stream, in-flight commit included), then resumes;
 * - a poller reads every consumer's position (Consumers) now and then.
 * Every commit and poll goes into the history; every entry received, into
 * the subscriber's journal.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type LogSubscription, RaftLogClient, RaftLogCompactedError, RaftLogError, type SubscribedEntry } from '../../../src/client/index.js';
import type { SeededRandom } from '../../../src/raft/random.js';
import type { ProcessCluster } from '../../support/process-cluster.js';
import type { HistoryRecorder } from '../recorder.js';
import { type CrashKind, type SkipAfterReconnect, SubscriberJournal } from './subscriber-journal.js';
import { outcomeOfClientError } from './worker-pool.js';

/** A stream silent (or on a node that knows no leader) this long is given up for another node: the library's minimum. */
export const STALL_TIMEOUT_MS = 2_000;
/** A consumer crashes this long after it (re)started, at random within. */
export const CRASH_AFTER_MS = { min: 2_000, max: 6_000 } as const;
/** …and stays down this long. */
const DOWN_FOR_MS = { min: 200, max: 1_500 } as const;
/** A consumer commits its position after this many entries, at random within, each time. */
const COMMIT_EVERY = { min: 10, max: 100 } as const;
/** The poller asks for the consumers' positions this often, at random within. */
const POLL_EVERY_MS = { min: 300, max: 700 } as const;

/** Process numbers of the history for the consumers and the poller, apart from the writers'. */
export class ProcessNumbers {
  private next = 1_000_000;

  take(): number {
    return this.next++;
  }
}

export interface SubscriberContext {
  readonly cluster: ProcessCluster;
  readonly recorder: HistoryRecorder;
  /** The nodes the readers' first clients are made with: the founders (the clients learn of later members by following the membership). */
  readonly nodes: readonly string[];
  /** Deadline of a commit or a poll. */
  readonly callTimeoutMs: number;
  readonly processes: ProcessNumbers;
  readonly bug: SkipAfterReconnect | null;
}

const between = (random: SeededRandom, range: { readonly min: number; readonly max: number }) => range.min + random.next() * (range.max - range.min);

/** A client of every node in `nodes` (default: the founders), `first` first. */
function readerClient(context: SubscriberContext, first: string, deadlineMs: number, nodes = context.nodes): RaftLogClient {
  const order = [first, ...nodes.filter((id) => id !== first)];
  return new RaftLogClient({
    endpoints: order.map((id) => `${id}=${context.cluster.address(id)}`),
    deadlineMs,
    connectTimeoutMs: 500,
  });
}

/**
 * The nodes running now, or the founders when none is: what a consumer
 * process that restarts is configured with, as a deployment's list of the
 * cluster's nodes is kept up to date when nodes are replaced. Which nodes
 * run depends on when the nemesis struck, so a seed does not fix this choice.
 */
function runningNodes(context: SubscriberContext): readonly string[] {
  const running = [...context.cluster.addresses.keys()].filter((id) => context.cluster.isRunning(id));
  return running.length > 0 ? running : context.nodes;
}

function nodeAt(cluster: ProcessCluster, address: string): string | undefined {
  for (const [id, at] of cluster.addresses) if (at === address) return id;
  return undefined;
}

/** How a subscription's iteration ended. */
type IterationEnd =
  | { readonly kind: 'done' }
  | { readonly kind: 'compacted'; readonly fromIndex: number; readonly firstIndex: number }
  | { readonly kind: 'error'; readonly message: string };

/**
 * Hands each entry to `take` until the iteration ends or `take` says to
 * stop (false), and says how it ended.
 */
async function iterate(subscription: LogSubscription, take: (entry: SubscribedEntry) => Promise<boolean> | boolean): Promise<IterationEnd> {
  try {
    for (;;) {
      const next = await subscription.next();
      if (next.done === true) return { kind: 'done' };
      if (!(await take(next.value))) return { kind: 'done' };
    }
  } catch (error) {
    if (error instanceof RaftLogCompactedError) return { kind: 'compacted', fromIndex: error.fromIndex, firstIndex: error.firstIndex };
    return { kind: 'error', message: error instanceof RaftLogError ? `${error.codeName}: ${error.message}` : String(error) };
  }
}

/**
 * The index a subscription was due to hand out next when a node answered
 * that it compacted it: after what it covered. The error's own fromIndex is
 * the start its stream asked for, which is earlier when the node compacted
 * past the reader mid-stream; it stands only for a subscription that covered
 * nothing yet.
 */
function dueAfter(subscription: LogSubscription, reported: number): number {
  return subscription.coveredThrough > 0 ? subscription.coveredThrough + 1 : reported;
}

/** What the workload asks of every reader. */
export interface Reader {
  readonly journal: SubscriberJournal;
  /** Settles when the reader has stopped; never rejects. */
  readonly done: Promise<void>;
  /** The index the reader has covered so far (its current subscription's coveredThrough, or what it recorded). */
  covered(): number;
  /** No more crashes: keep reading until stopped. */
  drain(): void;
  stop(): void;
}

/** Follows the log from index 1, first on `node`. */
export class PlainSubscriber implements Reader {
  readonly journal: SubscriberJournal;
  readonly done: Promise<void>;
  private readonly client: RaftLogClient;
  private current: LogSubscription | null = null;
  private stopping = false;

  constructor(
    private readonly context: SubscriberContext,
    name: string,
    private readonly node: string,
    now: () => number,
  ) {
    this.journal = new SubscriberJournal(name, 'plain', null, node, now, context.bug);
    this.client = readerClient(context, node, context.callTimeoutMs);
    this.done = this.run();
  }

  covered(): number {
    return Math.max(this.current?.coveredThrough ?? 0, this.journal.lastIndex);
  }

  drain(): void {}

  stop(): void {
    this.stopping = true;
    void this.current?.close().catch(() => undefined);
  }

  private async run(): Promise<void> {
    let from = 1;
    try {
      while (!this.stopping) {
        this.journal.start(this.node, from);
        const subscription = this.client.subscribe({ from, endpoint: this.context.cluster.address(this.node), stallTimeoutMs: STALL_TIMEOUT_MS });
        this.current = subscription;
        if (this.stopping) void subscription.close();
        const end = await iterate(subscription, (entry) => {
          this.journal.deliver(entry, subscription);
          return !this.stopping;
        });
        await subscription.close().catch(() => undefined);
        if (end.kind === 'compacted') {
          // The node compacted the entries due next (at the start, or mid-stream past a reader that lagged): go on after the hole, saying so.
          this.journal.compacted(dueAfter(subscription, end.fromIndex), end.firstIndex, end.fromIndex);
          from = end.firstIndex;
          continue;
        }
        if (end.kind === 'error') this.journal.error(end.message);
        return;
      }
    } catch (error) {
      this.journal.error(`the subscriber failed: ${(error as Error).message}`);
    } finally {
      this.journal.stop();
      this.client.close();
    }
  }
}

/** How one subscription of a durable consumer ended. */
type SegmentEnd = { readonly kind: 'crashed'; readonly how: CrashKind } | { readonly kind: 'compacted' } | { readonly kind: 'stopped' };

/** After a compacted start, before the next try: the commit that moved the position past the hole may have failed. */
const AFTER_COMPACTED_MS = 200;

/**
 * A durable consumer: resumes after its committed position, commits every
 * few entries, and crashes now and then until drained.
 */
export class DurableConsumer implements Reader {
  readonly journal: SubscriberJournal;
  readonly done: Promise<void>;
  private client: RaftLogClient;
  /** The subscription that is reading now; null between a crash and the resume. */
  private current: LogSubscription | null = null;
  private stopping = false;
  private draining = false;
  private crashTimer: NodeJS.Timeout | null = null;
  /** Cuts a crash's down time short once draining starts. */
  private readonly wakeUp = new AbortController();
  private process: number;
  /** The last position this consumer committed, as the cluster answered; 0 before its first commit. */
  private committed = 0;
  /** The last index it recorded in its current subscription. */
  private segmentLast = 0;

  constructor(
    private readonly context: SubscriberContext,
    name: string,
    readonly consumer: string,
    private readonly random: SeededRandom,
    now: () => number,
  ) {
    const first = context.nodes[random.nextInt(context.nodes.length)] as string;
    this.journal = new SubscriberJournal(name, 'consumer', consumer, first, now, context.bug);
    this.client = readerClient(context, first, context.callTimeoutMs);
    this.process = context.processes.take();
    this.done = this.run(first);
  }

  covered(): number {
    return this.current?.coveredThrough ?? 0;
  }

  drain(): void {
    this.draining = true;
    if (this.crashTimer !== null) clearTimeout(this.crashTimer);
    this.crashTimer = null;
    this.wakeUp.abort();
  }

  stop(): void {
    this.stopping = true;
    this.drain();
    void this.current?.close().catch(() => undefined);
  }

  private async run(first: string): Promise<void> {
    let node = first;
    try {
      while (!this.stopping) {
        const end = await this.segment(node);
        if (end.kind === 'stopped') break;
        if (end.kind === 'crashed') {
          if (!this.draining) await sleep(between(this.random, DOWN_FOR_MS), undefined, { signal: this.wakeUp.signal }).catch(() => undefined);
        } else {
          await sleep(AFTER_COMPACTED_MS);
        }
        // Resumes on a node running now: with the membership nemesis, the founders may all be gone.
        const running = runningNodes(this.context);
        node = running[this.random.nextInt(running.length)] as string;
        // The restarted process is configured with the nodes running now.
        if (end.kind === 'crashed' && end.how === 'drop-client') this.client = readerClient(this.context, node, this.context.callTimeoutMs, running);
      }
      // The last word: what it processed is committed, so that a later subscription would start after it.
      if (this.segmentLast > this.committed) await this.commit(this.segmentLast);
    } catch (error) {
      this.journal.error(`the consumer failed: ${(error as Error).message}`);
    } finally {
      if (this.crashTimer !== null) clearTimeout(this.crashTimer);
      this.journal.stop();
      this.client.close();
    }
  }

  /** One subscription, from its start to a crash, a stop, or a compacted start (the position is then moved past the hole). */
  private async segment(node: string): Promise<SegmentEnd> {
    this.segmentLast = 0;
    this.journal.start(node, null);
    const client = this.client;
    const subscription = client.subscribe({
      consumer: this.consumer,
      from: 1,
      endpoint: this.context.cluster.address(node),
      stallTimeoutMs: STALL_TIMEOUT_MS,
    });
    this.current = subscription;
    // A closure sets it, so it lives in an object: a plain variable would look constant to the type checker.
    const state: { crashed: CrashKind | null } = { crashed: null };
    if (!this.draining) {
      const how: CrashKind = this.random.chance(0.5) ? 'close' : 'drop-client';
      this.crashTimer = setTimeout(
        () => {
          this.crashTimer = null;
          state.crashed = how;
          this.journal.crash(how);
          if (how === 'close') void subscription.close().catch(() => undefined);
          else client.close();
        },
        between(this.random, CRASH_AFTER_MS),
      );
    }
    if (this.stopping) void subscription.close();
    let commitAfter = Math.round(between(this.random, COMMIT_EVERY));
    const end = await iterate(subscription, async (entry) => {
      // A crashed consumer processes nothing more, whatever the library still hands out.
      if (state.crashed !== null || this.stopping) return false;
      if (!this.journal.deliver(entry, subscription)) return true;
      this.segmentLast = entry.index;
      if (--commitAfter <= 0) {
        commitAfter = Math.round(between(this.random, COMMIT_EVERY));
        await this.commit(entry.index);
      }
      return state.crashed === null && !this.stopping;
    });
    if (this.crashTimer !== null) clearTimeout(this.crashTimer);
    this.crashTimer = null;
    this.current = null;
    await subscription.close().catch(() => undefined);
    if (state.crashed !== null) return { kind: 'crashed', how: state.crashed };
    if (end.kind === 'compacted') {
      // A consumer subscription asks for its committed position + 1, which the error does not know (it gives the request's fallback `from`).
      const due = subscription.coveredThrough > 0 ? subscription.coveredThrough + 1 : this.committed + 1;
      this.journal.compacted(due, end.firstIndex, end.fromIndex);
      // Kafka's auto.offset.reset=earliest: the consumer goes on from the first entry that still exists.
      await this.commit(end.firstIndex - 1);
      return this.stopping ? { kind: 'stopped' } : { kind: 'compacted' };
    }
    if (end.kind === 'error') this.journal.error(end.message);
    return { kind: 'stopped' };
  }

  /** Commits `position` and records the call in the history. */
  private async commit(position: number): Promise<void> {
    const { recorder, cluster } = this.context;
    const client = this.client;
    const invocation = recorder.invoke(this.process, 'commit', this.consumer, position, client.knownLeader?.node ?? this.journal.pinnedTo);
    try {
      const result = await client.commitPosition(this.consumer, position);
      this.committed = Math.max(this.committed, result.position);
      const node = nodeAt(cluster, result.endpoint);
      recorder.complete(invocation, 'ok', result.position, { index: result.entry.index, ...(node === undefined ? {} : { node }) });
    } catch (error) {
      const outcome = outcomeOfClientError(error, position);
      recorder.complete(invocation, outcome.type, position, { error: outcome.error });
      // As in Jepsen: a process whose call may still take effect is never heard from again.
      if (outcome.type === 'info') this.process = this.context.processes.take();
    }
  }
}

/** Reads every consumer's position (Consumers, linearizable) now and then, and once more when stopped. */
export class ConsumerPoller {
  readonly done: Promise<void>;
  private readonly client: RaftLogClient;
  private stopping = false;
  private readonly wake = new AbortController();
  private process: number;
  polls = 0;

  constructor(
    private readonly context: SubscriberContext,
    private readonly random: SeededRandom,
  ) {
    this.client = readerClient(context, context.nodes[0] as string, context.callTimeoutMs);
    this.process = context.processes.take();
    this.done = this.run();
  }

  stop(): void {
    this.stopping = true;
    this.wake.abort();
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopping) {
        await this.poll();
        await sleep(between(this.random, POLL_EVERY_MS), undefined, { signal: this.wake.signal }).catch(() => undefined);
      }
      await this.poll();
    } finally {
      this.client.close();
    }
  }

  private async poll(): Promise<void> {
    const { recorder, cluster } = this.context;
    const invocation = recorder.invoke(this.process, 'consumers', null, null, this.client.knownLeader?.node ?? (this.context.nodes[0] as string));
    this.polls++;
    try {
      const list = await this.client.consumers();
      const positions = Object.fromEntries(list.consumers.map((c) => [c.name, c.position]));
      const node = nodeAt(cluster, list.endpoint);
      recorder.complete(invocation, 'ok', positions, node === undefined ? {} : { node });
    } catch (error) {
      // A read changes nothing: whatever went wrong, it took no effect.
      recorder.complete(invocation, 'fail', null, { error: outcomeOfClientError(error, null).error });
    }
  }
}
