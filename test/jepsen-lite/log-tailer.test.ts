/**
 * The log tailer against a real 3-node cluster that snapshots every 10
 * entries and keeps 30: it starts after every node has compacted the log's
 * start away, so it must skip to where the nodes' logs begin and count what
 * it could not read; then it must follow new writes, also across the loss of
 * the leader. (A tailer that lags more than the retained entries misses some
 * legitimately; 30 leaves room for a loaded machine.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusReply, WriteReply } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';
import { LogTailer } from './log-tailer.js';
import { readHeldLog } from './read-log.js';

let cluster: ProcessCluster | null = null;
let tailer: LogTailer | null = null;
afterEach(async () => {
  await tailer?.stop();
  tailer = null;
  await cluster?.destroy();
  cluster = null;
});

async function appendAll(live: ProcessCluster, leader: string, records: readonly string[]): Promise<void> {
  for (const record of records) {
    await live.call<WriteReply>(leader, 'append', { record: Buffer.from(record) }, 10_000);
  }
}

const records = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `r${from + i}`);

describe('LogTailer', () => {
  it('skips what every node compacted before it started, counts it as missed, then reads every new entry once, across a leader kill', async () => {
    const live = await ProcessCluster.start(3, ['--snapshot-entries', '10', '--retain-entries', '30'], { logLevel: 'info' });
    cluster = live;
    const ids = ['n1', 'n2', 'n3'];
    const leader = await live.waitForLeader(ids, 60_000);
    await appendAll(live, leader, records(1, 40));
    // Every node has snapshotted and compacted the start of the log.
    const compactedTo = await waitFor(
      'every node to compact its log',
      async () => {
        const statuses = await Promise.all(ids.map((id) => live.status(id)));
        return statuses.every((s) => s.firstLogIndex > 1) && Math.min(...statuses.map((s) => s.firstLogIndex)) - 1;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    expect(compactedTo).toBeGreaterThan(0);

    const tail = new LogTailer(live, () => ids);
    tailer = tail;
    tail.start();
    // While nothing is written, its start is deterministic: skip to the first index held, read to the end.
    const quiet = (await live.status(leader)).commitIndex;
    await waitFor('the tailer to skip the compacted start and catch up', () => tail.readUpTo >= quiet, { timeoutMs: 30_000, intervalMs: 50 });
    await appendAll(live, leader, records(41, 50));
    await live.kill(leader);
    const survivors = ids.filter((id) => id !== leader);
    const next = await live.waitForLeader(survivors, 60_000);
    await appendAll(live, next, records(51, 60));
    const { commitIndex } = await live.status(next);
    await waitFor('the tailer to read up to the commit index', () => tail.readUpTo >= commitIndex, { timeoutMs: 30_000, intervalMs: 50 });
    const observed = await tail.stop();
    tailer = null;

    expect(observed.anomalies).toEqual([]);
    // It started at 1, found 1..compactedTo compacted on every node, and went on from the lowest first index held.
    expect(observed.missed).toBeGreaterThanOrEqual(compactedTo);
    expect(observed.entries[0]?.index).toBe(observed.missed + 1);
    // Every index up to where it stopped was read once or counted as missed.
    for (const [i, entry] of observed.entries.entries()) expect(entry.index).toBe(observed.missed + 1 + i);
    expect(observed.missed + observed.entries.length).toBeGreaterThanOrEqual(commitIndex);
    // Every write made while it ran was read exactly once.
    const read = observed.entries.map((e) => e.record);
    for (const record of records(41, 60)) expect(read.filter((r) => r === record)).toEqual([record]);
    // And what it read is the committed log as a surviving node holds it.
    const status: StatusReply = await live.status(next);
    const held = await readHeldLog(live, next, status.firstLogIndex, status.commitIndex);
    const heldByIndex = new Map(held.entries.map((e) => [e.index, e]));
    const overlap = observed.entries.filter((e) => heldByIndex.has(e.index));
    expect(overlap.length).toBeGreaterThan(0);
    for (const entry of overlap) expect(entry).toEqual(heldByIndex.get(entry.index));
  }, 180_000);
});
