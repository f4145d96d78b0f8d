/**
 * The node's disk queue: merging the output saves that wait behind a busy
 * disk into one write (a pure function, checked against a model of save()
 * and against save()'s own sync rule), running every write one at a time in
 * the order queued, and stopping for good at the first failed write.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { changesOnlyCommit } from '../../src/log/level-storage.js';
import { type LogWrite, mergeWrites, WriteQueue } from '../../src/node/write-queue.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import { LogFixtures } from '../log/log-fixtures.js';

const entry = (index: number, term: number): Entry => ({ index, term, kind: 'command', data: new TextEncoder().encode(`${index}/${term}`) });
const run = (from: number, to: number, term: number): Entry[] => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));
const hs = (term: number, votedFor: string | null, commit: number): HardState => ({ term, votedFor, commit });
const positions = (entries: readonly Entry[]): string[] => entries.map((e) => `${e.index}/${e.term}`);
const sameHardState = (a: HardState, b: HardState): boolean => a.term === b.term && a.votedFor === b.votedFor && a.commit === b.commit;

/** What save() does to a log held in memory: entries replace the log from their first index onward. */
function applyToModel(log: Entry[], write: LogWrite): Entry[] {
  const first = write.entries[0];
  if (first === undefined) return log;
  const start = log[0]?.index ?? 1;
  return [...log.slice(0, Math.max(0, first.index - start)), ...write.entries];
}

/** Whether save() would have fsync'd at least one of `writes`, saved one at a time over `stored`. */
function anySynced(stored: HardState, writes: readonly LogWrite[]): boolean {
  let current = stored;
  let synced = false;
  for (const write of writes) {
    if (!changesOnlyCommit(current, write.hardState, write.entries, null)) synced = true;
    current = write.hardState ?? current;
  }
  return synced;
}

describe('mergeWrites', () => {
  it('hands a single write back as it is', () => {
    const write: LogWrite = { hardState: hs(1, 'n1', 2), entries: run(1, 3, 1) };
    expect(mergeWrites([write])).toBe(write);
  });

  it('appends later entries after earlier ones and keeps the last hard state given', () => {
    const merged = mergeWrites([
      { hardState: hs(2, 'n1', 0), entries: run(1, 3, 2) },
      { hardState: null, entries: run(4, 5, 2) },
      { hardState: hs(2, 'n1', 4), entries: [] },
      { hardState: null, entries: run(6, 6, 2) },
    ]);
    expect(positions(merged.entries)).toEqual(['1/2', '2/2', '3/2', '4/2', '5/2', '6/2']);
    expect(merged.hardState).toEqual(hs(2, 'n1', 4));
  });

  it('lets a later write that starts inside the earlier entries replace them from there (a new leader overwrote a suffix)', () => {
    const merged = mergeWrites([
      { hardState: hs(3, null, 4), entries: run(5, 8, 3) },
      { hardState: hs(4, null, 4), entries: run(7, 9, 4) },
    ]);
    expect(positions(merged.entries)).toEqual(['5/3', '6/3', '7/4', '8/4', '9/4']);
    expect(merged.hardState).toEqual(hs(4, null, 4));
  });

  it('lets a later write that starts at or below the merged entries replace them all (storage then replaces its own from there)', () => {
    expect(
      positions(
        mergeWrites([
          { hardState: null, entries: run(5, 8, 3) },
          { hardState: null, entries: run(3, 4, 4) },
        ]).entries,
      ),
    ).toEqual(['3/4', '4/4']);
    expect(
      positions(
        mergeWrites([
          { hardState: null, entries: run(5, 8, 3) },
          { hardState: null, entries: run(5, 5, 4) },
        ]).entries,
      ),
    ).toEqual(['5/4']);
  });

  it('refuses entries that would leave a gap after the merged ones, naming the indexes', () => {
    expect(() =>
      mergeWrites([
        { hardState: null, entries: run(1, 3, 1) },
        { hardState: null, entries: run(5, 6, 1) },
      ]),
    ).toThrow('entries from 5 follow merged entries 1..3');
  });

  it('does not change the writes it merges', () => {
    const first = run(1, 4, 1);
    mergeWrites([
      { hardState: null, entries: first },
      { hardState: null, entries: run(2, 2, 2) },
    ]);
    expect(positions(first)).toEqual(['1/1', '2/1', '3/1', '4/1']);
  });

  it('merges commit-only writes into a commit-only write: save() writes it without fsync, as it would each of them', () => {
    const stored = hs(5, 'n2', 10);
    const parts: LogWrite[] = [
      { hardState: hs(5, 'n2', 11), entries: [] },
      { hardState: hs(5, 'n2', 12), entries: [] },
    ];
    const merged = mergeWrites(parts);
    expect(merged.hardState).toEqual(hs(5, 'n2', 12));
    expect(anySynced(stored, parts)).toBe(false);
    expect(changesOnlyCommit(stored, merged.hardState, merged.entries, null)).toBe(true);
  });

  it.each<[string, LogWrite]>([
    ['a new vote', { hardState: hs(5, 'n3', 10), entries: [] }],
    ['a new term', { hardState: hs(6, null, 10), entries: [] }],
    ['entries', { hardState: null, entries: run(11, 11, 5) }],
  ])('fsyncs a merge when one part, %s, needed it, even if the parts after it only move the commit', (_, needsSync) => {
    const stored = hs(5, null, 10);
    const after = needsSync.hardState ?? stored;
    const parts: LogWrite[] = [needsSync, { hardState: { ...after, commit: 11 }, entries: [] }];
    const merged = mergeWrites(parts);
    expect(anySynced(stored, parts)).toBe(true);
    expect(changesOnlyCommit(stored, merged.hardState, merged.entries, null)).toBe(false);
  });

  it('leaves the log and the fsync decision as saving the writes one by one would, for random sequences of writes', () => {
    const random = new SeededRandom(11);
    for (let trial = 0; trial < 500; trial++) {
      const stored = hs(1 + random.nextInt(3), random.chance(0.5) ? 'n1' : null, 0);
      let log = run(1, random.nextInt(6), stored.term);
      let state = stored;
      let handedOut = stored;
      let expected = log;
      const writes: LogWrite[] = [];
      for (let n = 1 + random.nextInt(5); n > 0; n--) {
        // As the core hands writes out: terms and votes only move forward, a write holds the hard state only
        // if it changed, and entries continue the log or overwrite an uncommitted suffix.
        if (random.chance(0.3)) state = { term: state.term + 1, votedFor: null, commit: state.commit };
        if (state.votedFor === null && random.chance(0.3)) state = { ...state, votedFor: 'n2' };
        const last = expected[expected.length - 1]?.index ?? 0;
        const from = Math.max(state.commit + 1, last + 1 - random.nextInt(3));
        const entries = random.chance(0.6) ? run(from, from + random.nextInt(3), state.term) : [];
        expected = applyToModel(expected, { hardState: null, entries });
        state = { ...state, commit: Math.min(expected.length, state.commit + random.nextInt(2)) };
        const hardState = sameHardState(state, handedOut) ? null : state;
        if (hardState === null && entries.length === 0) continue;
        if (hardState !== null) handedOut = hardState;
        writes.push({ hardState, entries });
      }
      if (writes.length === 0) continue;
      const merged = mergeWrites(writes);
      log = applyToModel(log, merged);
      expect(positions(log), `trial ${trial}`).toEqual(positions(expected));
      expect(merged.hardState ?? stored, `trial ${trial}`).toEqual([...writes].reverse().find((w) => w.hardState !== null)?.hardState ?? stored);
      expect(!changesOnlyCommit(stored, merged.hardState, merged.entries, null), `trial ${trial}`).toBe(anySynced(stored, writes));
    }
  });
});

/** A save whose completion the test decides. */
class ControlledDisk {
  readonly calls: { write: LogWrite; settle: (error?: Error) => void }[] = [];
  inFlight = 0;
  maxInFlight = 0;

  save = (write: LogWrite): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      this.calls.push({
        write,
        settle: (error) => {
          this.inFlight--;
          if (error === undefined) resolve();
          else reject(error);
        },
      });
    });

  /** Completes the n-th save started, and lets the queue go on. */
  async complete(n: number, error?: Error): Promise<void> {
    const call = this.calls[n];
    if (call === undefined) throw new Error(`save ${n} was never started (${this.calls.length} started)`);
    call.settle(error);
    await flush();
  }
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const plain = (from: number, to: number): LogWrite => ({ hardState: hs(1, 'n1', 0), entries: run(from, to, 1) });

describe('WriteQueue', () => {
  it('writes the saves that queued while the disk was busy as one, then reports each done in order', async () => {
    const disk = new ControlledDisk();
    const events: string[] = [];
    const queue = new WriteQueue({ save: disk.save, onWritten: () => events.push('written'), onFailed: () => events.push('failed') });
    queue.save(plain(1, 1), () => events.push('done 1'));
    queue.save(plain(2, 3), () => events.push('done 2'));
    queue.save(plain(4, 4), () => events.push('done 3'));
    await flush();
    expect(disk.calls).toHaveLength(1);
    await disk.complete(0);
    expect(events).toEqual(['done 1', 'written']);
    expect(disk.calls).toHaveLength(2);
    expect(positions(disk.calls[1]?.write.entries ?? [])).toEqual(['2/1', '3/1', '4/1']);
    await disk.complete(1);
    expect(events).toEqual(['done 1', 'written', 'done 2', 'done 3', 'written']);
    expect(disk.maxInFlight).toBe(1);
  });

  it('never merges across a task, and runs tasks and saves one at a time in the order queued', async () => {
    const disk = new ControlledDisk();
    const order: string[] = [];
    const queue = new WriteQueue({ save: disk.save, onWritten: () => undefined, onFailed: () => order.push('failed') });
    let taskRunning = false;
    let finishTask: () => void = () => undefined;
    queue.save(plain(1, 1), () => order.push('save 1'));
    queue.save(plain(2, 2), () => order.push('save 2'));
    queue.task(
      'install',
      () =>
        new Promise<void>((resolve) => {
          taskRunning = true;
          expect(disk.inFlight).toBe(0);
          finishTask = () => {
            taskRunning = false;
            resolve();
          };
        }),
      () => order.push('install'),
    );
    queue.save(plain(3, 3), () => order.push('save 3'));
    await flush();
    await disk.complete(0);
    await disk.complete(1);
    expect(taskRunning).toBe(true);
    expect(disk.calls).toHaveLength(2);
    finishTask();
    await flush();
    expect(disk.calls).toHaveLength(3);
    expect(positions(disk.calls[2]?.write.entries ?? [])).toEqual(['3/1']);
    await disk.complete(2);
    expect(order).toEqual(['save 1', 'save 2', 'install', 'save 3']);
    expect(disk.maxInFlight).toBe(1);
  });

  it('holds only flushes while nothing else is queued or running; a flush still waiting covers the next one', async () => {
    const disk = new ControlledDisk();
    const queue = new WriteQueue({ save: disk.save, onWritten: () => undefined, onFailed: () => undefined });
    let flushes = 0;
    const release: (() => void)[] = [];
    const flushJob = () =>
      new Promise<void>((resolve) => {
        flushes++;
        release.push(resolve);
      });
    expect(queue.holdsOnlyFlushes()).toBe(true);
    queue.flush('flush', flushJob);
    expect(flushes).toBe(1);
    expect(queue.holdsOnlyFlushes()).toBe(true);
    // Two more while the first runs: the second one queued would only find nothing left to hand over.
    queue.flush('flush', flushJob);
    queue.flush('flush', flushJob);
    expect(queue.pending()).toBe(1);
    // A save behind them: a write beside the queue must now wait for it.
    queue.save(plain(1, 1), () => undefined);
    expect(queue.holdsOnlyFlushes()).toBe(false);
    release.shift()?.();
    await flush();
    release.shift()?.();
    await flush();
    expect(flushes).toBe(2);
    expect(disk.calls).toHaveLength(1);
    expect(queue.holdsOnlyFlushes()).toBe(false);
    await disk.complete(0);
    await queue.idle();
    expect(queue.holdsOnlyFlushes()).toBe(true);
  });

  it('idle() waits for every write queued, including those queued while it waits', async () => {
    const disk = new ControlledDisk();
    const queue = new WriteQueue({ save: disk.save, onWritten: () => undefined, onFailed: () => undefined });
    expect(await Promise.race([queue.idle().then(() => 'idle'), flush().then(() => 'busy')])).toBe('idle');
    queue.save(plain(1, 1), () => queue.save(plain(2, 2), () => undefined));
    let idle = false;
    void queue.idle().then(() => (idle = true));
    await disk.complete(0);
    expect(idle).toBe(false);
    await disk.complete(1);
    expect(idle).toBe(true);
  });

  it('stops at the first failed write: reports it with what failed, runs nothing queued after it, and takes nothing more', async () => {
    const disk = new ControlledDisk();
    const failures: { error: unknown; what: string }[] = [];
    const dones: number[] = [];
    let tasksRun = 0;
    const queue = new WriteQueue({ save: disk.save, onWritten: () => undefined, onFailed: (error, what) => failures.push({ error, what }) });
    queue.save(plain(1, 2), () => dones.push(1));
    queue.task(
      'record',
      async () => void tasksRun++,
      () => dones.push(2),
    );
    queue.save(plain(3, 3), () => dones.push(3));
    await flush();
    const boom = new Error('disk full');
    await disk.complete(0, boom);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.error).toBe(boom);
    expect(failures[0]?.what).toContain('entries 1..2');
    expect(queue.failed).toBe(true);
    expect(queue.pending()).toBe(0);
    queue.save(plain(3, 3), () => dones.push(4));
    await flush();
    await queue.idle();
    expect(disk.calls).toHaveLength(1);
    expect(tasksRun).toBe(0);
    expect(dones).toEqual([]);
  });

  it('reports saves that cannot be merged (a gap: a caller bug) as a failure of the queue, and goes idle', async () => {
    const disk = new ControlledDisk();
    const failures: { error: unknown; what: string }[] = [];
    const queue = new WriteQueue({ save: disk.save, onWritten: () => undefined, onFailed: (error, what) => failures.push({ error, what }) });
    queue.save(plain(1, 2), () => undefined);
    await flush();
    // Queued while the first is on disk, to be merged: 3..3 then 6..6 leaves a gap.
    queue.save(plain(3, 3), () => undefined);
    queue.save(plain(6, 6), () => undefined);
    await disk.complete(0);
    await queue.idle();
    expect(failures.map((f) => f.what)).toEqual(['merging the queued log writes']);
    expect(String(failures[0]?.error)).toMatch(/gap/);
    expect(queue.failed).toBe(true);
    expect(disk.calls).toHaveLength(1);
  });

  it('treats a done that throws as a failure of the queue, not an unhandled rejection', async () => {
    const disk = new ControlledDisk();
    const failures: string[] = [];
    const queue = new WriteQueue({ save: disk.save, onWritten: () => undefined, onFailed: (_, what) => failures.push(what) });
    queue.task(
      'install snapshot 40',
      async () => undefined,
      () => {
        throw new Error('persisted() out of order');
      },
    );
    queue.save(plain(1, 1), () => undefined);
    await queue.idle();
    expect(failures).toEqual(['install snapshot 40']);
    expect(disk.calls).toHaveLength(0);
  });
});

describe('merged writes on a real log', () => {
  const fixtures = new LogFixtures();
  afterEach(() => fixtures.cleanUp());

  it('a merge that truncates and re-appends leaves the log that saving the writes one by one leaves, across a restart', async () => {
    const writes: LogWrite[] = [
      { hardState: hs(1, 'n1', 0), entries: run(1, 5, 1) },
      { hardState: hs(2, 'n2', 3), entries: run(4, 6, 2) },
      { hardState: hs(2, 'n2', 5), entries: [] },
      { hardState: null, entries: run(7, 8, 2) },
    ];
    const oneByOne = await fixtures.openStorage(await fixtures.freshDir());
    for (const write of writes) await oneByOne.save(write.hardState, write.entries);
    const merged = await fixtures.openStorage(await fixtures.freshDir());
    const saves: LogWrite[] = [];
    const failures: unknown[] = [];
    const queue = new WriteQueue({
      save: (write) => {
        saves.push(write);
        return merged.save(write.hardState, write.entries);
      },
      onWritten: () => undefined,
      onFailed: (error) => failures.push(error),
    });
    // The disk is busy when the writes arrive, so they all wait and go out together.
    queue.task('a write before them', () => new Promise((resolve) => setImmediate(resolve)));
    for (const write of writes) queue.save(write, () => undefined);
    await queue.idle();
    expect(failures).toEqual([]);
    expect(saves).toHaveLength(1);
    const expected = await fixtures.reopen(oneByOne);
    const actual = await fixtures.reopen(merged);
    expect(positions(actual.entries(1, actual.lastIndex() + 1, Infinity))).toEqual(
      positions(expected.entries(1, expected.lastIndex() + 1, Infinity)),
    );
    expect(positions(actual.entries(1, actual.lastIndex() + 1, Infinity))).toEqual(['1/1', '2/1', '3/1', '4/2', '5/2', '6/2', '7/2', '8/2']);
    expect(actual.initialState().hardState).toEqual(hs(2, 'n2', 5));
  });
});
