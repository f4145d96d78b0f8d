/**
 * Writes waiting for their entry to be applied, keyed by index and term.
 *
 * An index alone is not enough: a leader deposed and elected again may
 * propose at an index where its earlier proposal was overwritten. Keyed by
 * index only, the newer waiter replaced the older one, and the older one's
 * deadline then removed the newer one: a committed write was reported as
 * DEADLINE_EXCEEDED. Here each waiter's deadline removes only itself, and
 * the entry applied at an index settles every waiter there: the one of its
 * term with the result, the others (overwritten, never committed) with an error.
 */

import { Deadlines } from './deadlines.js';

export interface Settle<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

interface Waiter<T> extends Settle<T> {
  readonly term: number;
  /** performance.now() when the write was proposed. */
  readonly since: number;
}

export class ProposalWaiters<T> {
  private readonly byIndex = new Map<number, Waiter<T>[]>();
  private count = 0;

  /** `deadlines`: the node's one timer for requests in progress (deadlines.ts). */
  constructor(private readonly deadlines: Deadlines = new Deadlines()) {}

  get size(): number {
    return this.count;
  }

  /** Resolves when the entry (index, term) is applied; `expired` makes the error once the deadline passes. */
  wait(index: number, term: number, deadline: number, expired: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        term,
        since: performance.now(),
        resolve: (value) => {
          this.deadlines.cancel(expiry);
          resolve(value);
        },
        reject: (error) => {
          this.deadlines.cancel(expiry);
          reject(error);
        },
      };
      const expiry = this.deadlines.add(deadline, () => {
        if (this.remove(index, waiter)) reject(expired());
      });
      const list = this.byIndex.get(index);
      if (list === undefined) this.byIndex.set(index, [waiter]);
      else list.push(waiter);
      this.count++;
    });
  }

  /**
   * The entry at `index` of `term` was applied: its waiter gets `value`, and
   * any waiter of another term there gets `overwritten(itsTerm)`.
   */
  applied(index: number, term: number, value: () => T, overwritten: (term: number) => Error): void {
    const list = this.take(index);
    for (const waiter of list) {
      if (waiter.term === term) waiter.resolve(value());
      else waiter.reject(overwritten(waiter.term));
    }
  }

  /** Every waiter at or below `index` fails with `error(index, term)` (a snapshot covered those entries). */
  rejectThrough(index: number, error: (index: number, term: number) => Error): void {
    for (const at of [...this.byIndex.keys()]) {
      if (at > index) continue;
      for (const waiter of this.take(at)) waiter.reject(error(at, waiter.term));
    }
  }

  /** Every waiter fails with `error(index, term)`, and none is left. */
  rejectAll(error: (index: number, term: number) => Error): void {
    this.rejectThrough(Number.POSITIVE_INFINITY, error);
  }

  /**
   * How long the longest-waiting write has waited, in ms (0 when none waits).
   * Indexes are kept in the order their first waiter was proposed, so the
   * first waiter found is the oldest (a close estimate only when a deadline
   * removed the first waiter of an index that a newer leader term reused).
   */
  oldestWaitMs(now: number = performance.now()): number {
    for (const list of this.byIndex.values()) {
      const first = list[0];
      if (first !== undefined) return now - first.since;
    }
    return 0;
  }

  private take(index: number): Waiter<T>[] {
    const list = this.byIndex.get(index);
    if (list === undefined) return [];
    this.byIndex.delete(index);
    this.count -= list.length;
    return list;
  }

  private remove(index: number, waiter: Waiter<T>): boolean {
    const list = this.byIndex.get(index);
    const at = list?.indexOf(waiter) ?? -1;
    if (list === undefined || at < 0) return false;
    list.splice(at, 1);
    if (list.length === 0) this.byIndex.delete(index);
    this.count--;
    return true;
  }
}
