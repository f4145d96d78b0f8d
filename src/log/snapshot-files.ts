import { open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describeFsError } from './data-dir.js';
import { LogCorruptionError } from './errors.js';
import type { SnapshotFileRef } from './level-storage.js';

/** The node's own folder inside the snapshot dir, for transfers in progress: never touched by the log. */
export const INCOMING_DIR = 'incoming';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Throws unless `ref` names a plain file of the snapshot dir, with a size and a SHA-256. */
export function checkRefShape(ref: SnapshotFileRef, logPath: string): void {
  const { file } = ref;
  if (file === '' || file === '.' || file === '..' || file === INCOMING_DIR || /[/\\\0]/.test(file)) {
    throw new Error(`log in ${logPath}: snapshot file name ${JSON.stringify(file)} is not a plain file name`);
  }
  if (!Number.isSafeInteger(ref.bytes) || ref.bytes < 0) {
    throw new Error(`log in ${logPath}: snapshot file ${file} has an invalid size ${ref.bytes}`);
  }
  if (!SHA256_HEX.test(ref.sha256)) {
    throw new Error(`log in ${logPath}: snapshot file ${file} has an invalid sha256 ${JSON.stringify(ref.sha256)}`);
  }
  if (!Number.isSafeInteger(ref.meta.index) || ref.meta.index < 1 || !Number.isSafeInteger(ref.meta.term) || ref.meta.term < 1) {
    throw new Error(`log in ${logPath}: snapshot ${file} at index ${ref.meta.index}, term ${ref.meta.term} is not a log position`);
  }
}

/** The size of the file, or a description of why it is not there. */
async function sizeOf(filePath: string): Promise<number | string> {
  try {
    const stats = await stat(filePath);
    return stats.isFile() ? stats.size : 'not a regular file';
  } catch (error) {
    return (error as { code?: unknown }).code === 'ENOENT' ? 'missing' : describeFsError(error);
  }
}

/** Before a snapshot is recorded: its file must be in place with the size the caller says. */
export async function checkSnapshotFileBeforeRecord(snapshotDir: string, ref: SnapshotFileRef, logPath: string): Promise<void> {
  const filePath = join(snapshotDir, ref.file);
  const size = await sizeOf(filePath);
  if (size !== ref.bytes) {
    const found = typeof size === 'number' ? `${size} bytes` : size;
    throw new Error(`log in ${logPath}: snapshot file ${filePath} is ${found}, the snapshot says ${ref.bytes} bytes`);
  }
}

/**
 * At open: the recorded snapshot's file must be there with its recorded size.
 * Its content is checked against the SHA-256 by whoever reads it.
 */
export async function checkRecordedSnapshotFile(snapshotDir: string, ref: SnapshotFileRef, logPath: string): Promise<void> {
  const filePath = join(snapshotDir, ref.file);
  const size = await sizeOf(filePath);
  if (size === ref.bytes) return;
  const detail = typeof size === 'number' ? `${size} bytes, the log recorded ${ref.bytes}` : `${size} (the log recorded ${ref.bytes} bytes)`;
  throw new LogCorruptionError(logPath, `snapshot file ${filePath} (index ${ref.meta.index})`, detail);
}

/**
 * Deletes the files of the snapshot dir other than `keep`: a snapshot left
 * behind by a crash before its deletion, or a file a crash left half
 * written. Only at open, when no snapshot is being written. Subfolders
 * (`incoming/` among them) are left alone. Returns the names deleted.
 */
export async function removeLeftoverFiles(snapshotDir: string, keep: string | null): Promise<string[]> {
  const removed: string[] = [];
  for (const dirent of await readdir(snapshotDir, { withFileTypes: true })) {
    if (dirent.isDirectory() || dirent.name === keep) continue;
    await unlink(join(snapshotDir, dirent.name));
    removed.push(dirent.name);
  }
  return removed.sort();
}

/** Deletes snapshot files no longer recorded; a failure leaves the file for the next open to remove. */
export async function removeObsoleteFiles(snapshotDir: string, names: Set<string>): Promise<void> {
  for (const name of [...names]) {
    try {
      await unlink(join(snapshotDir, name));
      names.delete(name);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') names.delete(name);
    }
  }
}

/** Makes the directory's entries (a new file's name) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
