import { createHash } from 'node:crypto';
import type { Entry, HardState } from '../../src/raft/types.js';

/** One short string for a whole log and its hard state: equal digests, equal logs. */
export function logDigest(hardState: HardState, log: readonly Entry[]): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(hardState));
  for (const entry of log) {
    hash.update(`|${entry.index}:${entry.term}:${entry.kind}:${entry.data.byteLength}:`);
    hash.update(entry.data);
  }
  return `${log.length}/${hardState.term}/${hardState.commit}/${hash.digest('hex').slice(0, 16)}`;
}
