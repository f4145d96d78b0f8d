/**
 * One subscriber per view directory. Two at once would both journal and
 * write the same files, and each would apply what the other had: exactly
 * once is a property of one process's sequence of steps.
 *
 * The lock is a file holding the owner's pid, created exclusively. A lock
 * left by a crashed process (its pid no longer runs) is taken over, since a
 * crash is what this example is built to recover from. Limits: a reused pid
 * keeps a stale lock held (remove the file by hand), and two processes
 * taking over one stale lock in the same instant can both succeed.
 */
import { open, readFile, rm } from 'node:fs/promises';

export class DirectoryLock {
  private constructor(readonly path: string) {}

  /** Takes the lock, or throws naming the process that holds it. */
  static async take(path: string): Promise<DirectoryLock> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(path, 'wx');
        try {
          await handle.writeFile(`${process.pid}\n`);
        } finally {
          await handle.close();
        }
        return new DirectoryLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new Error(`cannot create lock ${path}: ${(error as Error).message}`, { cause: error });
      }
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isSafeInteger(owner) && owner > 0 && isRunning(owner)) {
        throw new Error(`${path} is held by process ${owner}: another subscriber runs on this directory`);
      }
      await rm(path, { force: true });
    }
    throw new Error(`cannot take lock ${path}: another process took it over at the same time`);
  }

  async release(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
