/**
 * The 'auto' snapshot policy on a node's real log and state machine: the
 * first snapshot comes at 10,000 entries, the next only once the log since
 * it holds four times the snapshot's bytes, and that measure starts again
 * from each snapshot recorded.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { LevelLogStorage } from '../../src/log/level-storage.js';
import { encodeCommand } from '../../src/node/kv-commands.js';
import { KvStateMachine } from '../../src/node/kv-state-machine.js';
import { AUTO_SNAPSHOTS, NodeSnapshots } from '../../src/node/node-snapshots.js';
import type { SnapshotSender } from '../../src/node/snapshot-transfer.js';
import type { Entry } from '../../src/raft/types.js';
import { LogFixtures, voters } from '../log/log-fixtures.js';

const fixtures = new LogFixtures();
afterEach(() => fixtures.cleanUp());

const KEYS = 10_000;
const VALUE = Buffer.alloc(100, 'v');

/** Writes and applies Puts through `to`, over KEYS keys, and takes each snapshot the policy asks for; returns the indexes snapshotted. */
async function writeUpTo(to: number, storage: LevelLogStorage, kv: KvStateMachine, snapshots: NodeSnapshots): Promise<number[]> {
  const taken: number[] = [];
  while (kv.appliedIndex < to) {
    const from = kv.appliedIndex + 1;
    const batch: Entry[] = Array.from({ length: Math.min(500, to - from + 1) }, (_, i) => ({
      index: from + i,
      term: 1,
      kind: 'command',
      data: encodeCommand({ op: 'put', key: Buffer.from(`key-${(from + i) % KEYS}`), value: VALUE }),
    }));
    const last = (batch[batch.length - 1] as Entry).index;
    await storage.save({ term: 1, votedFor: null, commit: last }, batch);
    for (const entry of batch) kv.apply(entry);
    snapshots.applied(batch);
    let started = false;
    const written = new Promise<void>((resolve) => {
      started = snapshots.maybeStart(kv, 1, { voters }, resolve);
    });
    if (started) {
      await written;
      await snapshots.recordWritten();
      taken.push(storage.snapshot()?.index ?? -1);
    }
  }
  return taken;
}

describe("a node's snapshots under the auto policy", () => {
  it('the first at 10,000 entries, the next once the log since it holds 4 times its bytes, measured again from there', {
    timeout: 120_000,
  }, async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    const kv = new KvStateMachine();
    const logger = pino({ level: 'silent' });
    const snapshots = new NodeSnapshots('n1', storage, { everyEntries: 'auto', retainEntries: 1_000 }, {} as unknown as SnapshotSender, logger);

    expect(await writeUpTo(AUTO_SNAPSHOTS.minEntries, storage, kv, snapshots)).toEqual([AUTO_SNAPSHOTS.minEntries]);
    const first = storage.snapshotFile();
    if (first === null) throw new Error('no snapshot recorded');
    const entryBytes = encodeCommand({ op: 'put', key: Buffer.from('key-1234'), value: VALUE }).byteLength;
    // The entries the log needs after the first snapshot before the second (the policy looks once per batch of 500).
    const needed = Math.ceil((AUTO_SNAPSHOTS.logToSnapshot * first.bytes) / entryBytes);
    expect(needed).toBeGreaterThan(2 * AUTO_SNAPSHOTS.minEntries);

    const second = await writeUpTo(first.meta.index + needed + 500, storage, kv, snapshots);
    expect(second).toHaveLength(1);
    const at = (second[0] as number) - first.meta.index;
    expect(at).toBeGreaterThanOrEqual(needed - 500);
    expect(at).toBeLessThanOrEqual(needed + 500);
  });
});
