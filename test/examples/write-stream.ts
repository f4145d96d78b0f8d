/**
 * A stream of writes to a few keys, as a seeded random mix of puts, deletes
 * and compare-and-swaps (most of which succeed: the stream is the only
 * writer of its keys, so it knows their values), one at a time, until
 * stopped. Each write's index and whether it changed its key are recorded.
 */
import type { RaftLogClient } from '../../src/client/index.js';

export interface RecordedWrite {
  readonly index: number;
  readonly op: 'put' | 'delete' | 'cas';
  readonly key: string;
  /** Whether the write changed the key (a delete of an absent key, or a failed swap, did not). */
  readonly changed: boolean;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same stream of writes. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class WriteStream {
  readonly writes: RecordedWrite[] = [];
  private stopping = false;
  private failure: unknown = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly client: RaftLogClient,
    readonly keys: readonly string[],
    private readonly random: () => number,
  ) {}

  start(): void {
    this.loop ??= this.run().catch((error: unknown) => {
      this.failure = error;
    });
  }

  /** Waits until `count` writes more than now have been made; fails if the stream failed. */
  async waitForMore(count: number, timeoutMs: number): Promise<void> {
    const target = this.writes.length + count;
    const deadline = Date.now() + timeoutMs;
    while (this.writes.length < target) {
      this.throwIfFailed();
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${count} more writes (${this.writes.length} made)`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Stops after the write under way; rejects if a write failed. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw new Error(`the write stream failed: ${(this.failure as Error).message}`, { cause: this.failure });
  }

  private async run(): Promise<void> {
    const values = new Map<string, string>();
    for (let i = 0; !this.stopping; i++) {
      const key = this.keys[Math.floor(this.random() * this.keys.length)] as string;
      const roll = this.random();
      const value = `v${i}-${'x'.repeat(Math.floor(this.random() * 40))}`;
      if (roll < 0.5) {
        const result = await this.client.put(key, value);
        values.set(key, value);
        this.writes.push({ index: result.index, op: 'put', key, changed: true });
      } else if (roll < 0.7) {
        const result = await this.client.delete(key);
        values.delete(key);
        this.writes.push({ index: result.index, op: 'delete', key, changed: result.existed });
      } else {
        const expected = this.random() < 0.75 ? (values.get(key) ?? null) : `not-${i}`;
        const result = await this.client.compareAndSwap(key, expected, value);
        if (result.succeeded) values.set(key, value);
        this.writes.push({ index: result.index, op: 'cas', key, changed: result.succeeded });
      }
    }
  }
}
