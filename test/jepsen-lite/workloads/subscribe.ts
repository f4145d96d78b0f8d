/**
 * The subscribe workload (Jepsen's and Maelstrom's Kafka workloads, for one
 * log): writers append unique integers with exactly-once retries, as the
 * append workload with --retries does, while plain subscribers and durable
 * consumers read the log (subscribers.ts). Once the writers have stopped and
 * every fault is healed, the readers stop crashing and catch up with the
 * last acknowledged append (bounded), and are stopped. What each received
 * is in its journal; the subscription checker compares the journals with
 * the committed log and the history.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SeededRandom } from '../../../src/raft/random.js';
import { runAppendWorkload } from './append.js';
import { type PlantedBug, SkipAfterReconnect, type SubscriberMode, type SubscriberRecord } from './subscriber-journal.js';
import { ConsumerPoller, DurableConsumer, PlainSubscriber, ProcessNumbers, type Reader, type SubscriberContext } from './subscribers.js';
import type { WorkloadOptions } from './worker-pool.js';

export interface SubscribeOptions extends WorkloadOptions {
  /** Plain subscribers from index 1; the i-th is pinned first to founder i (round robin). */
  readonly subscribers: number;
  /** Durable consumers that crash and resume. */
  readonly consumers: number;
  /** The founding members: the readers' clients know these. */
  readonly founders: readonly string[];
  readonly bug: PlantedBug | null;
  /** Settles once every fault is healed: then the readers stop crashing and catch up. */
  readonly healed: Promise<void>;
  /** How long the readers have, after the heal, to reach the last acknowledged append. */
  readonly drainTimeoutMs: number;
  /** Aborted when the run ends early: everything stops at once. */
  readonly abort: AbortSignal;
}

/** One reader's figures, from its journal. */
export interface ReaderSummary {
  readonly name: string;
  readonly mode: SubscriberMode;
  readonly consumer: string | null;
  readonly pinnedTo: string;
  /** Entries recorded (a consumer's redeliveries after a resume included). */
  readonly delivered: number;
  /** Entries recorded at an index it had recorded before (a consumer after a resume). */
  readonly redelivered: number;
  readonly lastIndex: number;
  /** Streams the library moved to after a failed one. */
  readonly reconnects: number;
  readonly crashes: number;
  /** Subscriptions opened after the first (resumes after crashes, restarts after compacted starts). */
  readonly resumes: number;
  readonly compactedJumps: number;
  readonly errors: number;
}

export interface SubscriptionReport {
  readonly readers: readonly ReaderSummary[];
  /** The highest acknowledged index when the writers stopped: every reader had to get there. */
  readonly drainTarget: number;
  /** How long the readers took to get there after the heal (ms), or the bound if some did not. */
  readonly drainMs: number;
  readonly notCaughtUp: readonly string[];
  readonly polls: number;
  /** With a planted bug: its victim and how many entries it dropped. */
  readonly plantedBug: { readonly bug: PlantedBug; readonly victim: string | null; readonly dropped: number } | null;
}

export interface SubscribeOutcome {
  readonly records: readonly SubscriberRecord[];
  readonly report: SubscriptionReport;
}

const DRAIN_POLL_MS = 100;

export async function runSubscribeWorkload(options: SubscribeOptions): Promise<SubscribeOutcome> {
  const bug = options.bug === 'skip-after-reconnect' ? new SkipAfterReconnect() : null;
  const context: SubscriberContext = {
    cluster: options.cluster,
    recorder: options.recorder,
    nodes: options.founders,
    callTimeoutMs: options.opTimeoutMs * 2,
    processes: new ProcessNumbers(),
    bug,
  };
  const now = () => options.recorder.now();
  const readers: Reader[] = [];
  for (let i = 0; i < options.subscribers; i++) {
    readers.push(new PlainSubscriber(context, `s${i + 1}`, options.founders[i % options.founders.length] as string, now));
  }
  for (let i = 0; i < options.consumers; i++) {
    readers.push(new DurableConsumer(context, `c${i + 1}`, `jepsen-consumer-${i + 1}`, new SeededRandom(options.seed * 7717 + i), now));
  }
  const poller = new ConsumerPoller(context, new SeededRandom(options.seed * 7907));
  const stopAll = () => {
    for (const reader of readers) reader.stop();
    poller.stop();
  };
  options.abort.addEventListener('abort', stopAll, { once: true });
  let drainTarget = 0;
  let drainMs = 0;
  let notCaughtUp: string[] = [];
  try {
    await runAppendWorkload({ ...options, retries: true });
    await Promise.race([options.healed, new Promise((resolve) => options.abort.addEventListener('abort', resolve, { once: true }))]);
    // A reduce, not Math.max(...): a long run acknowledges more appends than a call takes arguments.
    drainTarget = options.recorder
      .clientEvents()
      .reduce((highest, e) => (e.f === 'append' && e.type === 'ok' && e.index !== undefined ? Math.max(highest, e.index) : highest), 0);
    for (const reader of readers) reader.drain();
    const drainStarted = Date.now();
    const settled = new Set<Reader>();
    for (const reader of readers) void reader.done.then(() => settled.add(reader));
    const behind = () => readers.filter((r) => !settled.has(r) && r.covered() < drainTarget);
    while (behind().length > 0 && Date.now() - drainStarted < options.drainTimeoutMs && !options.abort.aborted) await sleep(DRAIN_POLL_MS);
    drainMs = Date.now() - drainStarted;
    notCaughtUp = behind().map((r) => `${r.journal.name} at ${r.covered()}`);
  } finally {
    stopAll();
    await Promise.all([...readers.map((r) => r.done), poller.done]);
    options.abort.removeEventListener('abort', stopAll);
  }
  const records = readers.map((r) => r.journal.record());
  return {
    records,
    report: {
      readers: records.map(summarize),
      drainTarget,
      drainMs,
      notCaughtUp,
      polls: poller.polls,
      plantedBug: bug === null || options.bug === null ? null : { bug: options.bug, victim: bug.victim, dropped: bug.dropped },
    },
  };
}

function summarize(record: SubscriberRecord): ReaderSummary {
  const seen = new Set<number>();
  let delivered = 0;
  let redelivered = 0;
  let lastIndex = 0;
  let reconnects = 0;
  let crashes = 0;
  let starts = 0;
  let compactedJumps = 0;
  let errors = 0;
  for (const event of record.events) {
    switch (event.type) {
      case 'entry':
        delivered++;
        if (seen.has(event.index)) redelivered++;
        seen.add(event.index);
        lastIndex = Math.max(lastIndex, event.index);
        break;
      case 'reconnect':
        reconnects += event.reconnects;
        break;
      case 'crash':
        crashes++;
        break;
      case 'start':
        starts++;
        break;
      case 'compacted':
        compactedJumps++;
        break;
      case 'error':
        errors++;
        break;
      default:
        break;
    }
  }
  return {
    name: record.name,
    mode: record.mode,
    consumer: record.consumer,
    pinnedTo: record.pinnedTo,
    delivered,
    redelivered,
    lastIndex,
    reconnects,
    crashes,
    resumes: Math.max(0, starts - 1),
    compactedJumps,
    errors,
  };
}

/** One line per reader, for the summary. */
export function formatSubscriptions(report: SubscriptionReport): string[] {
  const lines = report.readers.map((r) => {
    const where = r.mode === 'plain' ? `plain, first on ${r.pinnedTo}` : `consumer ${r.consumer}`;
    const again = r.mode === 'consumer' ? ` (${r.redelivered} again after ${r.crashes} crashes, ${r.resumes} resumes)` : '';
    const extra = [r.compactedJumps > 0 ? `${r.compactedJumps} compacted starts` : '', r.errors > 0 ? `${r.errors} errors` : ''].filter(
      (s) => s !== '',
    );
    return `${r.name} (${where}): ${r.delivered} entries up to ${r.lastIndex}${again}, ${r.reconnects} reconnects${extra.length > 0 ? `, ${extra.join(', ')}` : ''}`;
  });
  const caughtUp =
    report.notCaughtUp.length === 0
      ? `every reader reached index ${report.drainTarget} (the last acknowledged append) ${(report.drainMs / 1000).toFixed(1)} s after the heal`
      : `not caught up with index ${report.drainTarget} within ${(report.drainMs / 1000).toFixed(1)} s: ${report.notCaughtUp.join(', ')}`;
  lines.push(`${caughtUp}; ${report.polls} consumer polls`);
  if (report.plantedBug !== null) {
    const { bug, victim, dropped } = report.plantedBug;
    lines.push(`planted bug ${bug}: ${victim === null ? 'no subscriber reconnected, so it never struck' : `${victim} dropped ${dropped} entries`}`);
  }
  return lines;
}
