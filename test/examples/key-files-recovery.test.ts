/**
 * The key-files example's local pieces, without a cluster: the journal's
 * format and its torn last line, the repair made on start (the last batch's
 * key files written again, whatever a crash left of them), the directory
 * lock, the key file names, and the journal check the crash test relies on.
 */
import { spawn } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type JournalEntry, journalLine, lastBatch, parseJournal, readJournal } from '../../examples/key-files/journal.js';
import { keyFileName, MAX_HEX_NAMED_KEY_BYTES } from '../../examples/key-files/key-files.js';
import { JOURNAL_FILE, KEYS_DIR, LOCK_FILE, recoverView } from '../../examples/key-files/subscriber.js';
import { duplicatedIndexes, journalProblems } from './journal-check.js';

const tempDirs: string[] = [];
afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-key-files-unit-'));
  tempDirs.push(dir);
  return dir;
}

const bytes = (text: string): Uint8Array => Buffer.from(text);
const put = (index: number, batch: number, key: string, value: string): JournalEntry => ({
  index,
  batch,
  kind: 'put',
  changes: [{ key: bytes(key), after: bytes(value) }],
});
const del = (index: number, batch: number, key: string): JournalEntry => ({
  index,
  batch,
  kind: 'delete',
  changes: [{ key: bytes(key), after: null }],
});
const keyFile = (dir: string, key: string): string => join(dir, KEYS_DIR, keyFileName(bytes(key)));
const contentOf = (file: string): Promise<string | null> => readFile(file, 'utf8').catch(() => null);

describe('the journal', () => {
  it('reads the complete lines and counts the bytes of a last line a crash tore', () => {
    const complete = journalLine(put(2, 2, 'a', '1')) + journalLine(del(3, 2, 'a'));
    const torn = '{"index":4,"batch":4,"ki';
    const contents = parseJournal(Buffer.from(complete + torn), 'j.log');
    expect(contents.entries.map((entry) => [entry.index, entry.batch, entry.kind])).toEqual([
      [2, 2, 'put'],
      [3, 2, 'delete'],
    ]);
    expect(Buffer.from(contents.entries[0]!.changes[0]!.after!).toString()).toBe('1');
    expect(contents.entries[1]!.changes[0]!.after).toBeNull();
    expect(contents).toMatchObject({ completeBytes: Buffer.byteLength(complete), tornBytes: torn.length });
  });

  it('reports a complete line that is no entry as damage, naming the file and the line', () => {
    const text = `${journalLine(put(2, 2, 'a', '1'))}{"index":"three"}\n`;
    expect(() => parseJournal(Buffer.from(text), '/views/j.log')).toThrow(/\/views\/j\.log line 2: not a journal entry/);
    expect(() => parseJournal(Buffer.from('not json\n'), 'j.log')).toThrow(/j\.log line 1: not JSON/);
  });

  it("takes as last batch the lines that share the last line's batch", () => {
    const entries = [put(2, 2, 'a', '1'), put(3, 2, 'b', '1'), put(5, 5, 'a', '2'), del(6, 5, 'b')];
    expect(lastBatch(entries).map((entry) => entry.index)).toEqual([5, 6]);
    expect(lastBatch([])).toEqual([]);
  });
});

describe('recovery on start', () => {
  it("cuts off a torn line, writes the last batch's key files again and removes temporary files; earlier files stay as they are", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, KEYS_DIR));
    // Batch 2 was applied. Batch 4 was journaled, then the crash came while its files were written; entry 7's line is torn.
    const journal = [put(2, 2, 'a', 'a1'), put(3, 2, 'd', 'd1'), put(4, 4, 'b', 'b2'), del(5, 4, 'a'), put(6, 4, 'c', 'c3')]
      .map(journalLine)
      .join('');
    const torn = '{"index":7,"batch":7,"kind":"put","cha';
    await writeFile(join(dir, JOURNAL_FILE), journal + torn);
    await writeFile(keyFile(dir, 'a'), 'a1');
    await writeFile(keyFile(dir, 'b'), 'b');
    await writeFile(keyFile(dir, 'd'), 'd1');
    await writeFile(join(dir, KEYS_DIR, `.tmp-${keyFileName(bytes('c'))}`), 'c');

    const printed: string[] = [];
    const view = await recoverView(dir, (line) => printed.push(line));
    try {
      expect(printed[0]).toBe(
        `journal: cut off a torn last line (${torn.length} bytes after offset ${Buffer.byteLength(journal)}); that entry was never applied`,
      );
      expect(printed[1]).toBe('journal: 5 entries, last applied index 6; re-applied the key files of its last batch (indexes 4..6)');
      expect(view.journal.lastIndex).toBe(6);
      expect((await stat(join(dir, JOURNAL_FILE))).size).toBe(Buffer.byteLength(journal));

      expect(await contentOf(keyFile(dir, 'a'))).toBeNull();
      expect(await contentOf(keyFile(dir, 'b'))).toBe('b2');
      expect(await contentOf(keyFile(dir, 'c'))).toBe('c3');
      expect(await contentOf(keyFile(dir, 'd'))).toBe('d1');
      expect((await readdir(join(dir, KEYS_DIR))).sort()).toEqual([keyFileName(bytes('b')), keyFileName(bytes('c')), keyFileName(bytes('d'))].sort());

      // What is appended next starts on a line of its own.
      await view.journal.append([put(7, 7, 'e', 'e7')]);
      const after = await readJournal(join(dir, JOURNAL_FILE));
      expect(after.entries.map((entry) => entry.index)).toEqual([2, 3, 4, 5, 6, 7]);
      expect(after.tornBytes).toBe(0);
    } finally {
      await view.close();
    }
  });

  it('starts an empty view in an empty directory', async () => {
    const dir = join(await tempDir(), 'view');
    const printed: string[] = [];
    const view = await recoverView(dir, (line) => printed.push(line));
    await view.close();
    expect(printed).toEqual(['journal: 0 entries, last applied index 0']);
    expect((await readdir(dir)).sort()).toEqual([JOURNAL_FILE, KEYS_DIR].sort());
  });
});

describe('the directory lock', () => {
  it('refuses a second subscriber on a directory in use, and lets one in once the first has closed', async () => {
    const dir = await tempDir();
    const first = await recoverView(dir, () => undefined);
    await expect(recoverView(dir, () => undefined)).rejects.toThrow(
      new RegExp(`held by process ${process.pid}: another subscriber runs on this directory`),
    );
    await first.close();
    const second = await recoverView(dir, () => undefined);
    await second.close();
  });

  it('takes over a lock left by a process that no longer runs (a crash)', async () => {
    const dir = await tempDir();
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.once('exit', resolve));
    await appendFile(join(dir, LOCK_FILE), `${gone.pid}\n`);
    const view = await recoverView(dir, () => undefined);
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid));
    await view.close();
  });
});

describe('key file names', () => {
  it('are the hex of the key, or for a key too long for a file name, sha256- and its hash; never over 255 bytes with the temporary prefix', () => {
    expect(keyFileName(bytes('user/1'))).toBe('757365722f31');
    const longest = new Uint8Array(MAX_HEX_NAMED_KEY_BYTES).fill(0x61);
    expect(keyFileName(longest)).toBe('61'.repeat(MAX_HEX_NAMED_KEY_BYTES));
    const tooLong = new Uint8Array(MAX_HEX_NAMED_KEY_BYTES + 1).fill(0x61);
    expect(keyFileName(tooLong)).toMatch(/^sha256-[0-9a-f]{64}$/);
    const largest = new Uint8Array(4096).fill(0x62);
    expect(keyFileName(largest)).not.toBe(keyFileName(tooLong));
    for (const key of [longest, tooLong, largest]) expect(`.tmp-${keyFileName(key)}`.length).toBeLessThanOrEqual(255);
  });
});

describe('the journal check', () => {
  it('finds nothing wrong with every changing index once, in order', () => {
    expect(journalProblems([2, 4, 5, 9], [2, 4, 5, 9])).toEqual([]);
  });

  it('reports an index listed twice, an index out of order, a changing index missing and an index that changed nothing', () => {
    const journaled = [2, 4, 5, 4, 5, 7, 11];
    expect(duplicatedIndexes(journaled)).toEqual([4, 5]);
    expect(journalProblems(journaled, [2, 4, 5, 7, 9])).toEqual([
      'duplicate: index 4 journaled 2 times (lines 2, 4): applied more than once',
      'duplicate: index 5 journaled 2 times (lines 3, 5): applied more than once',
      'order: index 4 on line 4 follows 5 on line 3',
      'missing: index 9 changed a key and is not in the journal',
      'unexpected: index 11 is in the journal and changed no key',
    ]);
  });
});
