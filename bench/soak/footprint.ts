/**
 * What a node costs the machine over time: resident memory read from /proc
 * (Linux only) and the bytes its data dir holds on disk.
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * VmRSS from the text of /proc/<pid>/status, in bytes; null when the line is
 * missing (a kernel thread, or a process that is exiting: its mm is gone).
 */
export function parseVmRss(statusText: string): number | null {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(statusText);
  return match === null ? null : Number(match[1]) * 1024;
}

/** Resident set size of a process in bytes; null when it is gone or has no memory map any more. */
export async function readRssBytes(pid: number): Promise<number | null> {
  try {
    return parseVmRss(await readFile(`/proc/${pid}/status`, 'utf8'));
  } catch (error) {
    if (isGone(error)) return null;
    throw new Error(`reading /proc/${pid}/status: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Apparent size (the sum of file lengths, as `du -sb` counts) of everything
 * under dir, in bytes; 0 when dir does not exist yet. LevelDB deletes and
 * renames files while compacting, so an entry that vanishes between listing
 * and stat counts as nothing rather than as an error.
 */
export async function dirBytes(dir: string): Promise<number> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isGone(error)) return 0;
    throw new Error(`listing ${dir}: ${(error as Error).message}`, { cause: error });
  }
  let total = 0;
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      total += await dirBytes(path);
      continue;
    }
    try {
      total += (await lstat(path)).size;
    } catch (error) {
      if (!isGone(error)) throw new Error(`stat ${path}: ${(error as Error).message}`, { cause: error });
    }
  }
  return total;
}

function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ESRCH';
}

const MiB = 1024 * 1024;

/** Bytes as MiB with one decimal: finer digits are noise in a soak. */
export const toMiB = (bytes: number | null): number | null => (bytes === null ? null : Math.round((bytes / MiB) * 10) / 10);
