/**
 * Reads the committed log while the run goes on, so that the append checker
 * sees entries that compaction removes from every node before the end. It
 * asks one node for the entries after the last one it has, and all the
 * others when that one is down, paused, or cut off and behind. Entries are
 * read once each and are committed (a node reads out only up to its commit
 * index), so what it collects is a prefix of the committed log with holes
 * only where every node it asked had compacted the entries already.
 */
import type { ReadLogReply } from '../../src/node/client-proto.js';
import type { ProcessCluster } from '../support/process-cluster.js';
import type { FinalEntry, ObservedLog } from './checkers/log-checks.js';
import { compactedFirstIndex, READ_LOG_PAGE, toFinalEntry } from './read-log.js';

/** Short enough that a node at a few hundred writes/s does not compact past the tailer between two polls. */
const POLL_MS = 50;
/** A paused node must not hold the tailer up for long. */
const CALL_TIMEOUT_MS = 300;

interface Answer {
  readonly node: string;
  /** Null when the call failed. */
  readonly page: ReadLogReply | null;
  /** The node's first index when it had compacted the entries asked for. */
  readonly firstHeld: number | null;
}

export class LogTailer {
  private next = 1;
  private readonly entries: FinalEntry[] = [];
  private missed = 0;
  /** A set: a node that answers wrongly is asked again and again. */
  private readonly anomalies = new Set<string>();
  private stopping = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /** The node that gave entries last: asked first, alone, while it keeps answering. */
  private preferred: string | null = null;

  constructor(
    private readonly cluster: ProcessCluster,
    /** The members now: a member added during the run is read from too. */
    private readonly nodes: () => readonly string[],
  ) {}

  /** The last index read, or skipped as compacted. */
  get readUpTo(): number {
    return this.next - 1;
  }

  start(): void {
    this.loop = this.run();
  }

  /** Stops reading and returns what was read. */
  async stop(): Promise<ObservedLog> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    return { entries: [...this.entries], missed: this.missed, anomalies: [...this.anomalies] };
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const before = this.next;
      const read = await this.readOnce();
      // Caught up: wait for more. After a full page or a skip, ask again at once: the nodes are compacting.
      if (read < READ_LOG_PAGE && this.next - before === read) await this.sleep(POLL_MS);
    }
  }

  /**
   * Asks the node that answered last for the entries from `next`; when it
   * cannot give any (down, paused, cut off and behind), asks every other
   * running node at once, so that one slow node does not let the others
   * compact past the tailer meanwhile. Returns how many entries it got.
   */
  private async readOnce(): Promise<number> {
    const preferred = this.preferred;
    const answers: Answer[] = [];
    if (preferred !== null && this.cluster.isRunning(preferred)) {
      const answer = await this.ask(preferred);
      if (answer.page !== null && answer.page.entries.length > 0) return this.take(preferred, answer.page);
      answers.push(answer);
    }
    const others = this.nodes().filter((id) => id !== preferred && this.cluster.isRunning(id));
    answers.push(...(await Promise.all(others.map((id) => this.ask(id)))));
    const best = answers.reduce<Answer | null>((a, b) => ((b.page?.entries.length ?? 0) > (a?.page?.entries.length ?? 0) ? b : a), null);
    if (best?.page != null && best.page.entries.length > 0) {
      this.preferred = best.node;
      return this.take(best.node, best.page);
    }
    const firstHeld = answers.flatMap((a) => (a.firstHeld === null ? [] : [a.firstHeld]));
    if (firstHeld.length > 0 && !this.stopping) {
      // No node gave entries and some had compacted `next` away: go on from the lowest first index they
      // hold. A node that is merely behind might still hold the entries in between, but waiting for it
      // could take the rest of the run; the skipped ones are counted as missed.
      const resume = Math.min(...firstHeld);
      this.missed += resume - this.next;
      this.next = resume;
    }
    return 0;
  }

  private async ask(node: string): Promise<Answer> {
    try {
      const page = await this.cluster.call<ReadLogReply>(node, 'readLog', { fromIndex: this.next, maxEntries: READ_LOG_PAGE }, CALL_TIMEOUT_MS);
      return { node, page, firstHeld: null };
    } catch (error) {
      const first = compactedFirstIndex(error);
      return { node, page: null, firstHeld: first !== null && first > this.next ? first : null };
    }
  }

  private take(node: string, page: ReadLogReply): number {
    let taken = 0;
    for (const entry of page.entries) {
      if (entry.index !== this.next) {
        this.anomalies.add(`${node} answered ReadLog from ${this.next} with entry ${entry.index} where ${this.next} was due`);
        break;
      }
      this.entries.push(toFinalEntry(entry));
      this.next++;
      taken++;
    }
    return taken;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }
}
