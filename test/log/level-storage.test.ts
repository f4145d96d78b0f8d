import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { entryKey, HARD_STATE_KEY } from '../../src/log/codec.js';
import { LogCorruptionError } from '../../src/log/errors.js';
import { LevelLogStorage } from '../../src/log/level-storage.js';
import { RaftCore } from '../../src/raft/core.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { Entry } from '../../src/raft/types.js';
import { type BatchOp, spyOnBatches } from './batch-spy.js';

const voters = ['n1', 'n2', 'n3'];
const dirs: string[] = [];
const open: LevelLogStorage[] = [];

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-log-'));
  dirs.push(dir);
  return dir;
}

/** `null`: open with the configuration already stored. */
async function openStorage(dir: string, voterList: readonly string[] | null = voters): Promise<LevelLogStorage> {
  const storage = await LevelLogStorage.open(dir, voterList === null ? {} : { voters: voterList });
  open.push(storage);
  return storage;
}

async function reopen(storage: LevelLogStorage): Promise<LevelLogStorage> {
  await storage.close();
  open.splice(open.indexOf(storage), 1);
  return openStorage(storage.path, null);
}

/** Changes a stored value behind the log's back, as a failing disk would. */
async function tamper(dir: string, key: Uint8Array, change: (value: Uint8Array) => Uint8Array): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  const value = await db.get(key);
  if (value === undefined) throw new Error('nothing to tamper with');
  await db.put(key, change(new Uint8Array(value)));
  await db.close();
}

const entry = (index: number, term: number, text = `cmd-${index}`): Entry => ({
  index,
  term,
  kind: 'command',
  data: new TextEncoder().encode(text),
});

afterEach(async () => {
  for (const storage of open.splice(0)) await storage.close().catch(() => undefined);
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('LevelDB log', () => {
  it('a new log starts empty with the given voters', async () => {
    const storage = await openStorage(await freshDir());
    expect(storage.initialState()).toEqual({ hardState: { term: 0, votedFor: null, commit: 0 }, config: { voters } });
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(0)]).toEqual([1, 0, 0]);
  });

  it('restart recovers term, vote, commit and every entry exactly', async () => {
    const storage = await openStorage(await freshDir());
    const noop: Entry = { index: 1, term: 1, kind: 'noop', data: new Uint8Array(0) };
    const binary: Entry = { index: 3, term: 2, kind: 'command', data: new Uint8Array([0, 255, 7, 0]) };
    await storage.save({ term: 2, votedFor: 'n2', commit: 2 }, [noop, entry(2, 1), binary]);
    const reopened = await reopen(storage);
    expect(reopened.initialState().hardState).toEqual({ term: 2, votedFor: 'n2', commit: 2 });
    expect(reopened.entries(1, 4, Infinity)).toEqual([noop, entry(2, 1), binary]);
    expect(reopened.term(3)).toBe(2);
  });

  it('replacing a conflicting suffix deletes the old tail in the same write', async () => {
    const storage = await openStorage(await freshDir());
    await storage.save(
      { term: 1, votedFor: null, commit: 0 },
      [1, 2, 3, 4, 5].map((i) => entry(i, 1)),
    );
    await storage.save({ term: 3, votedFor: null, commit: 0 }, [entry(3, 3, 'new-3')]);
    expect(storage.lastIndex()).toBe(3);
    const reopened = await reopen(storage);
    expect(reopened.lastIndex()).toBe(3);
    expect(reopened.entries(1, 4, Infinity).map((e) => e.term)).toEqual([1, 1, 3]);
  });

  it('writes each save as one batch with sync (fsync) on', async () => {
    const storage = await openStorage(await freshDir());
    const batch = spyOnBatches(storage);
    await storage.save({ term: 1, votedFor: 'n1', commit: 0 }, [entry(1, 1)]);
    expect(batch).toHaveBeenCalledTimes(1);
    const [ops, sync] = batch.mock.calls[0] as [readonly BatchOp[], boolean];
    expect(sync).toBe(true);
    expect(ops).toHaveLength(2);
  });

  it('syncs every change of term or vote, and skips the fsync only when the commit index alone moved', async () => {
    const storage = await openStorage(await freshDir());
    const batch = spyOnBatches(storage);
    const syncOf = (call: number) => batch.mock.calls[call]?.[1];
    await storage.save({ term: 1, votedFor: 'n1', commit: 0 }, [entry(1, 1)]);
    await storage.save({ term: 1, votedFor: 'n1', commit: 1 }, []);
    await storage.save({ term: 2, votedFor: null, commit: 1 }, []);
    await storage.save({ term: 2, votedFor: 'n2', commit: 1 }, []);
    await storage.save({ term: 2, votedFor: 'n2', commit: 1 }, [entry(2, 2)]);
    expect([0, 1, 2, 3, 4].map(syncOf)).toEqual([true, false, true, true, true]);
    const reopened = await reopen(storage);
    expect(reopened.initialState().hardState).toEqual({ term: 2, votedFor: 'n2', commit: 1 });
  });

  it('refuses an append that would leave a gap', async () => {
    const storage = await openStorage(await freshDir());
    await expect(storage.save(null, [entry(2, 1)])).rejects.toThrow(/gap/);
  });

  it('a stored configuration wins over the voters and addresses given at a later open', async () => {
    const dir = await freshDir();
    const first = await LevelLogStorage.open(dir, { voters: ['n1', 'n2', 'n3'], addresses: { n1: 'h:1', n2: 'h:2', n3: 'h:3' } });
    await first.close();
    const again = await LevelLogStorage.open(dir, { voters: ['a', 'b'], addresses: { a: 'h:9' } });
    open.push(again);
    expect(again.initialState().config).toEqual({ voters: ['n1', 'n2', 'n3'], addresses: { n1: 'h:1', n2: 'h:2', n3: 'h:3' } });
  });

  it('a RaftCore restarted over the log continues where it was', async () => {
    const dir = await freshDir();
    const run = async (storage: LevelLogStorage, core: RaftCore) => {
      while (core.hasOutput()) {
        const output = core.takeOutput();
        await storage.save(output.hardState, output.entries);
        core.persisted(output);
      }
    };
    const storage = await openStorage(dir, ['solo']);
    const core = new RaftCore({ id: 'solo', random: new SeededRandom(1) }, storage);
    while (core.status().role !== 'leader') {
      core.tick();
      await run(storage, core);
    }
    core.propose(new TextEncoder().encode('hello'));
    await run(storage, core);
    const before = core.status();
    const reopened = await reopen(storage);
    const restarted = new RaftCore({ id: 'solo', random: new SeededRandom(2) }, reopened);
    // The commit index is stored only with entries: the one that moved after the last write is not.
    expect(restarted.status()).toMatchObject({ term: before.term, commitIndex: before.commitIndex - 1, lastIndex: before.lastIndex });
    const first = restarted.takeOutput();
    await reopened.save(first.hardState, first.entries);
    restarted.persisted(first);
    expect(first.committed.map((e) => e.kind)).toEqual(['noop']);
    // Leading again, it commits its log anew, the command included.
    const applied: string[] = [];
    while (restarted.status().role !== 'leader' || restarted.status().commitIndex <= before.lastIndex) {
      restarted.tick();
      while (restarted.hasOutput()) {
        const output = restarted.takeOutput();
        await reopened.save(output.hardState, output.entries);
        restarted.persisted(output);
        applied.push(...output.committed.map((e) => e.kind));
      }
    }
    expect(applied).toEqual(['command', 'noop']);
  });
});

describe('corruption on disk is detected and named, never repaired', () => {
  const prepared = async () => {
    const storage = await openStorage(await freshDir());
    await storage.save(
      { term: 1, votedFor: 'n1', commit: 3 },
      [1, 2, 3].map((i) => entry(i, 1)),
    );
    await storage.close();
    open.splice(open.indexOf(storage), 1);
    return storage.path;
  };

  it('a flipped bit in an entry stops the open with the directory and the index', async () => {
    const dir = await prepared();
    await tamper(dir, entryKey(2), (v) => {
      v[v.length - 1] = (v[v.length - 1] as number) ^ 0x01;
      return v;
    });
    const error = await LevelLogStorage.open(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LogCorruptionError);
    expect((error as LogCorruptionError).index).toBe(2);
    expect((error as Error).message).toContain(dir);
    expect((error as Error).message).toContain('entry at index 2: checksum mismatch');
  });

  it('a corrupt hard state is reported as such', async () => {
    const dir = await prepared();
    await tamper(dir, HARD_STATE_KEY, (v) => v.subarray(0, 3));
    await expect(LevelLogStorage.open(dir)).rejects.toThrow(/hard state: record of 3 bytes is too short/);
  });

  it('a missing entry in the middle of the log is reported with its index', async () => {
    const dir = await prepared();
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.del(entryKey(2));
    await db.close();
    await expect(LevelLogStorage.open(dir)).rejects.toThrow(/entry at index 2: missing/);
  });

  it('an entry stored under the wrong index is reported', async () => {
    const dir = await prepared();
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    const third = await db.get(entryKey(3));
    await db.put(entryKey(2), third as Uint8Array);
    await db.close();
    await expect(LevelLogStorage.open(dir)).rejects.toThrow(/entry at index 2: record says index 3/);
  });
});
