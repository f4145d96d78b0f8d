/**
 * Groups a subscription's entries into batches: a batch waits for one
 * entry, then takes every entry already received, up to a limit. An idle
 * subscriber so handles each write at once, and a busy one pays for one
 * fsync and one position commit per batch rather than per entry.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { LogSubscription, SubscribedEntry } from '../../src/client/index.js';

type Step = IteratorResult<SubscribedEntry, undefined>;

const NOT_YET = Symbol('not yet received');

export class BatchReader {
  /** A next() that did not resolve in time for the previous batch: the first entry of the next one. */
  private pending: Promise<Step> | null = null;

  constructor(
    private readonly subscription: LogSubscription,
    private readonly maxEntries: number,
  ) {}

  /** The next batch, in index order; null once the subscription has ended. Rejects with the subscription's error. */
  async next(): Promise<SubscribedEntry[] | null> {
    const first = await this.take();
    if (first.done === true) return null;
    const batch = [first.value];
    while (batch.length < this.maxEntries) {
      const step = this.subscription.next();
      // An entry already received resolves within microtasks; one still on the wire does not before the next turn.
      const ready = await Promise.race([step, nextTurn(NOT_YET)]);
      if (ready === NOT_YET || ready.done === true) {
        this.pending = step;
        break;
      }
      batch.push(ready.value);
    }
    return batch;
  }

  private take(): Promise<Step> {
    const step = this.pending ?? this.subscription.next();
    this.pending = null;
    return step;
  }
}
