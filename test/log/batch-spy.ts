import { vi } from 'vitest';
import type { LevelLogStorage } from '../../src/log/level-storage.js';

export interface BatchOp {
  readonly type: 'put' | 'del';
  readonly key: Uint8Array;
}

/** Spies on the log's batches: each call's arguments are the batch's operations and whether it is fsync'd. */
export function spyOnBatches(storage: LevelLogStorage) {
  return vi.spyOn(storage as unknown as { writeOps(ops: readonly BatchOp[], sync: boolean): Promise<void> }, 'writeOps');
}
