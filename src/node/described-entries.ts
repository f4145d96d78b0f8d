import type { Entry } from '../raft/types.js';
import type { LogEntryReply } from './client-proto.js';
import { describeEntry } from './log-entry-view.js';

/**
 * Committed entries as readers see them (ReadLog, Subscribe's COMMANDS
 * view), decoded once and shared: K subscribers following the tail would
 * otherwise decode every entry K times. A committed entry never changes,
 * so an (index, term) described once stays true; the last `capacity` are
 * kept.
 */
export class DescribedEntries {
  private readonly byIndex = new Map<number, LogEntryReply>();

  constructor(private readonly capacity = 8192) {}

  /** The entry described, from the cache when it holds this index and term. */
  describe(entry: Entry): LogEntryReply {
    const cached = this.byIndex.get(entry.index);
    if (cached !== undefined && cached.term === entry.term) return cached;
    const described = describeEntry(entry);
    if (cached !== undefined) this.byIndex.delete(entry.index);
    this.byIndex.set(entry.index, described);
    if (this.byIndex.size > this.capacity) {
      const oldest = this.byIndex.keys().next().value as number;
      this.byIndex.delete(oldest);
    }
    return described;
  }
}
