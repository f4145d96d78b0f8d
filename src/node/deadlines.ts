/**
 * Deadlines of requests in progress (writes waiting to be applied, reads
 * waiting for their read index), kept on one timer per node rather than one
 * per request. A timer per request cost every request a setTimeout and a
 * clearTimeout, and each distinct duration a list in Node's timer queue:
 * requests almost always finish long before their deadline, so the work was
 * nearly always thrown away. Here a request costs a set insertion and
 * deletion; the timer is armed for the earliest deadline and, when it fires,
 * expires whatever is due and re-arms for the earliest left.
 */

/** One registered deadline; pass it to cancel() once the request is settled. */
export interface Deadline {
  /** Milliseconds since the epoch (Date.now()). */
  readonly at: number;
  readonly expire: () => void;
}

/** setTimeout's longest delay (a longer one fires at once, with a warning); a deadline further off is re-armed for. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Deadlines {
  private readonly pending = new Set<Deadline>();
  private timer: NodeJS.Timeout | null = null;
  /** When the timer fires; Infinity while it is not armed. */
  private armedAt = Number.POSITIVE_INFINITY;

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.pending.size;
  }

  /** Calls `expire` once `at` (ms since the epoch) has passed, unless cancelled first. */
  add(at: number, expire: () => void): Deadline {
    const deadline: Deadline = { at, expire };
    this.pending.add(deadline);
    if (at < this.armedAt) this.arm(at);
    return deadline;
  }

  /** The request was settled: its deadline will not expire. The timer stays armed; firing early with nothing due is cheap. */
  cancel(deadline: Deadline): void {
    this.pending.delete(deadline);
    if (this.pending.size === 0) this.disarm();
  }

  private arm(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())));
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  private fire(): void {
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    const due: Deadline[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const deadline of this.pending) {
      if (deadline.at <= now) due.push(deadline);
      else if (deadline.at < next) next = deadline.at;
    }
    for (const deadline of due) this.pending.delete(deadline);
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
    // Expired after the bookkeeping: an expire() that adds or cancels a deadline finds it consistent.
    for (const deadline of due) deadline.expire();
  }
}
