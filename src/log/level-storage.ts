import { Level } from 'level';
import { takeWithinBytes, type RaftStorage } from '../raft/storage.js';
import type { ClusterConfig, Entry, HardState } from '../raft/types.js';
import {
  CONFIG_KEY,
  decodeConfig,
  decodeEntry,
  decodeHardState,
  encodeConfig,
  encodeEntry,
  encodeHardState,
  ENTRY_RANGE,
  entryKey,
  HARD_STATE_KEY,
  indexOfEntryKey,
  RecordError,
} from './codec.js';
import { LogCorruptionError } from './errors.js';

type Bytes = Uint8Array;
type Db = Level<Bytes, Bytes>;
type BatchOp = { type: 'put'; key: Bytes; value: Bytes } | { type: 'del'; key: Bytes };

export interface OpenOptions {
  /**
   * The voters of a new cluster: written on first open. On later opens it must
   * match what is stored (a node cannot silently join another cluster).
   */
  readonly voters?: readonly string[];
}

const EMPTY_HARD_STATE: HardState = { term: 0, votedFor: null, commit: 0 };

/**
 * The Raft log and hard state in LevelDB, serving the core's synchronous reads
 * from an in-memory copy that is written through. Every save is one atomic
 * LevelDB batch written with sync (fsync) before it resolves, so an entry, a
 * term or a vote is on disk before anything that depends on it leaves the node.
 * Every record carries a checksum, verified when the log is opened; a bad
 * record stops the node with the file and index named.
 *
 * The whole log is held in memory until snapshots (a later issue) let it be
 * compacted.
 */
export class LevelLogStorage implements RaftStorage {
  private entriesInMemory: Entry[];
  private hardState: HardState;
  private saving = false;

  private constructor(
    private readonly db: Db,
    readonly path: string,
    private readonly config: ClusterConfig,
    hardState: HardState,
    entries: Entry[],
  ) {
    this.hardState = hardState;
    this.entriesInMemory = entries;
  }

  static async open(path: string, options: OpenOptions = {}): Promise<LevelLogStorage> {
    const db: Db = new Level<Bytes, Bytes>(path, { keyEncoding: 'view', valueEncoding: 'view' });
    try {
      await db.open();
    } catch (error) {
      throw new Error(`cannot open the raft log in ${path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      const config = await readConfig(db, path, options.voters);
      const hardState = await readRecord(db, HARD_STATE_KEY, path, 'hard state', decodeHardState);
      const entries = await readEntries(db, path);
      const storedHardState = hardState ?? EMPTY_HARD_STATE;
      const lastIndex = entries.length;
      if (storedHardState.commit > lastIndex) {
        throw new LogCorruptionError(
          path,
          'hard state',
          `commit index ${storedHardState.commit} is beyond the last stored entry ${lastIndex}`,
        );
      }
      return new LevelLogStorage(db, path, config, storedHardState, entries);
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  initialState(): { hardState: HardState; config: ClusterConfig } {
    return { hardState: this.hardState, config: this.config };
  }

  firstIndex(): number {
    return 1;
  }

  lastIndex(): number {
    return this.entriesInMemory.length;
  }

  term(index: number): number {
    if (index === 0) return 0;
    const entry = this.entriesInMemory[index - 1];
    if (entry === undefined) {
      throw new RangeError(`term(${index}) is outside the stored range 0..${this.lastIndex()} (log in ${this.path})`);
    }
    return entry.term;
  }

  entries(from: number, to: number, maxBytes: number): Entry[] {
    if (from < 1 || to > this.lastIndex() + 1 || from > to) {
      throw new RangeError(`entries [${from}, ${to}) are outside the stored range 1..${this.lastIndex()} (log in ${this.path})`);
    }
    return takeWithinBytes(from, to, maxBytes, (index) => this.entriesInMemory[index - 1] as Entry);
  }

  /**
   * Persists one output of the core: the hard state and the entries, which
   * replace the log from entries[0].index onward. One batch, fsync'd —
   * except when all that changed is the commit index: Raft does not need it
   * durable (a restarted node relearns it from the leader), so that batch is
   * written without waiting for the disk, and the next fsync'd batch, which
   * goes to the same LevelDB write-ahead log after it, makes it durable too.
   */
  async save(hardState: HardState | null, entries: readonly Entry[]): Promise<void> {
    if (this.saving) throw new Error(`log in ${this.path}: save called while another save is in progress`);
    const ops: BatchOp[] = [];
    const first = entries[0];
    if (first !== undefined) {
      this.checkAppend(entries);
      const newLast = first.index + entries.length - 1;
      for (let index = newLast + 1; index <= this.lastIndex(); index++) ops.push({ type: 'del', key: entryKey(index) });
      for (const entry of entries) ops.push({ type: 'put', key: entryKey(entry.index), value: encodeEntry(entry) });
    }
    if (hardState !== null) ops.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardState(hardState) });
    if (ops.length === 0) return;
    this.saving = true;
    try {
      const commitOnly =
        first === undefined &&
        hardState !== null &&
        hardState.term === this.hardState.term &&
        hardState.votedFor === this.hardState.votedFor;
      await this.db.batch(ops, { sync: !commitOnly });
    } finally {
      this.saving = false;
    }
    if (first !== undefined) {
      this.entriesInMemory.length = first.index - 1;
      for (const entry of entries) this.entriesInMemory.push(entry);
    }
    if (hardState !== null) this.hardState = hardState;
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private checkAppend(entries: readonly Entry[]): void {
    const first = entries[0] as Entry;
    if (first.index < 1 || first.index > this.lastIndex() + 1) {
      throw new RangeError(
        `log in ${this.path}: append at index ${first.index} would leave a gap (last index ${this.lastIndex()})`,
      );
    }
    entries.forEach((entry, i) => {
      if (entry.index !== first.index + i) {
        throw new RangeError(`log in ${this.path}: entries to append are not contiguous at index ${entry.index}`);
      }
    });
  }
}

async function readRecord<T>(
  db: Db,
  key: Bytes,
  path: string,
  record: string,
  decode: (value: Bytes) => T,
): Promise<T | null> {
  const value = await db.get(key);
  if (value === undefined) return null;
  try {
    return decode(value);
  } catch (error) {
    if (error instanceof RecordError) throw new LogCorruptionError(path, record, error.message);
    throw error;
  }
}

async function readConfig(db: Db, path: string, voters: readonly string[] | undefined): Promise<ClusterConfig> {
  const stored = await readRecord(db, CONFIG_KEY, path, 'cluster configuration', decodeConfig);
  if (stored === null) {
    if (voters === undefined || voters.length === 0) {
      throw new Error(`the raft log in ${path} has no cluster configuration and none was given (--peers)`);
    }
    const config = { voters: [...voters] };
    await db.put(CONFIG_KEY, encodeConfig(config), { sync: true });
    return config;
  }
  if (voters !== undefined && !sameMembers(stored.voters, voters)) {
    throw new Error(
      `the raft log in ${path} belongs to a cluster of ${stored.voters.join(', ')}, not ${voters.join(', ')}`,
    );
  }
  return stored;
}

async function readEntries(db: Db, path: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  for await (const [key, value] of db.iterator(ENTRY_RANGE)) {
    let index: number;
    try {
      index = indexOfEntryKey(key);
    } catch (error) {
      throw new LogCorruptionError(path, `entry after index ${entries.length}`, (error as Error).message);
    }
    const expected = entries.length + 1;
    if (index !== expected) {
      throw new LogCorruptionError(path, `entry at index ${expected}`, `missing (the next stored entry is ${index})`, expected);
    }
    let entry: Entry;
    try {
      entry = decodeEntry(value);
    } catch (error) {
      if (error instanceof RecordError) throw new LogCorruptionError(path, `entry at index ${index}`, error.message, index);
      throw error;
    }
    if (entry.index !== index) {
      throw new LogCorruptionError(path, `entry at index ${index}`, `record says index ${entry.index}`, index);
    }
    const previous = entries[entries.length - 1];
    if (previous !== undefined && entry.term < previous.term) {
      throw new LogCorruptionError(
        path,
        `entry at index ${index}`,
        `term ${entry.term} is lower than the previous entry's term ${previous.term}`,
        index,
      );
    }
    entries.push(entry);
  }
  return entries;
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\0') === [...b].sort().join('\0');
}
