import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { JOURNAL_DIR_NAME } from '../../src/log/journal.js';
import { waitFor } from '../support/wait-for.js';
import { logDigest } from './log-digest.js';
import { LogFixtures } from './log-fixtures.js';

const CHILD = fileURLToPath(new URL('./journal-crash-child.ts', import.meta.url));
const fixtures = new LogFixtures();
const children: ReturnType<typeof spawn>[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await fixtures.cleanUp();
});

/** The lines the child recorded since its last start: what it opened, began and acknowledged. */
async function lastRun(recordFile: string): Promise<{ runs: number; opened: string; begun: string | null; acked: string | null; acks: number }> {
  const lines = (await readFile(recordFile, 'utf8')).split('\n').filter((line) => line !== '');
  const starts = lines.map((line) => line.startsWith('opened '));
  const run = lines.slice(starts.lastIndexOf(true));
  const last = (kind: string) =>
    [...run]
      .reverse()
      .find((line) => line.startsWith(`${kind} `))
      ?.slice(kind.length + 1) ?? null;
  return {
    runs: starts.filter(Boolean).length,
    opened: (run[0] as string).slice('opened '.length),
    begun: last('begin'),
    acked: last('ack'),
    acks: run.filter((l) => l.startsWith('ack ')).length,
  };
}

describe("the log's journal across SIGKILL", () => {
  it('a writer killed at random moments, journaled writes and flushes in flight, reopens with its last acknowledged log or the one it had begun', {
    timeout: 180_000,
  }, async () => {
    const dir = await fixtures.freshDir();
    const recordFile = join(await fixtures.freshDir(), 'record.txt');
    let killedWithJournal = 0;
    const cycles = 6;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, recordFile, String(1000 + cycle)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.push(child);
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Between 30 and 330 writes into each run: some kills land mid-file, some after a new file started.
      const target = 30 + ((cycle * 97) % 300);
      await waitFor(
        `run ${cycle} of the writer to acknowledge ${target} writes`,
        async () => {
          if (child.exitCode !== null) throw new Error(`the writer exited ${child.exitCode}: ${stderr}`);
          const run = await lastRun(recordFile).catch(() => null);
          return run !== null && run.runs === cycle + 1 && run.acks >= target ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 20 },
      );
      child.kill('SIGKILL');
      await exited;
      if ((await readdir(join(dir, JOURNAL_DIR_NAME))).length > 0) killedWithJournal++;

      const { opened, begun, acked } = await lastRun(recordFile);
      const storage = await fixtures.openStorage(dir, null);
      const found = logDigest(
        storage.initialState().hardState,
        storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Number.POSITIVE_INFINITY),
      );
      // The write under way when the kill came may have reached the journal whole; nothing else may differ.
      expect([acked ?? opened, begun ?? opened]).toContain(found);
      await fixtures.close(storage);
    }
    // Every kill left journal records for the open to lay over LevelDB, or this test would not be testing the journal.
    expect(killedWithJournal).toBe(cycles);
  });
});
