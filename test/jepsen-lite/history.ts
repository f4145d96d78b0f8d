/**
 * The history of a jepsen-lite run: every client operation's invocation and
 * completion, and every nemesis event, in real-time order. Written as
 * `history.jsonl`, one event per line. Other tools read this format: add
 * optional fields if you must, never change or remove one.
 */

export type OperationType = 'invoke' | 'ok' | 'fail' | 'info';
/**
 * `commit` and `consumers` come from the subscribe workload's durable
 * consumers: a CommitPosition of the consumer named by `key`, and a
 * Consumers poll.
 */
export type OperationF = 'read' | 'write' | 'cas' | 'append' | 'commit' | 'consumers';

/** A register value: the workload writes small integers; `null` is an absent key. */
export type RegisterValue = number | null;

export interface ClientEvent {
  /** The client worker. A process has one operation outstanding; after `info` it never completes it. */
  readonly process: number;
  readonly type: OperationType;
  readonly f: OperationF;
  /** Register key (`"k1"`); the consumer's name for `commit`; `null` for `append` and `consumers`, which have no key. */
  readonly key: string | null;
  /**
   * write: the value; cas: `[expected, new]`; read: `null` on invoke, what was
   * read on `ok` (`null` for absent); append: the unique value appended;
   * commit: the position asked for, and on `ok` the consumer's position
   * after it; consumers: `null`, and on `ok` each consumer's position by name.
   */
  readonly value: unknown;
  /** Nanoseconds since the run started. */
  readonly time: number;
  /** The node the client sent the call to; on a completion, the node that answered when the client library says so. */
  readonly node: string;
  /** On `ok` of a write, cas, append or commit: the log index the node acknowledged. */
  readonly index?: number;
  /** On `fail` and `info`: why. A cas whose comparison failed has `"compare-failed"`. */
  readonly error?: string;
  /**
   * On `ok` of an exactly-once write (append `--retries`, subscribe): true
   * when the answer came to a retry, for an earlier attempt the cluster had
   * applied (`duplicate` in the reply). Absent otherwise.
   */
  readonly duplicate?: boolean;
}

export interface NemesisEvent {
  readonly process: 'nemesis';
  readonly type: 'info';
  /** start-partition, stop-partition, kill, restart, pause, resume, start-slow, stop-slow. */
  readonly f: string;
  readonly value: {
    /** Pairs a start with its stop: the window in between is the fault. */
    readonly fault: number;
    /** partition, kill, pause or slow. */
    readonly kind: string;
    /** For people: "n1 n2 | n3", "kill n2 (leader)". */
    readonly description: string;
    readonly nodes?: readonly string[];
  };
  readonly time: number;
}

export type HistoryEvent = ClientEvent | NemesisEvent;

export const isNemesisEvent = (event: HistoryEvent): event is NemesisEvent => event.process === 'nemesis';

/** Marks a `fail` cas as a comparison that failed: it took no effect, and the register did not hold `expected`. */
export const COMPARE_FAILED = 'compare-failed';

/** Parses history.jsonl text; a bad line is an error naming its line number. */
export function parseHistory(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch (error) {
      throw new Error(`history line ${i + 1}: not JSON (${(error as Error).message})`);
    }
    if (typeof event !== 'object' || event === null || !('process' in event) || !('type' in event) || !('time' in event)) {
      throw new Error(`history line ${i + 1}: expected an object with process, type and time`);
    }
    events.push(event as HistoryEvent);
  }
  return events;
}

export const formatHistory = (events: readonly HistoryEvent[]): string => events.map((e) => JSON.stringify(e)).join('\n') + '\n';
