import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirError, LogCorruptionError } from '../../src/log/errors.js';
import { LevelLogStorage } from '../../src/log/level-storage.js';
import { entries, LogFixtures, writeSnapshotFile } from './log-fixtures.js';

const run = promisify(execFile);
const fixtures = new LogFixtures();
afterEach(() => fixtures.cleanUp());

const CHILD = fileURLToPath(new URL('./open-log-child.ts', import.meta.url));
const NOBODY = 65534;

/** A stopped node's data dir holding a few MB, enough for LevelDB to have written table files. */
async function stoppedNodeDir(): Promise<{ dir: string; lastIndex: number }> {
  const storage = await fixtures.openStorage(await fixtures.freshDir());
  const payload = 'x'.repeat(1024);
  for (let from = 1; from <= 6000; from += 500) {
    const batch = entries(from, from + 499).map((e) => ({ ...e, data: new TextEncoder().encode(payload + e.index) }));
    await storage.save({ term: 1, votedFor: 'n1', commit: from + 499 }, batch);
  }
  await storage.saveSnapshot(await writeSnapshotFile(storage, 'snap-5000', 5000, 1));
  await storage.compact(4000);
  await fixtures.close(storage);
  return { dir: storage.path, lastIndex: storage.lastIndex() };
}

/** Every file of the directory with its size. */
async function sizes(dir: string): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (const name of await readdir(dir)) result[name] = (await stat(join(dir, name))).size;
  return result;
}

/** Opens the log in another process, as `nobody` or inside `unshare`, and returns what it printed. */
async function openElsewhere(command: string, args: string[], options: { uid?: number; gid?: number } = {}) {
  const { stdout } = await run(command, args, { ...options, cwd: fileURLToPath(new URL('../..', import.meta.url)) });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as { opened: boolean; name?: string; message?: string };
}

/** The same outcome as the child prints, for a user whom permission bits stop. */
async function openHere(path: string): Promise<{ opened: boolean; name?: string; message?: string }> {
  try {
    await fixtures.close(await fixtures.openStorage(path));
    return { opened: true };
  } catch (error) {
    return { opened: false, name: (error as Error).name, message: (error as Error).message };
  }
}

describe('a data dir is never silently replaced', () => {
  it('a deleted CURRENT stops the open naming the file, and not one byte of the store is touched', async () => {
    const { dir, lastIndex } = await stoppedNodeDir();
    const current = await readFile(join(dir, 'CURRENT'));
    await unlink(join(dir, 'CURRENT'));
    const before = await sizes(dir);
    expect(Object.keys(before).some((name) => name.endsWith('.ldb'))).toBe(true);

    for (const attempt of [1, 2]) {
      const error = await LevelLogStorage.open(dir).catch((e: unknown) => e);
      expect(error, `attempt ${attempt}`).toBeInstanceOf(LogCorruptionError);
      expect((error as Error).message).toContain(`LevelDB file ${join(dir, 'CURRENT')}: missing`);
      expect((error as Error).message).toContain('refusing to create a new store');
    }
    expect(await sizes(dir)).toEqual(before);

    // The operator restores CURRENT: everything is still there.
    await writeFile(join(dir, 'CURRENT'), current);
    const storage = await fixtures.openStorage(dir, null);
    expect([storage.firstIndex(), storage.lastIndex(), storage.snapshot()?.index]).toEqual([4001, lastIndex, 5000]);
    expect(storage.initialState().hardState).toEqual({ term: 1, votedFor: 'n1', commit: lastIndex });
  });

  it('a damaged CURRENT, or one naming a missing MANIFEST, is reported with the file', async () => {
    const { dir } = await stoppedNodeDir();
    const current = join(dir, 'CURRENT');
    const manifest = (await readFile(current, 'utf8')).trim();

    await writeFile(current, 'MANIFEST-0000\u0000\u0000');
    await expect(LevelLogStorage.open(dir)).rejects.toThrow(`LevelDB file ${current}: damaged`);

    await writeFile(current, `${manifest}\n`);
    await rename(join(dir, manifest), join(dir, `${manifest}.moved`));
    const error = await LevelLogStorage.open(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LogCorruptionError);
    expect((error as Error).message).toContain(`LevelDB file ${join(dir, manifest)}: missing (named by ${current})`);
  });

  it('a damaged MANIFEST is reported as corruption by LevelDB, with the store left in place', async () => {
    const { dir } = await stoppedNodeDir();
    const manifest = (await readFile(join(dir, 'CURRENT'), 'utf8')).trim();
    await writeFile(join(dir, manifest), Buffer.alloc(200, 0xab));
    const error = await LevelLogStorage.open(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LogCorruptionError);
    expect((error as Error).message).toMatch(new RegExp(`corrupt raft log in ${dir}: LevelDB store: Corruption`));
    expect((await readdir(dir)).some((name) => name.endsWith('.ldb'))).toBe(true);
  });

  it('a damaged table file is reported as corruption, whichever record it hits', async () => {
    const { dir } = await stoppedNodeDir();
    // A restart moves LevelDB's write-ahead log into a table file: all entries are in tables now.
    await fixtures.close(await fixtures.openStorage(dir, null));
    const tables = (await readdir(dir)).filter((name) => name.endsWith('.ldb'));
    let largest = { name: '', size: 0 };
    for (const name of tables) {
      const { size } = await stat(join(dir, name));
      if (size > largest.size) largest = { name, size };
    }
    const bytes = await readFile(join(dir, largest.name));
    for (let i = Math.floor(bytes.length / 2); i < Math.floor(bytes.length / 2) + 64; i++) bytes[i] = (bytes[i] as number) ^ 0xff;
    await writeFile(join(dir, largest.name), bytes);
    const error = await LevelLogStorage.open(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LogCorruptionError);
    expect((error as Error).message).toContain(`corrupt raft log in ${dir}: `);
  });

  it('a directory that holds other files is not made into a log', async () => {
    const dir = await fixtures.freshDir();
    await writeFile(join(dir, 'notes.txt'), 'not a raft log');
    const error = await LevelLogStorage.open(dir, { voters: ['n1'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirError);
    expect((error as Error).message).toBe(
      `cannot use ${dir} as a raft log directory: the directory is not empty and holds no raft log (it holds notes.txt)`,
    );
    expect(await readdir(dir)).toEqual(['notes.txt']);
  });

  it('a new log is created where nothing is: a missing directory (with its parents) or an empty one', async () => {
    const base = await fixtures.freshDir();
    const nested = await fixtures.openStorage(join(base, 'a', 'b', 'n1'));
    const empty = join(base, 'empty');
    await mkdir(empty);
    const inEmpty = await fixtures.openStorage(empty);
    for (const storage of [nested, inEmpty]) {
      expect([storage.firstIndex(), storage.lastIndex(), storage.snapshot()]).toEqual([1, 0, null]);
      expect(await readdir(storage.snapshotDir)).toEqual([]);
    }
  });
});

describe('a data dir that cannot be used is named with the cause', () => {
  it('a data path that is a regular file', async () => {
    const file = join(await fixtures.freshDir(), 'data');
    await writeFile(file, 'precious');
    const error = await LevelLogStorage.open(file, { voters: ['n1'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirError);
    expect((error as Error).message).toBe(`cannot use ${file} as a raft log directory: it is a regular file, not a directory`);
    expect(await readFile(file, 'utf8')).toBe('precious');
  });

  it('a data path below a regular file', async () => {
    const file = join(await fixtures.freshDir(), 'data');
    await writeFile(file, 'precious');
    await expect(LevelLogStorage.open(join(file, 'n1'), { voters: ['n1'] })).rejects.toThrow(
      `cannot use ${join(file, 'n1')} as a raft log directory: ENOTDIR: not a directory`,
    );
  });

  it('a data dir another instance has open', async () => {
    const storage = await fixtures.openStorage(await fixtures.freshDir());
    const error = await LevelLogStorage.open(storage.path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirError);
    expect((error as Error).message).toMatch(/another process has it open \(IO error: lock .*LOCK: already held by process\)/);
  });

  // Root ignores permission bits, so as root the log is opened by `nobody` in a child process.
  it('a data dir without write permission, for an existing log and a new one', async () => {
    const { dir: stopped } = await stoppedNodeDir();
    // A parent of the test's own: the permission changes below must never reach the shared temp dir.
    const parent = await fixtures.freshDir();
    const dir = join(parent, 'n1');
    await rename(stopped, dir);
    const fresh = join(parent, 'new-node');
    await chmod(parent, 0o755);
    await chmod(dir, 0o555);
    try {
      const asUser = (path: string) =>
        process.getuid?.() === 0 ? openElsewhere(process.execPath, ['--import', 'tsx', CHILD, path], { uid: NOBODY, gid: NOBODY }) : openHere(path);
      expect(await asUser(dir)).toEqual({
        opened: false,
        name: 'DataDirError',
        message: `cannot use ${dir} as a raft log directory: the directory is not writable (EACCES: permission denied)`,
      });
      await chmod(parent, 0o555);
      expect(await asUser(fresh)).toEqual({
        opened: false,
        name: 'DataDirError',
        message: `cannot use ${fresh} as a raft log directory: cannot create ${fresh} (EACCES: permission denied)`,
      });
    } finally {
      await chmod(parent, 0o755);
      await chmod(dir, 0o755);
    }
  });

  // A read-only file system stops root too: a read-only bind mount in a mount namespace of the child's own.
  it('a data dir on a read-only file system, for an existing log and a new one', async () => {
    const { dir } = await stoppedNodeDir();
    const script = 'mount --bind -o ro "$1" "$1" && exec "$2" --import tsx "$3" "$4"';
    const readOnly = (mounted: string, path: string) =>
      openElsewhere('unshare', ['--map-root-user', '--mount', 'sh', '-c', script, 'sh', mounted, process.execPath, CHILD, path]);
    expect(await readOnly(dir, dir)).toEqual({
      opened: false,
      name: 'DataDirError',
      message: `cannot use ${dir} as a raft log directory: the directory is not writable (EROFS: read-only file system)`,
    });
    const parent = await fixtures.freshDir();
    const fresh = join(parent, 'new-node', 'n1');
    expect(await readOnly(parent, fresh)).toEqual({
      opened: false,
      name: 'DataDirError',
      message: `cannot use ${fresh} as a raft log directory: cannot create ${join(parent, 'new-node')} (EROFS: read-only file system)`,
    });
    const storage = await fixtures.openStorage(dir, null);
    expect(storage.lastIndex()).toBe(6000);
  });
});
