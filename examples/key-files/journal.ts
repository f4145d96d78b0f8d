/**
 * The journal: an append-only file with one line per applied entry, in
 * index order, fsync'd before the entry touches a key file and before the
 * consumer's position is committed. Its last complete line is the last entry
 * applied to the directory, whatever the cluster's copy of the position says.
 *
 * A line is JSON, ended by a newline:
 *   {"index":42,"batch":40,"kind":"put","changes":[{"key":"6b31","after":"dmFsdWU="}]}
 * key is hex, after is base64 (null for a deletion); batch is the index of
 * the first entry of the batch the line was written with. A crash can leave
 * a last line without its newline: that line was never made durable, so no
 * key file was touched for it, and it is cut off.
 */
import { open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDirectory } from './key-files.js';

export interface JournalChange {
  readonly key: Uint8Array;
  /** The key's value after the entry; null when the entry deleted it. */
  readonly after: Uint8Array | null;
}

export interface JournalEntry {
  readonly index: number;
  /** The index of the first entry of the batch this entry was journaled with. */
  readonly batch: number;
  readonly kind: string;
  readonly changes: readonly JournalChange[];
}

export interface JournalContents {
  /** The complete lines, in file order. */
  readonly entries: readonly JournalEntry[];
  /** The length of the complete lines, in bytes. */
  readonly completeBytes: number;
  /** Bytes after the last newline: a line a crash cut short (0 when none). */
  readonly tornBytes: number;
}

const NEWLINE = 0x0a;

/** The line of one entry, newline included. */
export function journalLine(entry: JournalEntry): string {
  const changes = entry.changes.map((change) => ({
    key: Buffer.from(change.key).toString('hex'),
    after: change.after === null ? null : Buffer.from(change.after).toString('base64'),
  }));
  return `${JSON.stringify({ index: entry.index, batch: entry.batch, kind: entry.kind, changes })}\n`;
}

/** Reads a journal; a missing file is an empty journal. Throws, naming the file and line, on a complete line that is not a journal entry. */
export async function readJournal(path: string): Promise<JournalContents> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], completeBytes: 0, tornBytes: 0 };
    throw error;
  }
  return parseJournal(bytes, path);
}

export function parseJournal(bytes: Buffer, path: string): JournalContents {
  const completeBytes = bytes.lastIndexOf(NEWLINE) + 1;
  const text = bytes.subarray(0, completeBytes).toString('utf8');
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  const entries = lines.map((line, i) => parseLine(line, `${path} line ${i + 1}`));
  return { entries, completeBytes, tornBytes: bytes.length - completeBytes };
}

function parseLine(line: string, where: string): JournalEntry {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new Error(`${where}: not JSON (${(error as Error).message}); the journal is damaged`, { cause: error });
  }
  const record = parsed as { index?: unknown; batch?: unknown; kind?: unknown; changes?: unknown };
  const positive = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
  if (!positive(record.index) || !positive(record.batch) || typeof record.kind !== 'string' || !Array.isArray(record.changes)) {
    throw new Error(`${where}: not a journal entry (needs index, batch, kind, changes): ${line.slice(0, 200)}`);
  }
  const changes = record.changes.map((change: unknown, i): JournalChange => {
    const { key, after } = (change ?? {}) as { key?: unknown; after?: unknown };
    if (typeof key !== 'string' || !/^([0-9a-f]{2})+$/.test(key) || (after !== null && typeof after !== 'string')) {
      throw new Error(`${where}: change ${i + 1} needs a hex key and a base64 value or null`);
    }
    return { key: Buffer.from(key, 'hex'), after: after === null ? null : Buffer.from(after, 'base64') };
  });
  return { index: record.index, batch: record.batch, kind: record.kind, changes };
}

/** The entries of the last batch journaled: the only ones whose key files a crash may have left unwritten. */
export function lastBatch(entries: readonly JournalEntry[]): readonly JournalEntry[] {
  const last = entries.at(-1);
  if (last === undefined) return [];
  let first = entries.length - 1;
  while (first > 0 && (entries[first - 1] as JournalEntry).batch === last.batch) first--;
  return entries.slice(first);
}

export class Journal {
  private constructor(
    readonly path: string,
    private readonly handle: Awaited<ReturnType<typeof open>>,
    private last: number,
  ) {}

  /**
   * Opens the journal for appending, creating it if needed. A torn last
   * line is cut off (and the cut made durable) before anything is appended;
   * `recovered` says what was there.
   */
  static async open(path: string): Promise<{ journal: Journal; recovered: JournalContents }> {
    const recovered = await readJournal(path);
    const handle = await open(path, 'a');
    try {
      if (recovered.tornBytes > 0) {
        await handle.truncate(recovered.completeBytes);
        await handle.sync();
      }
      // The file's name must be durable too, or a crash could lose the whole journal.
      await fsyncDirectory(dirname(path));
    } catch (error) {
      await handle.close();
      throw new Error(`cannot prepare journal ${path}: ${(error as Error).message}`, { cause: error });
    }
    return { journal: new Journal(path, handle, recovered.entries.at(-1)?.index ?? 0), recovered };
  }

  /** The index of the last entry journaled; 0 when none. */
  get lastIndex(): number {
    return this.last;
  }

  /** Appends the entries with one write and one fsync: when it resolves, they are durable. */
  async append(entries: readonly JournalEntry[]): Promise<void> {
    if (entries.length === 0) return;
    try {
      await this.handle.appendFile(entries.map(journalLine).join(''));
      await this.handle.datasync();
    } catch (error) {
      throw new Error(`cannot append to journal ${this.path} (entries ${entries[0]?.index}..${entries.at(-1)?.index}): ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.last = (entries.at(-1) as JournalEntry).index;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
