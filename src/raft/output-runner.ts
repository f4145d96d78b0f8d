import type { Entry, Message, RaftOutput, ReadFailed, ReadReady } from './types.js';

/** What a caller does with the core's output; the runner decides when. */
export interface OutputEffects {
  /**
   * Starts the durable write of `output.snapshot`, `output.hardState` and
   * `output.entries` (only called when there is one of them) and calls `done`
   * once it is durable: at once, or later. Writes must complete in the order
   * they were started. A snapshot's write also restores the state machine
   * from it before `done`.
   */
  write(output: RaftOutput, done: () => void): void;
  /** Hands messages to the transport. `early`: a leader's appends sent while its own write is in progress. */
  send(messages: readonly Message[], when: 'early' | 'after-write'): void;
  /** Applies committed entries to the state machine, in log order. */
  apply(entries: readonly Entry[]): void;
  /** Serves the reads the core released (the state machine has applied their index) and fails the others. */
  reads(ready: readonly ReadReady[], failed: readonly ReadFailed[]): void;
  /** An output was just taken, before anything of it is carried out (role changes, new members' links). */
  taken?(output: RaftOutput): void;
}

/** The part of RaftCore the runner drives. */
export interface OutputSource {
  hasOutput(): boolean;
  takeOutput(): RaftOutput;
  persisted(output: RaftOutput): void;
}

export interface OutputRunnerOptions {
  /**
   * Outputs taken whose writes have not completed, at most. Past it the
   * runner takes no more output: the core keeps gathering work into the next
   * one. 1 is the classic loop (one write at a time).
   */
  readonly maxWritesInProgress: number;
}

interface InProgress {
  readonly output: RaftOutput;
  written: boolean;
}

/**
 * Carries out the core's output in the order its contract asks (see
 * RaftOutput) for every caller: the node, the simulator and the test
 * clusters, so that tests explore the order production uses.
 *
 * Several writes may be in progress: an output is taken while earlier writes
 * are on their way (etcd's asynchronous storage writes). Its early messages
 * go out at once; its committed entries are applied and its reads served at
 * once, after the earlier outputs' (but never before an earlier snapshot is
 * installed); its other messages, which may report what its write stores, go
 * out only when its write and every earlier one completed, and then the core
 * hears that the write is persisted.
 */
export class OutputRunner {
  /** Outputs not yet reported persisted, oldest first. */
  private readonly writes: InProgress[] = [];
  /** Outputs whose committed entries and reads are not carried out yet (they wait behind a snapshot being installed). */
  private readonly applies: InProgress[] = [];
  private stopped = false;

  constructor(
    private readonly core: OutputSource,
    private readonly effects: OutputEffects,
    private readonly options: OutputRunnerOptions,
  ) {
    if (!Number.isInteger(options.maxWritesInProgress) || options.maxWritesInProgress < 1) {
      throw new Error(`maxWritesInProgress must be a positive integer, got ${options.maxWritesInProgress}`);
    }
  }

  /** Takes and carries out outputs while the core has some and the writes in progress allow. Returns how many it took. */
  run(): number {
    let taken = 0;
    while (!this.stopped && this.writes.length < this.options.maxWritesInProgress && this.core.hasOutput()) {
      this.carryOut(this.core.takeOutput());
      taken++;
    }
    return taken;
  }

  /** Writes taken and not yet reported persisted. */
  writesInProgress(): number {
    return this.writes.length;
  }

  /** Stops carrying anything out: completions that arrive later are ignored (the process is going away). */
  stop(): void {
    this.stopped = true;
  }

  private carryOut(output: RaftOutput): void {
    this.effects.taken?.(output);
    if (output.earlyMessages.length > 0) this.effects.send(output.earlyMessages, 'early');
    const write: InProgress = { output, written: false };
    this.writes.push(write);
    this.applies.push(write);
    if (output.snapshot !== null || output.hardState !== null || output.entries.length > 0) {
      this.effects.write(output, () => {
        write.written = true;
        this.release();
      });
    } else {
      write.written = true;
    }
    this.release();
  }

  /** Carries out what the completed writes allow, in order: applies and reads, then messages and persisted(). */
  private release(): void {
    if (this.stopped) return;
    while (this.applies.length > 0) {
      const next = this.applies[0] as InProgress;
      if (next.output.snapshot !== null && !next.written) break;
      this.applies.shift();
      const { committed, readsReady, readsFailed } = next.output;
      if (committed.length > 0) this.effects.apply(committed);
      if (readsReady.length > 0 || readsFailed.length > 0) this.effects.reads(readsReady, readsFailed);
    }
    while (this.writes.length > 0 && (this.writes[0] as InProgress).written) {
      // Its applies are done: only an earlier snapshot not yet written holds applies back, and it would be first here.
      const done = this.writes.shift() as InProgress;
      if (done.output.messages.length > 0) this.effects.send(done.output.messages, 'after-write');
      this.core.persisted(done.output);
    }
  }
}
