import { MemoryStorage } from '../../src/raft/memory-storage.js';
import type { NodeId } from '../../src/raft/types.js';
import type { LogTail, LogView } from './invariants.js';
import type { SimCore } from './sim-core.js';

/**
 * One simulated server. Its MemoryStorage is its disk and survives crashes;
 * the core and the state machine (here: just the applied index) live in
 * memory and are lost. `life` counts (re)starts so that events scheduled for an
 * earlier life (its ticks, its restart) are recognised as stale.
 */
export class SimNode {
  readonly storage: MemoryStorage;
  core: SimCore | null = null;
  life = 0;
  /** Last index applied to this life's state machine. */
  applied = 0;
  /** A view of the durable log, for checks that compare a write with what it replaces. */
  readonly storedLog: LogView;

  constructor(
    readonly id: NodeId,
    voters: readonly NodeId[],
    readonly tickPeriod: number,
  ) {
    this.storage = new MemoryStorage({ voters: [...voters] });
    const storage = this.storage;
    this.storedLog = {
      termAt(index: number): number | null {
        if (index === 0) return 0;
        if (index < storage.firstIndex() || index > storage.lastIndex()) return null;
        return storage.term(index);
      },
    };
  }

  /** The end of the durable log (between events the core has persisted everything it holds). */
  durableTail(): LogTail {
    const lastIndex = this.storage.lastIndex();
    return {
      node: this.id,
      lastIndex,
      lastTerm: this.storage.term(lastIndex),
      termAt: (index) => this.storedLog.termAt(index),
    };
  }

  get up(): boolean {
    return this.core !== null;
  }
}
