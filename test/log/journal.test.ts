import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogCorruptionError } from '../../src/log/errors.js';
import { JOURNAL_DIR_NAME, SEGMENT_BYTES } from '../../src/log/journal.js';
import type { LevelLogStorage } from '../../src/log/level-storage.js';
import type { Entry } from '../../src/raft/types.js';
import { entries, entry, LogFixtures } from './log-fixtures.js';

const fixtures = new LogFixtures();
afterEach(() => fixtures.cleanUp());

const journalFiles = async (storage: LevelLogStorage): Promise<string[]> => (await readdir(join(storage.path, JOURNAL_DIR_NAME))).sort();
const onlyJournalFile = async (storage: LevelLogStorage): Promise<string> => {
  const files = await journalFiles(storage);
  expect(files).toHaveLength(1);
  return join(storage.path, JOURNAL_DIR_NAME, files[0] as string);
};
/** A log closed with two journaled writes (entries 1..2, then 3..4) in its one journal file, and that file's bytes. */
const twoRecordsClosed = async (): Promise<{ storage: LevelLogStorage; file: string; bytes: Buffer }> => {
  const storage = await fixtures.openStorage(await fixtures.freshDir());
  storage.appendJournaled({ term: 1, votedFor: null, commit: 0 }, entries(1, 2));
  storage.appendJournaled(null, entries(3, 4));
  const file = await onlyJournalFile(storage);
  await fixtures.close(storage);
  return { storage, file, bytes: await readFile(file) };
};
interface Span {
  readonly start: number;
  readonly end: number;
}
/** Where each record of a journal file starts and ends, up to the unused (zero) space. */
const recordSpans = (bytes: Buffer): Span[] => {
  const spans: Span[] = [];
  for (let at = 0; at + 8 <= bytes.byteLength && bytes.readUInt32BE(at) !== 0; ) {
    const end = at + 8 + bytes.readUInt32BE(at);
    spans.push({ start: at, end });
    at = end;
  }
  return spans;
};
const held = (storage: LevelLogStorage): Entry[] => storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Number.POSITIVE_INFINITY);
const text = (e: Entry) => new TextDecoder().decode(e.data);

describe("the log's journal", () => {
  it('journaled writes that LevelDB never got are back after a restart, in order, truncations included', async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    storage.appendJournaled({ term: 1, votedFor: 'n2', commit: 0 }, entries(1, 5));
    storage.appendJournaled({ term: 2, votedFor: null, commit: 3 }, [entry(4, 2, 'new-4')]);
    // The process stops before any flush to LevelDB: only the journal has these writes.
    const reopened = await fixtures.reopen(storage);
    expect(reopened.initialState().hardState).toEqual({ term: 2, votedFor: null, commit: 3 });
    expect(held(reopened).map((e) => [e.index, e.term, text(e)])).toEqual([
      [1, 1, 'cmd-1'],
      [2, 1, 'cmd-2'],
      [3, 1, 'cmd-3'],
      [4, 2, 'new-4'],
    ]);
    // Replayed into LevelDB with fsync: the files are gone, and the next open finds the same log without them.
    expect(await journalFiles(reopened)).toEqual([]);
    const again = await fixtures.reopen(reopened);
    expect(again.lastIndex()).toBe(4);
    expect(again.initialState().hardState.term).toBe(2);
  });

  it("a leader's journaled save is served once durable, and is back after a restart that LevelDB never saw it before", async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    const saving = storage.saveJournaled({ term: 1, votedFor: 'n1', commit: 0 }, entries(1, 3));
    // Its fdatasync is on another thread: until it completes the log serves none of it, and refuses a second write.
    expect(storage.lastIndex()).toBe(0);
    expect(() => storage.appendJournaled(null, entries(1, 1))).toThrow('journaled save is in progress');
    await saving;
    expect(storage.lastIndex()).toBe(3);
    await storage.saveJournaled({ term: 2, votedFor: 'n1', commit: 2 }, [entry(3, 2, 'new-3')]);
    const reopened = await fixtures.reopen(storage);
    expect(held(reopened).map((e) => [e.index, e.term, text(e)])).toEqual([
      [1, 1, 'cmd-1'],
      [2, 1, 'cmd-2'],
      [3, 2, 'new-3'],
    ]);
    expect(reopened.initialState().hardState).toEqual({ term: 2, votedFor: 'n1', commit: 2 });
  });

  it('records LevelDB already holds are not laid again over the writes that followed them', async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    storage.appendJournaled({ term: 1, votedFor: 'n1', commit: 0 }, entries(1, 3));
    await storage.flushJournaled();
    // A later write on the disk queue replaces entry 2 onward; the journal file still holds the record of 1..3.
    await storage.save({ term: 2, votedFor: 'n3', commit: 1 }, [entry(2, 2, 'new-2')]);
    expect(await journalFiles(storage)).toHaveLength(1);
    const reopened = await fixtures.reopen(storage);
    expect(held(reopened).map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(reopened.initialState().hardState).toEqual({ term: 2, votedFor: 'n3', commit: 1 });
  });

  it('a write on the disk queue takes the journaled writes not yet flushed along, ahead of its own', async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    storage.appendJournaled({ term: 1, votedFor: null, commit: 0 }, entries(1, 2));
    await storage.save(null, entries(3, 4));
    // Nothing is left to flush, and LevelDB alone (journal files removed) holds all four entries.
    await storage.flushJournaled();
    await fixtures.close(storage);
    for (const file of await readdir(join(storage.path, JOURNAL_DIR_NAME))) await writeFile(join(storage.path, JOURNAL_DIR_NAME, file), '');
    const reopened = await fixtures.openStorage(storage.path, null);
    expect(reopened.lastIndex()).toBe(4);
  });

  it('a record cut short by a crash during its append is dropped, and the records before it kept', async () => {
    const { storage, file, bytes } = await twoRecordsClosed();
    const [, second] = recordSpans(bytes);
    // The second record's last bytes never reached the disk: the preallocated zeros are still there.
    bytes.fill(0, (second as Span).end - 5, (second as Span).end);
    await writeFile(file, bytes);
    const reopened = await fixtures.openStorage(storage.path, null);
    expect(reopened.lastIndex()).toBe(2);
    expect(reopened.journalTorn).toEqual({ file, offset: (second as Span).start });
  });

  it('a file starts preallocated: the zeros after the last record are unused space, not a record cut short', async () => {
    const { storage, file, bytes } = await twoRecordsClosed();
    expect(bytes.byteLength).toBe(SEGMENT_BYTES);
    const [, second] = recordSpans(bytes);
    expect((second as Span).end).toBeLessThan(SEGMENT_BYTES);
    const reopened = await fixtures.openStorage(storage.path, null);
    expect(reopened.lastIndex()).toBe(4);
    expect(reopened.journalTorn).toBeNull();
  });

  it('bytes other than zeros after the last record are corruption, not unused space', async () => {
    const { storage, file, bytes } = await twoRecordsClosed();
    const [, second] = recordSpans(bytes);
    bytes[(second as Span).end + 100] = 1;
    await writeFile(file, bytes);
    await expect(fixtures.openStorage(storage.path, null)).rejects.toThrow(`journal file ${file} at byte ${(second as Span).end}: checksum mismatch`);
  });

  it('a damaged record with records after it is corruption, named with the file and byte, and the directory is left as it was', async () => {
    const { storage, file, bytes } = await twoRecordsClosed();
    bytes[20] = (bytes[20] as number) ^ 0xff;
    await writeFile(file, bytes);
    const opening = fixtures.openStorage(storage.path, null);
    await expect(opening).rejects.toBeInstanceOf(LogCorruptionError);
    await expect(opening).rejects.toThrow(`journal file ${file} at byte 0: checksum mismatch`);
    expect((await readFile(file)).equals(bytes)).toBe(true);
  });

  it('a missing record is corruption: the journal must go on from where LevelDB stopped', async () => {
    const { storage, file, bytes } = await twoRecordsClosed();
    const firstRecord = 8 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
    await writeFile(file, bytes.subarray(firstRecord));
    await expect(fixtures.openStorage(storage.path, null)).rejects.toThrow('records 1..1 are missing');
  });

  it("a full journal file starts the next one, and the next flush, fsync'd, deletes the full one", async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    const big = 'x'.repeat(256 * 1024);
    let index = 0;
    while ((await journalFiles(storage)).length < 2) {
      index++;
      storage.appendJournaled(index === 1 ? { term: 1, votedFor: null, commit: 0 } : null, [entry(index, 1, big)]);
    }
    expect(index).toBeGreaterThan(SEGMENT_BYTES / (256 * 1024));
    await storage.flushJournaled();
    expect(await journalFiles(storage)).toHaveLength(1);
    const reopened = await fixtures.reopen(storage);
    expect(reopened.lastIndex()).toBe(index);
    expect(text(reopened.entries(index, index + 1, Number.POSITIVE_INFINITY)[0] as Entry)).toBe(big);
  });

  it('refuses a write that would leave a gap, before anything reaches the journal', async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    storage.appendJournaled({ term: 1, votedFor: null, commit: 0 }, entries(1, 2));
    expect(() => storage.appendJournaled(null, entries(5, 6))).toThrow('would leave a gap');
    const file = await onlyJournalFile(storage);
    const before = (await readFile(file)).byteLength;
    expect(() => storage.appendJournaled({ term: 1, votedFor: null, commit: 9 }, [])).toThrow('commit index 9 beyond the last entry 2');
    expect((await readFile(file)).byteLength).toBe(before);
  });
});
