/**
 * The simulator's agenda: events ordered by simulated time, and among events at
 * the same time by the order they were scheduled. The tie-break on a sequence
 * number (never on object identity or insertion into a Map) is what makes a run
 * reproducible from its seed.
 */
export class EventQueue<T> {
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly items: T[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.items.length;
  }

  push(time: number, item: T): void {
    if (!Number.isInteger(time)) throw new RangeError(`event time must be an integer, got ${time}`);
    this.times.push(time);
    this.seqs.push(this.nextSeq++);
    this.items.push(item);
    this.siftUp(this.items.length - 1);
  }

  /** Time of the earliest event, or null when empty. */
  peekTime(): number | null {
    return this.items.length === 0 ? null : (this.times[0] as number);
  }

  /** Removes and returns the earliest event; throws when empty. */
  pop(): { time: number; item: T } {
    const n = this.items.length;
    if (n === 0) throw new RangeError('pop from an empty event queue');
    const time = this.times[0] as number;
    const item = this.items[0] as T;
    const last = n - 1;
    if (last > 0) this.move(last, 0);
    this.times.pop();
    this.seqs.pop();
    this.items.pop();
    if (last > 0) this.siftDown(0);
    return { time, item };
  }

  private less(a: number, b: number): boolean {
    const ta = this.times[a] as number;
    const tb = this.times[b] as number;
    return ta < tb || (ta === tb && (this.seqs[a] as number) < (this.seqs[b] as number));
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from] as number;
    this.seqs[to] = this.seqs[from] as number;
    this.items[to] = this.items[from] as T;
  }

  private swap(a: number, b: number): void {
    const t = this.times[a] as number;
    const s = this.seqs[a] as number;
    const i = this.items[a] as T;
    this.move(b, a);
    this.times[b] = t;
    this.seqs[b] = s;
    this.items[b] = i;
  }

  private siftUp(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(index: number): void {
    const n = this.items.length;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.less(right, left) ? right : left;
      if (!this.less(child, i)) break;
      this.swap(i, child);
      i = child;
    }
  }
}
