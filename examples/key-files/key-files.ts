/**
 * The derived view: a directory with one file per key, holding the key's
 * current value. A key's file name is the hex of its bytes, or, for a key
 * too long for a file name, "sha256-" and the hex of its SHA-256 (hex names
 * hold only 0-9a-f, so the two kinds never meet).
 *
 * Every change is written to a temporary file, fsync'd and renamed over the
 * key's file, so a reader sees the old value or the new one, never half of
 * one. Writing a value and removing a file are idempotent: applying the same
 * change again leaves the same directory.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Longest key named by its hex: 200 hex characters, and a temporary name ".tmp-" + that, stay under the 255-byte file-name limit. */
export const MAX_HEX_NAMED_KEY_BYTES = 100;

const TEMP_PREFIX = '.tmp-';

/** The name of a key's file. */
export function keyFileName(key: Uint8Array): string {
  if (key.byteLength <= MAX_HEX_NAMED_KEY_BYTES) return Buffer.from(key).toString('hex');
  return `sha256-${createHash('sha256').update(key).digest('hex')}`;
}

/** A key's new state: its value, or null when it was deleted. */
export interface KeyState {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}

export class KeyFileDirectory {
  private constructor(readonly path: string) {}

  /** Opens (creating it if needed) the key directory, and removes temporary files a crash left behind. */
  static async open(path: string): Promise<KeyFileDirectory> {
    await mkdir(path, { recursive: true });
    for (const name of await readdir(path)) {
      if (name.startsWith(TEMP_PREFIX)) await rm(join(path, name), { force: true });
    }
    return new KeyFileDirectory(path);
  }

  fileOf(key: Uint8Array): string {
    return join(this.path, keyFileName(key));
  }

  /**
   * Brings the files of these keys to these states, then fsyncs the
   * directory so that the renames and removals are durable too. When a key
   * appears more than once, its last state wins (they are in log order).
   */
  async apply(states: readonly KeyState[]): Promise<void> {
    const last = new Map<string, KeyState>();
    for (const state of states) last.set(keyFileName(state.key), state);
    for (const [name, state] of last) {
      const file = join(this.path, name);
      try {
        if (state.value === null) await rm(file, { force: true });
        else await writeDurably(join(this.path, TEMP_PREFIX + name), file, state.value);
      } catch (error) {
        throw new Error(`cannot ${state.value === null ? 'remove' : 'write'} key file ${file}: ${(error as Error).message}`, { cause: error });
      }
    }
    if (last.size > 0) await fsyncDirectory(this.path);
  }
}

async function writeDurably(temp: string, file: string, value: Uint8Array): Promise<void> {
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(value);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
}

/** Makes the directory's entries (names created, renamed or removed) durable. */
export async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
