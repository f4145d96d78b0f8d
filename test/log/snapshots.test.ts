import { mkdir, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  COMPACTED_KEY,
  DELETED_BEFORE_KEY,
  encodeCompactedPoint,
  encodeDeletedBefore,
  encodeEntry,
  encodeSnapshotRecord,
  entryKey,
  SNAPSHOT_KEY,
} from '../../src/log/codec.js';
import { LogCorruptionError } from '../../src/log/errors.js';
import type { LevelLogStorage } from '../../src/log/level-storage.js';
import { StorageRangeError } from '../../src/raft/storage.js';
import type { Entry } from '../../src/raft/types.js';
import { type BatchOp, spyOnBatches } from './batch-spy.js';
import { entries, LogFixtures, storedKeys, tamper, voters, writeSnapshotFile } from './log-fixtures.js';

const fixtures = new LogFixtures();
afterEach(() => fixtures.cleanUp());

/** Terms 1 for 1..4, 2 for 5..8, 3 from 9 on. */
const termOf = (index: number) => (index <= 4 ? 1 : index <= 8 ? 2 : 3);

async function logWith(last: number): Promise<LevelLogStorage> {
  const storage = await fixtures.openStorage(await fixtures.freshDir());
  await storage.save({ term: termOf(last), votedFor: 'n1', commit: last }, entries(1, last, termOf));
  return storage;
}

const heldInMemory = (storage: LevelLogStorage) => (storage as unknown as { held: Entry[] }).held.length;

describe('snapshots and compaction', () => {
  it('a snapshot then a compaction moves the log start, and a restart finds the same log', async () => {
    const storage = await logWith(12);
    const ref = await writeSnapshotFile(storage, 'snap-10', 10, 3);
    await storage.saveSnapshot(ref);
    expect(storage.firstIndex()).toBe(1);
    await storage.compact(6);

    const check = (log: LevelLogStorage) => {
      expect([log.firstIndex(), log.lastIndex(), log.term(6), log.term(9)]).toEqual([7, 12, 2, 3]);
      expect(log.snapshot()).toEqual(ref.meta);
      expect(log.snapshotFile()).toEqual(ref);
      expect(log.entries(7, 13, Infinity)).toEqual(entries(7, 12, termOf));
      expect(() => log.entries(6, 8, Infinity)).toThrow(StorageRangeError);
      expect(() => log.term(5)).toThrow(/outside the stored range 6\.\.12/);
    };
    check(storage);
    const reopened = await fixtures.reopen(storage);
    check(reopened);
    expect(reopened.initialState().hardState).toEqual({ term: 3, votedFor: 'n1', commit: 12 });
    expect((await storedKeys(await closed(reopened))).filter((k) => k.startsWith('e'))).toEqual([7, 8, 9, 10, 11, 12].map((i) => `e${i}`));
  });

  it("compaction records its point in one small fsync'd batch and deletes the entries before it afterwards", async () => {
    const storage = await logWith(10);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-8', 8, 2));
    const batch = spyOnBatches(storage);
    await storage.compact(8);
    // The batch that writes of the node queue behind holds two records, however many entries go.
    expect(batch).toHaveBeenCalledTimes(1);
    const [ops, sync] = batch.mock.calls[0] as [readonly BatchOp[], boolean];
    expect(sync).toBe(true);
    expect(ops.map((op) => [op.type, String.fromCharCode(op.key[0] as number)])).toEqual([
      ['put', 'p'],
      ['put', 'd'],
    ]);
    expect(storage.entries(9, 11, Infinity)).toEqual(entries(9, 10, termOf));
    await storage.deletionSettled();
    expect((await storedKeys(await closed(storage))).filter((k) => k.startsWith('e'))).toEqual(['e9', 'e10']);
  });

  it("a node's own snapshot and the compaction behind it are recorded in one fsync'd batch, and a restart finds both", async () => {
    const storage = await logWith(12);
    const old = await writeSnapshotFile(storage, 'snap-4', 4, 1);
    await storage.saveSnapshot(old);
    const ref = await writeSnapshotFile(storage, 'snap-10', 10, 3);
    const batch = spyOnBatches(storage);
    await storage.saveSnapshot(ref, 6);
    // One durable write on the node's queue: the record, the point and how far the deletion has got.
    expect(batch).toHaveBeenCalledTimes(1);
    const [ops, sync] = batch.mock.calls[0] as [readonly BatchOp[], boolean];
    expect(sync).toBe(true);
    expect(ops.map((op) => [op.type, String.fromCharCode(op.key[0] as number)])).toEqual([
      ['put', 's'],
      ['put', 'p'],
      ['put', 'd'],
    ]);
    batch.mockRestore();
    const check = (log: LevelLogStorage) => {
      expect([log.firstIndex(), log.lastIndex(), log.term(6)]).toEqual([7, 12, 2]);
      expect(log.snapshotFile()).toEqual(ref);
    };
    check(storage);
    // The older snapshot's file goes once the log no longer needs it.
    expect(await readdir(storage.snapshotDir)).toEqual(['snap-10']);
    await storage.deletionSettled();
    const reopened = await fixtures.reopen(storage);
    check(reopened);
    expect((await storedKeys(await closed(reopened))).filter((k) => k.startsWith('e'))).toEqual([7, 8, 9, 10, 11, 12].map((i) => `e${i}`));
  });

  it('a failed snapshot record compacts nothing, in memory or on disk', async () => {
    const storage = await logWith(12);
    const ref = await writeSnapshotFile(storage, 'snap-10', 10, 3);
    spyOnBatches(storage).mockRejectedValueOnce(new Error('disk full'));
    await expect(storage.saveSnapshot(ref, 6)).rejects.toThrow('disk full');
    expect([storage.firstIndex(), storage.lastIndex(), storage.snapshot()]).toEqual([1, 12, null]);
    const reopened = await fixtures.reopen(storage);
    expect([reopened.firstIndex(), reopened.lastIndex(), reopened.snapshot()]).toEqual([1, 12, null]);
  });

  it('a compaction point the snapshot being recorded does not cover is refused, and nothing is recorded', async () => {
    const storage = await logWith(12);
    const ref = await writeSnapshotFile(storage, 'snap-8', 8, 2);
    await expect(storage.saveSnapshot(ref, 10)).rejects.toThrow(/cannot compact up to 10: the latest snapshot only covers up to 8/);
    expect([storage.firstIndex(), storage.snapshot()]).toEqual([1, null]);
  });

  it('compactions in a row while the deletion runs leave exactly the entries after the last point', async () => {
    const storage = await logWith(400);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-390', 390, 3));
    for (const point of [100, 200, 300, 390]) await storage.compact(point);
    await storage.deletionSettled();
    expect(storage.firstIndex()).toBe(391);
    const keys = await storedKeys(await closed(storage));
    expect(keys.filter((k) => k.startsWith('e'))).toEqual(entries(391, 400, termOf).map((e) => `e${e.index}`));
  });

  it('entries a stop left behind a compaction are skipped at open and deleted then', async () => {
    const storage = await logWith(10);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-8', 8, 2));
    await storage.compact(6);
    const dir = await closed(storage);
    // As if the node stopped with the deletion not begun: 3..6 still stored, the record says deleting starts at 3.
    await tamper(dir, async (db) => {
      for (const entry of entries(3, 6, termOf)) await db.put(entryKey(entry.index), encodeEntry(entry));
      await db.put(DELETED_BEFORE_KEY, encodeDeletedBefore(3));
    });
    const reopened = await fixtures.openStorage(dir, null);
    expect([reopened.firstIndex(), reopened.lastIndex()]).toEqual([7, 10]);
    expect(reopened.entries(7, 11, Infinity)).toEqual(entries(7, 10, termOf));
    await reopened.deletionSettled();
    expect((await storedKeys(await closed(reopened))).filter((k) => k.startsWith('e'))).toEqual(['e7', 'e8', 'e9', 'e10']);
  });

  it('a failed deletion of compacted entries fails the next write of the log, naming where it stopped', async () => {
    const storage = await logWith(10);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-8', 8, 2));
    (storage as unknown as { db: { clear: () => Promise<void> } }).db.clear = () => Promise.reject(new Error('EIO: i/o error'));
    await storage.compact(6);
    await expect(storage.deletionSettled()).rejects.toThrow(/deleting the compacted entries from 1 failed: EIO: i\/o error/);
    await expect(storage.save({ term: 3, votedFor: 'n1', commit: 10 }, entries(11, 11, termOf))).rejects.toThrow(
      /deleting the compacted entries from 1 failed/,
    );
  });

  it('compaction refuses to pass the latest snapshot, and a refused compaction changes nothing', async () => {
    const storage = await logWith(10);
    await expect(storage.compact(3)).rejects.toThrow(/cannot compact up to 3: the latest snapshot only covers up to 0/);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-5', 5, 2));
    await expect(storage.compact(6)).rejects.toThrow(/cannot compact up to 6: the latest snapshot only covers up to 5/);
    expect(storage.firstIndex()).toBe(1);
    const reopened = await fixtures.reopen(storage);
    expect([reopened.firstIndex(), reopened.lastIndex()]).toEqual([1, 10]);
  });

  it('saveSnapshot refuses a snapshot that is not newer, not in the log, of another term, or whose file is not there', async () => {
    const storage = await logWith(10);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-6', 6, 2));
    await storage.compact(4);
    await expect(storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-6b', 6, 2))).rejects.toThrow(
      /snapshot at 6 is not newer than the stored one at 6/,
    );
    await expect(storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-11', 11, 3))).rejects.toThrow(
      /snapshot at 11 is outside the stored range 4\.\.10/,
    );
    await expect(storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-9', 9, 2))).rejects.toThrow(
      /snapshot at 9 says term 2, the log holds term 3 there/,
    );
    const absent = { ...(await writeSnapshotFile(storage, 'snap-7', 7, 2)), file: 'never-written' };
    await expect(storage.saveSnapshot(absent)).rejects.toThrow(`${join(storage.snapshotDir, 'never-written')} is missing`);
    const wrongSize = { ...(await writeSnapshotFile(storage, 'snap-7', 7, 2)), bytes: 3 };
    await expect(storage.saveSnapshot(wrongSize)).rejects.toThrow(/snap-7 is \d+ bytes, the snapshot says 3 bytes/);
    const outside = { ...(await writeSnapshotFile(storage, 'snap-7', 7, 2)), file: '../hard-state' };
    await expect(storage.saveSnapshot(outside)).rejects.toThrow(/not a plain file name/);
    expect(storage.snapshot()?.index).toBe(6);
  });

  it('writes never overlap: a compaction asked for during a save is refused', async () => {
    const storage = await logWith(4);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-4', 4, 1));
    const saving = storage.save({ term: 2, votedFor: null, commit: 4 }, entries(5, 6, termOf));
    await expect(storage.compact(4)).rejects.toThrow(/compact called while save is in progress/);
    await saving;
    await storage.compact(4);
    expect(storage.firstIndex()).toBe(5);
  });

  it('held entries are bounded by compaction: after 2,000 entries and a compaction to 1,900, 100 are held', async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    for (let from = 1; from <= 2000; from += 250) {
      await storage.save({ term: 1, votedFor: 'n1', commit: from + 249 }, entries(from, from + 249));
    }
    expect(heldInMemory(storage)).toBe(2000);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-1950', 1950, 1));
    await storage.compact(1900);
    expect(heldInMemory(storage)).toBe(100);
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([1901, 2000]);
    expect(() => storage.entries(1, 1901, Infinity)).toThrow(/outside the stored range 1901\.\.2000/);
    const reopened = await fixtures.reopen(storage);
    expect(heldInMemory(reopened)).toBe(100);
  });

  it('compaction deletes the files of older snapshots after its batch, never the latest, incoming/ or a file being written', async () => {
    const storage = await logWith(10);
    await mkdir(join(storage.snapshotDir, 'incoming'));
    await writeFile(join(storage.snapshotDir, 'incoming', 'chunk-0'), 'partial transfer');
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-4', 4, 1));
    await storage.compact(4);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-8', 8, 2));
    expect(await readdir(storage.snapshotDir)).toContain('snap-4');
    await writeFile(join(storage.snapshotDir, 'snap-10.tmp'), 'the node is writing its next snapshot');
    await storage.compact(8);
    expect((await readdir(storage.snapshotDir)).sort()).toEqual(['incoming', 'snap-10.tmp', 'snap-8']);
    expect(await readdir(join(storage.snapshotDir, 'incoming'))).toEqual(['chunk-0']);
  });

  it('a crash between saveSnapshot and compact restarts with every entry and the new snapshot; the older file is removed', async () => {
    const storage = await logWith(10);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-3', 3, 1));
    await storage.compact(3);
    const ref = await writeSnapshotFile(storage, 'snap-9', 9, 3);
    await storage.saveSnapshot(ref);
    // The process dies here: no compaction, snap-3 still on disk.
    const reopened = await fixtures.reopen(storage);
    expect([reopened.firstIndex(), reopened.lastIndex(), reopened.term(3)]).toEqual([4, 10, 1]);
    expect(reopened.snapshotFile()).toEqual(ref);
    expect(reopened.leftoversRemoved).toEqual(['snap-3']);
    await reopened.compact(9);
    expect([reopened.firstIndex(), reopened.term(9)]).toEqual([10, 3]);
  });
});

describe('installing a snapshot from the leader', () => {
  it("replaces the log, the configuration and the hard state in one fsync'd batch, and survives a restart", async () => {
    const storage = await logWith(10);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'own-5', 5, 2));
    await storage.compact(3);
    // Every part of a configuration is carried: learners, addresses and the ids removed for good.
    const config = { voters: ['n1', 'n2', 'n4'], learners: ['n5'], addresses: { n1: 'h1:7001', n5: 'h5:7005' }, removed: ['n3'] };
    const ref = await writeSnapshotFile(storage, 'leader-20', 20, 4, config);
    const batch = spyOnBatches(storage);
    const after = entries(21, 22, (i) => (i === 21 ? 4 : 5));
    await storage.save({ term: 5, votedFor: null, commit: 20 }, after, ref);
    expect(batch).toHaveBeenCalledTimes(1);
    expect(batch.mock.calls[0]?.[1]).toBe(true);

    const check = (log: LevelLogStorage) => {
      expect([log.firstIndex(), log.lastIndex(), log.term(20), log.term(22)]).toEqual([21, 22, 4, 5]);
      expect(log.snapshotFile()).toEqual(ref);
      expect(log.initialState()).toEqual({ hardState: { term: 5, votedFor: null, commit: 20 }, config });
      expect(log.entries(21, 23, Infinity)).toEqual(after);
      expect(() => log.entries(10, 11, Infinity)).toThrow(StorageRangeError);
    };
    check(storage);
    expect(await readdir(storage.snapshotDir)).toEqual(['leader-20']);
    const reopened = await fixtures.reopen(storage);
    check(reopened);
    expect(await storedKeys(await closed(reopened))).toEqual(['c', 'd', 'e21', 'e22', 'h', 'p', 's']);
  });

  it("a snapshot behind the log's end still replaces the whole log; what it covers counts as committed", async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    await storage.save({ term: 2, votedFor: 'n2', commit: 5 }, entries(1, 10, termOf));
    const ref = await writeSnapshotFile(storage, 'leader-7', 7, 2);
    await storage.save(null, [], ref);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(7)]).toEqual([8, 7, 2]);
    expect(storage.initialState().hardState).toEqual({ term: 2, votedFor: 'n2', commit: 7 });
    const reopened = await fixtures.reopen(storage);
    expect([reopened.firstIndex(), reopened.lastIndex()]).toEqual([8, 7]);
    expect(reopened.initialState().hardState).toEqual({ term: 2, votedFor: 'n2', commit: 7 });
  });

  it("refuses a save that would leave the commit index beyond the log's end, which no restart could open", async () => {
    const storage = await logWith(10);
    const ref = await writeSnapshotFile(storage, 'leader-7', 7, 2);
    await expect(storage.save(null, [], ref)).rejects.toThrow(/commit index 10 beyond the last entry 7/);
    await expect(storage.save(null, [entries(4, 4, () => 5)[0] as Entry])).rejects.toThrow(/commit index 10 beyond the last entry 4/);
    expect([storage.firstIndex(), storage.lastIndex(), storage.snapshot()]).toEqual([1, 10, null]);
  });

  it('a failed install leaves the old log, in memory and on disk', async () => {
    const storage = await logWith(5);
    const ref = await writeSnapshotFile(storage, 'leader-20', 20, 4);
    spyOnBatches(storage).mockRejectedValueOnce(new Error('disk full'));
    await expect(storage.save({ term: 4, votedFor: null, commit: 20 }, [], ref)).rejects.toThrow('disk full');
    expect([storage.firstIndex(), storage.lastIndex(), storage.snapshot()]).toEqual([1, 5, null]);
    const reopened = await fixtures.reopen(storage);
    expect([reopened.firstIndex(), reopened.lastIndex(), reopened.snapshot()]).toEqual([1, 5, null]);
    expect(reopened.initialState().config).toEqual({ voters });
  });

  it('refuses a snapshot that is not newer than the stored one, entries that do not follow it, or a file not in place', async () => {
    const storage = await logWith(10);
    await storage.saveSnapshot(await writeSnapshotFile(storage, 'own-8', 8, 2));
    await expect(storage.save(null, [], await writeSnapshotFile(storage, 'leader-8', 8, 2))).rejects.toThrow(
      /snapshot at 8 is not newer than the stored one at 8/,
    );
    const ref = await writeSnapshotFile(storage, 'leader-20', 20, 4);
    await expect(
      storage.save(
        null,
        entries(22, 22, () => 4),
        ref,
      ),
    ).rejects.toThrow(/append at index 22 would leave a gap/);
    await expect(storage.save(null, [], { ...ref, file: 'not-there' })).rejects.toThrow(`${join(storage.snapshotDir, 'not-there')} is missing`);
    expect([storage.firstIndex(), storage.lastIndex(), storage.snapshot()?.index]).toEqual([1, 10, 8]);
  });
});

describe('a restart checks snapshots and compaction and reports what does not fit', () => {
  const compactedLog = async () => {
    const storage = await logWith(10);
    const ref = await writeSnapshotFile(storage, 'snap-8', 8, 2);
    await storage.saveSnapshot(ref);
    await storage.compact(6);
    return { dir: await closed(storage), file: join(storage.snapshotDir, ref.file), bytes: ref.bytes };
  };

  it('a missing snapshot file stops the open with its path', async () => {
    const { dir, file } = await compactedLog();
    await rm(file);
    const error = await fixtures.openStorage(dir, null).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LogCorruptionError);
    expect((error as Error).message).toContain(`snapshot file ${file} (index 8): missing`);
  });

  it('a snapshot file shorter than recorded stops the open with its path and both sizes', async () => {
    const { dir, file, bytes } = await compactedLog();
    await truncate(file, 10);
    await expect(fixtures.openStorage(dir, null)).rejects.toThrow(`snapshot file ${file} (index 8): 10 bytes, the log recorded ${bytes}`);
  });

  it('leftover files of the snapshot dir are removed at open; incoming/ and the latest snapshot stay', async () => {
    const { dir } = await compactedLog();
    const snapshots = join(dir, 'snapshots');
    await writeFile(join(snapshots, 'snap-12.tmp'), 'half written when the node died');
    await writeFile(join(snapshots, 'snap-4'), 'an older snapshot whose deletion was interrupted');
    await mkdir(join(snapshots, 'incoming'));
    await writeFile(join(snapshots, 'incoming', 'transfer'), 'resumable');
    const storage = await fixtures.openStorage(dir, null);
    expect(storage.leftoversRemoved).toEqual(['snap-12.tmp', 'snap-4']);
    expect((await readdir(snapshots)).sort()).toEqual(['incoming', 'snap-8']);
    expect(await readdir(join(snapshots, 'incoming'))).toEqual(['transfer']);
  });

  it('nothing is removed from a log that does not open', async () => {
    const { dir, file } = await compactedLog();
    await writeFile(join(dir, 'snapshots', 'snap-12.tmp'), 'evidence');
    await truncate(file, 1);
    await expect(fixtures.openStorage(dir, null)).rejects.toThrow(LogCorruptionError);
    expect((await readdir(join(dir, 'snapshots'))).sort()).toEqual(['snap-12.tmp', 'snap-8']);
  });

  it('a compacted log without its snapshot record is reported', async () => {
    const { dir } = await compactedLog();
    await tamper(dir, (db) => db.del(SNAPSHOT_KEY));
    await expect(fixtures.openStorage(dir, null)).rejects.toThrow(/snapshot record: missing, though entries up to 6 are compacted/);
  });

  it('a flipped bit in the snapshot record is reported as a checksum mismatch', async () => {
    const { dir } = await compactedLog();
    await tamper(dir, async (db) => {
      const value = new Uint8Array((await db.get(SNAPSHOT_KEY)) as Uint8Array);
      value[6] = (value[6] as number) ^ 0x10;
      await db.put(SNAPSHOT_KEY, value);
    });
    await expect(fixtures.openStorage(dir, null)).rejects.toThrow(/snapshot record: checksum mismatch/);
  });

  it('an entry still stored before the compacted point is reported with its index', async () => {
    const { dir } = await compactedLog();
    await tamper(dir, (db) => db.put(entryKey(6), new Uint8Array([0, 0, 0, 0])));
    const error = await fixtures.openStorage(dir, null).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LogCorruptionError);
    expect((error as LogCorruptionError).index).toBe(6);
    expect((error as Error).message).toContain('entry at index 6: still stored, though compaction deleted everything up to 6');
  });

  it('an entry still stored before the point the deletion of compacted entries reached is reported', async () => {
    const { dir } = await compactedLog();
    // Entries 4..6 may be leftovers of an interrupted deletion; 3 may not.
    await tamper(dir, async (db) => {
      await db.put(DELETED_BEFORE_KEY, encodeDeletedBefore(4));
      await db.put(entryKey(3), encodeEntry(entries(3, 3, termOf)[0] as Entry));
    });
    const error = await fixtures.openStorage(dir, null).catch((e: unknown) => e);
    expect((error as LogCorruptionError).index).toBe(3);
    expect((error as Error).message).toContain('entry at index 3: still stored, though compaction deleted everything up to 3');
  });

  it('a deleted-before record beyond the compacted point is reported', async () => {
    const { dir } = await compactedLog();
    await tamper(dir, (db) => db.put(DELETED_BEFORE_KEY, encodeDeletedBefore(9)));
    await expect(fixtures.openStorage(dir, null)).rejects.toThrow(
      /deleted-before record: says every entry before 9 is deleted, but the log is compacted only up to 6/,
    );
  });

  it('a compacted point the entries do not follow is reported as a missing entry', async () => {
    const { dir } = await compactedLog();
    await tamper(dir, async (db) => {
      await db.put(COMPACTED_KEY, encodeCompactedPoint({ index: 5, term: 2 }));
      await db.put(DELETED_BEFORE_KEY, encodeDeletedBefore(6));
    });
    await expect(fixtures.openStorage(dir, null)).rejects.toThrow(/entry at index 6: missing \(the next stored entry is 7\)/);
  });

  it('a snapshot record outside the log, or of another term than the log holds there, is reported', async () => {
    const { dir, bytes } = await compactedLog();
    const record = (index: number, term: number) =>
      encodeSnapshotRecord({ meta: { index, term, config: { voters } }, file: 'snap-8', bytes, sha256: 'ab'.repeat(32) });
    await tamper(dir, (db) => db.put(SNAPSHOT_KEY, record(12, 3)));
    await expect(fixtures.openStorage(dir, null)).rejects.toThrow(/snapshot record: snapshot at 12 is outside the log's range 6\.\.10/);
    await tamper(dir, (db) => db.put(SNAPSHOT_KEY, record(8, 3)));
    await expect(fixtures.openStorage(dir, null)).rejects.toThrow(/snapshot record: snapshot at 8 says term 3, the log holds term 2 there/);
  });
});

async function closed(storage: LevelLogStorage): Promise<string> {
  await fixtures.close(storage);
  return storage.path;
}
