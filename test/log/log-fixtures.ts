import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { LevelLogStorage, type SnapshotFileRef } from '../../src/log/level-storage.js';
import type { ClusterConfig, Entry } from '../../src/raft/types.js';

export const voters = ['n1', 'n2', 'n3'];

/** Temp dirs and open logs of one test file, released by `cleanUp` (call it in afterEach). */
export class LogFixtures {
  private readonly dirs: string[] = [];
  private readonly open: LevelLogStorage[] = [];

  async freshDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-log-'));
    this.dirs.push(dir);
    return dir;
  }

  /** `null`: open with the configuration already stored. */
  async openStorage(dir: string, voterList: readonly string[] | null = voters): Promise<LevelLogStorage> {
    const storage = await LevelLogStorage.open(dir, voterList === null ? {} : { voters: voterList });
    this.open.push(storage);
    return storage;
  }

  async close(storage: LevelLogStorage): Promise<void> {
    await storage.close();
    this.open.splice(this.open.indexOf(storage), 1);
  }

  /** A restart: close and open the same directory. */
  async reopen(storage: LevelLogStorage): Promise<LevelLogStorage> {
    await this.close(storage);
    return this.openStorage(storage.path, null);
  }

  async cleanUp(): Promise<void> {
    for (const storage of this.open.splice(0)) await storage.close().catch(() => undefined);
    for (const dir of this.dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  }
}

export const entry = (index: number, term: number, text = `cmd-${index}`): Entry => ({
  index,
  term,
  kind: 'command',
  data: new TextEncoder().encode(text),
});

/** Entries from..to, each with the term `termOf(index)`. */
export const entries = (from: number, to: number, termOf: (index: number) => number = () => 1): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, termOf(from + i)));

/** Writes a snapshot file into the log's snapshot dir, as the node does, and describes it. */
export async function writeSnapshotFile(
  storage: LevelLogStorage,
  file: string,
  index: number,
  term: number,
  config: ClusterConfig = { voters },
): Promise<SnapshotFileRef> {
  const content = Buffer.from(`state at ${index}/${term} `.repeat(20));
  await writeFile(join(storage.snapshotDir, file), content, { flush: true });
  return {
    meta: { index, term, config },
    file,
    bytes: content.byteLength,
    sha256: createHash('sha256').update(content).digest('hex'),
  };
}

/** Every key stored in a closed log's LevelDB, as printable strings ("e7" for the entry at 7). */
export async function storedKeys(dir: string): Promise<string[]> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: false });
  await db.open();
  const keys: string[] = [];
  try {
    for await (const key of db.keys()) {
      const prefix = String.fromCharCode(key[0] as number);
      keys.push(prefix === 'e' ? `e${new DataView(key.buffer, key.byteOffset).getBigUint64(1)}` : prefix);
    }
  } finally {
    await db.close();
  }
  return keys;
}

/** Changes a closed log's LevelDB behind its back, as a failing disk or a bad tool would. */
export async function tamper(dir: string, change: (db: Level<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: false });
  await db.open();
  try {
    await change(db);
  } finally {
    await db.close();
  }
}
