/**
 * A node's one ordered disk queue: every LevelDB write of the node (the
 * core's outputs, snapshot installs, recording its own snapshots and
 * compacting) runs here, one at a time, in the order queued, since the log
 * refuses overlapping writes and the core needs its writes to complete in
 * the order its outputs were taken. Plain output saves that queue up while
 * the disk is busy go out together as one batch: one fsync for all of them.
 */
import type { Entry, HardState } from '../raft/types.js';

/** What an output's plain save stores (no snapshot): as LevelLogStorage.save takes it. */
export interface LogWrite {
  readonly hardState: HardState | null;
  /** Replace the log from entries[0].index onward. */
  readonly entries: readonly Entry[];
}

/**
 * One write that leaves the log as `writes` saved one after the other would:
 * the last hard state given, and each write's entries laid over the earlier
 * ones (a write starting at index i replaces everything from i onward; one
 * starting at or below the merged entries' first index replaces them all,
 * and storage then replaces its own entries from there). The sync rule of
 * save() stays right on the merge: it skips the fsync only when nothing but
 * the commit index changed against what is stored, which holds for the merge
 * only if it held for every part (a term only grows, and a vote once given in
 * a term stays, so a later part cannot undo an earlier part's change).
 */
export function mergeWrites(writes: readonly LogWrite[]): LogWrite {
  if (writes.length === 1) return writes[0] as LogWrite;
  let hardState: HardState | null = null;
  let entries: Entry[] = [];
  for (const write of writes) {
    if (write.hardState !== null) hardState = write.hardState;
    const first = write.entries[0];
    if (first === undefined) continue;
    const start = entries[0]?.index;
    if (start === undefined || first.index <= start) {
      entries = [...write.entries];
      continue;
    }
    const next = start + entries.length;
    if (first.index > next) {
      throw new Error(`cannot merge writes: entries from ${first.index} follow merged entries ${start}..${next - 1}, leaving a gap`);
    }
    entries.length = first.index - start;
    for (const entry of write.entries) entries.push(entry);
  }
  return { hardState, entries };
}

export interface WriteQueueOptions {
  /** Stores one plain write (possibly several merged) durably. */
  readonly save: (write: LogWrite) => Promise<void>;
  /** After each completed write, once the `done` of everything it held has run. */
  readonly onWritten: () => void;
  /** A write failed (or what ran after it threw): nothing queued runs any more. */
  readonly onFailed: (error: unknown, what: string) => void;
  /** After each plain save completed: how long the write took (seconds) and how many queued saves it merged. */
  readonly onSaved?: (seconds: number, saves: number) => void;
}

type Job =
  | { readonly kind: 'save'; readonly write: LogWrite; readonly done: () => void }
  | { readonly kind: 'flush'; readonly what: string; readonly run: () => Promise<void> }
  | { readonly kind: 'task'; readonly what: string; readonly run: () => Promise<void>; readonly done: () => void };

interface Batch {
  readonly run: () => Promise<void>;
  readonly dones: readonly (() => void)[];
  readonly describe: () => string;
  /** Plain saves merged into it (0: a task or a flush). */
  readonly saves: number;
  readonly flush: boolean;
}

export class WriteQueue {
  private readonly jobs: Job[] = [];
  private busy = false;
  /** What the batch being written holds: flushes only, or anything else. */
  private running: 'flush' | 'other' | null = null;
  private failedFlag = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: WriteQueueOptions) {}

  /** Queues a plain save; `done` runs once it is durable. Saves queued together may share one batch. */
  save(write: LogWrite, done: () => void): void {
    this.push({ kind: 'save', write, done });
  }

  /** Queues a write of another kind (a snapshot install, a snapshot record), never merged with anything. */
  task(what: string, run: () => Promise<void>, done: () => void = () => undefined): void {
    this.push({ kind: 'task', what, run, done });
  }

  /**
   * Queues the hand-over of writes already durable elsewhere (the log's
   * journal): nothing waits for it. One still queued covers the next, so
   * it is queued once.
   */
  flush(what: string, run: () => Promise<void>): void {
    if (this.jobs[this.jobs.length - 1]?.kind === 'flush') return;
    this.push({ kind: 'flush', what, run });
  }

  /** Nothing but flushes is queued or running: a write may be made durable beside the queue, ahead of them. */
  holdsOnlyFlushes(): boolean {
    return !this.failedFlag && this.running !== 'other' && this.jobs.every((job) => job.kind === 'flush');
  }

  /** A write failed: the queue runs nothing more. */
  get failed(): boolean {
    return this.failedFlag;
  }

  /** Jobs queued and not started. */
  pending(): number {
    return this.jobs.length;
  }

  /** Resolves once every job queued so far has completed, or the queue failed. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private push(job: Job): void {
    if (this.failedFlag) return;
    this.jobs.push(job);
    if (this.busy) return;
    this.busy = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    for (;;) {
      let batch: Batch | null = null;
      try {
        batch = this.nextBatch();
        if (batch === null) break;
        const started = performance.now();
        this.running = batch.flush ? 'flush' : 'other';
        await batch.run();
        this.running = null;
        if (batch.saves > 0) this.options.onSaved?.((performance.now() - started) / 1000, batch.saves);
        for (const done of batch.dones) done();
        this.options.onWritten();
      } catch (error) {
        // Later writes may depend on this one (entries after its entries, a record after its save): none runs.
        this.failedFlag = true;
        this.jobs.length = 0;
        this.options.onFailed(error, batch?.describe() ?? 'merging the queued log writes');
        break;
      }
    }
    this.busy = false;
    this.running = null;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** The next job, or every plain save queued at the head merged into one. */
  private nextBatch(): Batch | null {
    const head = this.jobs[0];
    if (head === undefined || this.failedFlag) return null;
    if (head.kind === 'task') {
      this.jobs.shift();
      return { run: head.run, dones: [head.done], describe: () => head.what, saves: 0, flush: false };
    }
    if (head.kind === 'flush') {
      this.jobs.shift();
      return { run: head.run, dones: [], describe: () => head.what, saves: 0, flush: true };
    }
    let count = 1;
    while (this.jobs[count]?.kind === 'save') count++;
    const saves = this.jobs.splice(0, count) as Extract<Job, { kind: 'save' }>[];
    const merged = mergeWrites(saves.map((job) => job.write));
    return {
      run: () => this.options.save(merged),
      dones: saves.map((job) => job.done),
      describe: () => describeSave(merged, saves.length),
      saves: saves.length,
      flush: false,
    };
  }
}

function describeSave(write: LogWrite, parts: number): string {
  const first = write.entries[0];
  const entries = first === undefined ? 'no entries' : `entries ${first.index}..${first.index + write.entries.length - 1}`;
  const hardState = write.hardState === null ? 'no hard state' : `hard state term ${write.hardState.term} commit ${write.hardState.commit}`;
  return `save of ${parts} output${parts === 1 ? '' : 's'} (${entries}, ${hardState})`;
}
