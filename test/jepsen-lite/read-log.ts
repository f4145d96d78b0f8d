/** Reading nodes' committed logs with compaction: a read below a node's first index tells where its log starts now. */
import * as grpc from '@grpc/grpc-js';
import { FIRST_INDEX_METADATA_KEY } from '../../src/client/errors.js';
import type { LogEntryReply, ReadLogReply } from '../../src/node/client-proto.js';
import type { ProcessCluster } from '../support/process-cluster.js';
import type { FinalEntry } from './checkers/log-checks.js';

/** The most a node returns per ReadLog. */
export const READ_LOG_PAGE = 1000;

/**
 * Reads a node's committed entries from the first one it holds up to
 * `commitIndex`. A snapshot taken meanwhile may compact the start away: the
 * node then answers OUT_OF_RANGE with its new first index, and the read
 * starts over from there, so the window read is always gap-free.
 */
export async function readHeldLog(
  cluster: ProcessCluster,
  node: string,
  firstLogIndex: number,
  commitIndex: number,
): Promise<{ firstIndex: number; entries: FinalEntry[] }> {
  let firstIndex = Math.max(1, firstLogIndex);
  let entries: FinalEntry[] = [];
  for (let restarts = 0; ; ) {
    const from = (entries[entries.length - 1]?.index ?? firstIndex - 1) + 1;
    if (from > commitIndex) return { firstIndex, entries };
    let page: ReadLogReply;
    try {
      page = await cluster.call<ReadLogReply>(node, 'readLog', { fromIndex: from, maxEntries: READ_LOG_PAGE }, 10_000);
    } catch (error) {
      const compactedFrom = compactedFirstIndex(error);
      if (compactedFrom === null || compactedFrom <= from || ++restarts > 10) {
        throw new Error(`reading ${node}'s log from index ${from} (window from ${firstIndex}): ${(error as Error).message}`, { cause: error });
      }
      firstIndex = compactedFrom;
      entries = [];
      continue;
    }
    const committed = page.entries.filter((e) => e.index <= commitIndex);
    if (committed.length === 0) return { firstIndex, entries };
    entries.push(...committed.map(toFinalEntry));
  }
}

/** The first index a node still holds, from its OUT_OF_RANGE answer to a ReadLog below it; null for any other error. */
export function compactedFirstIndex(error: unknown): number | null {
  const status = error as Partial<grpc.ServiceError>;
  if (status.code !== grpc.status.OUT_OF_RANGE || !(status.metadata instanceof grpc.Metadata)) return null;
  const value = Number(String(status.metadata.get(FIRST_INDEX_METADATA_KEY)[0] ?? ''));
  return Number.isInteger(value) && value > 0 ? value : null;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

export function toFinalEntry(entry: LogEntryReply): FinalEntry {
  return { index: entry.index, term: entry.term, kind: entry.kind, record: text(entry.record), key: text(entry.key), value: text(entry.value) };
}
