import { constants } from 'node:fs';
import { access, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Level } from 'level';
import { DataDirError, LogCorruptionError } from './errors.js';

export type Bytes = Uint8Array;
export type Db = Level<Bytes, Bytes>;

/** What a raft log directory may hold: LevelDB's files and the snapshots folder. */
const STORE_FILE = /^(CURRENT|LOCK|LOG|LOG\.old|MANIFEST-\d+|\d+\.(log|ldb|sst|dbtmp)|snapshots|journal)$/;
const MANIFEST_NAME = /^MANIFEST-\d+$/;

/**
 * Opens the LevelDB store in `path`, creating one only where there is nothing
 * to lose: the directory does not exist or is empty. LevelDB, asked to create
 * a store where its CURRENT file is missing, makes an empty one and then
 * deletes every table file it does not know, so a store with a lost CURRENT
 * would silently become an empty log (term, vote and entries gone). Here any
 * directory that holds something must hold an intact store, or the open
 * fails naming the file and the cause.
 */
export async function openStore(path: string): Promise<Db> {
  const fresh = await isFreshDataDir(path);
  const db: Db = new Level<Bytes, Bytes>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    // errorIfExists: a store that appeared since the check is not overwritten either.
    await db.open({ createIfMissing: fresh, errorIfExists: fresh });
  } catch (error) {
    throw levelOpenError(path, error);
  }
  return db;
}

/** True when `path` is a directory with something in it (without creating or checking anything). */
export async function holdsData(path: string): Promise<boolean> {
  try {
    return (await readdir(path)).length > 0;
  } catch (error) {
    if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return codeOf(error) === 'ENOTDIR';
    throw new DataDirError(path, describeFsError(error), { cause: error });
  }
}

/** True when a new store may be created in `path`; throws when `path` cannot hold one or holds a damaged one. */
async function isFreshDataDir(path: string): Promise<boolean> {
  let names: string[];
  try {
    const stats = await stat(path);
    if (!stats.isDirectory()) {
      throw new DataDirError(path, `it is a ${stats.isFile() ? 'regular file' : 'special file'}, not a directory`);
    }
    await access(path, constants.R_OK | constants.W_OK | constants.X_OK).catch((error: unknown) => {
      throw new DataDirError(path, `the directory is not writable (${describeFsError(error)})`, { cause: error });
    });
    names = await readdir(path);
  } catch (error) {
    if (error instanceof DataDirError) throw error;
    if (codeOf(error) !== 'ENOENT') throw new DataDirError(path, describeFsError(error), { cause: error });
    await createDirectory(path);
    return true;
  }
  if (names.length === 0) return true;
  await checkCurrentFile(path, names);
  return false;
}

/**
 * Creates `path` and its missing parents one by one: a recursive mkdir reports
 * ENOENT where the real cause is EROFS or EACCES on the first missing level.
 */
async function createDirectory(path: string): Promise<void> {
  const missing: string[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    const exists = await stat(dir).then(
      () => true,
      (error: unknown) => {
        if (codeOf(error) === 'ENOENT' && dirname(dir) !== dir) return false;
        throw new DataDirError(path, `cannot create it: ${dir}: ${describeFsError(error)}`, { cause: error });
      },
    );
    if (exists) break;
    missing.unshift(dir);
  }
  for (const dir of missing) {
    await mkdir(dir).catch((error: unknown) => {
      if (codeOf(error) === 'EEXIST') return;
      throw new DataDirError(path, `cannot create ${dir} (${describeFsError(error)})`, { cause: error });
    });
  }
}

/**
 * LevelDB's CURRENT names the MANIFEST that lists the store's table files;
 * without both, LevelDB would treat the directory as empty.
 */
async function checkCurrentFile(path: string, names: readonly string[]): Promise<void> {
  const currentPath = join(path, 'CURRENT');
  const listing = names.slice().sort().slice(0, 8).join(', ') + (names.length > 8 ? ', ...' : '');
  if (!names.includes('CURRENT')) {
    if (!names.some((name) => STORE_FILE.test(name))) {
      throw new DataDirError(path, `the directory is not empty and holds no raft log (it holds ${listing})`);
    }
    throw new LogCorruptionError(
      path,
      `LevelDB file ${currentPath}`,
      `missing, though the directory holds a store (${listing}); refusing to create a new store over it`,
    );
  }
  let content: string;
  try {
    content = await readFile(currentPath, 'utf8');
  } catch (error) {
    throw new LogCorruptionError(path, `LevelDB file ${currentPath}`, `unreadable (${describeFsError(error)})`);
  }
  const manifest = content.endsWith('\n') ? content.slice(0, -1) : null;
  if (manifest === null || !MANIFEST_NAME.test(manifest)) {
    throw new LogCorruptionError(
      path,
      `LevelDB file ${currentPath}`,
      `damaged: it should name a MANIFEST file and a newline, it holds ${JSON.stringify(content.slice(0, 40))}`,
    );
  }
  const manifestPath = join(path, manifest);
  const size = await stat(manifestPath).then(
    (stats) => (stats.isFile() ? stats.size : -1),
    (error: unknown) => {
      throw new LogCorruptionError(
        path,
        `LevelDB file ${manifestPath}`,
        `${codeOf(error) === 'ENOENT' ? 'missing' : describeFsError(error)} (named by ${currentPath})`,
      );
    },
  );
  if (size <= 0) {
    throw new LogCorruptionError(path, `LevelDB file ${manifestPath}`, `empty or not a file (named by ${currentPath})`);
  }
}

function levelOpenError(path: string, error: unknown): Error {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : null;
  const message = typeof cause?.message === 'string' ? cause.message : (error as Error).message;
  if (code === 'LEVEL_CORRUPTION') return new LogCorruptionError(path, 'LevelDB store', message);
  if (code === 'LEVEL_LOCKED') return new DataDirError(path, `another process has it open (${message})`, { cause: error });
  return new DataDirError(path, `LevelDB failed to open it: ${message}`, { cause: error });
}

function codeOf(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : null;
}

/** "EROFS: read-only file system", without the syscall and path Node appends (the caller names the path). */
export function describeFsError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /^[A-Z0-9]+: [^,]+/.exec(message)?.[0] ?? message;
}
