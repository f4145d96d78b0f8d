/**
 * The key-files example (examples/key-files) against a real 3-node cluster:
 * a stream of puts, deletes and compare-and-swaps; the example SIGKILLed in
 * the middle of it, right after it printed a seeded number of applied
 * entries; started again while the writes go on. Once it has caught up, its
 * key files must equal the cluster's values (linearizable gets) and its
 * journal must list every index that changed a key exactly once, in
 * increasing order: no entry applied twice, none missed.
 *
 * The crash the journal guards against is one after an entry was applied
 * locally and before the consumer's position covering it was committed. A
 * kill may land just after a commit instead; the test then moves the
 * consumer back (allowBackwards) to where a kill a moment earlier would
 * have left it, so that the cluster delivers some applied entries again.
 * The second scenario plants a bug (the example stops dropping those
 * entries) and shows that the journal check catches it, while the key
 * files, which a repeated put leaves unchanged, cannot.
 *
 * Seeded by RAFTLOG_TEST_SEED (the seed is in every test's name).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../examples/key-files/journal.js';
import { keyFileName } from '../../examples/key-files/key-files.js';
import { JOURNAL_FILE, KEYS_DIR } from '../../examples/key-files/subscriber.js';
import { RaftLogClient } from '../../src/client/index.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { ExampleProcess, killAllExamples } from './example-process.js';
import { duplicatedIndexes, journalProblems } from './journal-check.js';
import { seededRandom, WriteStream } from './write-stream.js';

const SEED = Number(process.env['RAFTLOG_TEST_SEED'] ?? 1207);
const WAIT_MS = 60_000;
/** How many applied entries the cluster delivers again, at least, after the crash. */
const REDELIVERED_AT_LEAST = 5;

let cluster: ProcessCluster | null = null;
let client: RaftLogClient | null = null;
const tempDirs: string[] = [];
const c = (): ProcessCluster => cluster as ProcessCluster;
const raftlog = (): RaftLogClient => client as RaftLogClient;
const endpoints = (): string[] => c().ids.map((id) => c().address(id));

beforeAll(async () => {
  cluster = await ProcessCluster.start(3);
  await cluster.waitForLeader(cluster.ids, WAIT_MS);
  client = new RaftLogClient({ endpoints: endpoints(), deadlineMs: 30_000, exactlyOnce: true });
});
afterEach(async () => {
  await killAllExamples();
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});
afterAll(async () => {
  client?.close();
  client = null;
  await cluster?.destroy();
  cluster = null;
});

async function positionOf(consumer: string): Promise<number | null> {
  const { consumers } = await raftlog().consumers();
  return consumers.find((status) => status.name === consumer)?.position ?? null;
}

/** The indexes that changed a key under `prefix`, up to `through`, as the cluster's own CHANGES view gives them. */
async function changingIndexes(prefix: string, through: number): Promise<number[]> {
  const indexes: number[] = [];
  const subscription = raftlog().subscribe({ view: 'changes', keyPrefix: prefix, from: 1, signal: AbortSignal.timeout(WAIT_MS) });
  for await (const entry of subscription) {
    indexes.push(entry.index);
    if (entry.index >= through) break;
  }
  if (indexes.at(-1) !== through) throw new Error(`the CHANGES view of ${prefix} ended at ${indexes.at(-1)} before reaching ${through}`);
  return indexes;
}

/** Each key's file holds the cluster's value (a linearizable get), a key the cluster lacks has no file, and nothing else is there. */
async function expectKeyFilesMatchCluster(dir: string, keys: readonly string[]): Promise<void> {
  const keysDir = join(dir, KEYS_DIR);
  const expectedNames: string[] = [];
  for (const key of keys) {
    const name = keyFileName(Buffer.from(key));
    const { value } = await raftlog().get(key);
    const file = await readFile(join(keysDir, name), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    expect({ key, file }).toEqual({ key, file: value === null ? null : Buffer.from(value).toString('utf8') });
    if (value !== null) expectedNames.push(name);
  }
  expect((await readdir(keysDir)).sort()).toEqual(expectedNames.sort());
}

interface CrashOutcome {
  readonly dir: string;
  readonly keys: readonly string[];
  readonly consumer: string;
  /** The indexes in the journal, in file order, after the second run stopped. */
  readonly journaled: number[];
  /** The indexes the first run journaled before it was killed. */
  readonly journaledAtCrash: number[];
  /** The journaled indexes above the consumer's position when the second run started: the cluster delivers them again. */
  readonly redelivered: number[];
  /** Every index that changed one of the keys, from the cluster. */
  readonly changing: number[];
  readonly second: ExampleProcess;
}

/**
 * Writes run; the example follows them, is SIGKILLed after a seeded number
 * of applied entries, is started again while the writes go on, catches up
 * and is stopped with SIGTERM.
 */
async function crashAndResume(name: string, seed: number, env: Readonly<Record<string, string>> = {}): Promise<CrashOutcome> {
  const random = seededRandom(seed);
  const prefix = `${name}/`;
  const consumer = `key-files-${name}`;
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-key-files-'));
  tempDirs.push(dir);
  const journalPath = join(dir, JOURNAL_FILE);
  const keys = Array.from({ length: 6 }, (_, i) => `${prefix}k${i}`);
  const writer = new WriteStream(raftlog(), keys, random);
  const start = { endpoints: endpoints(), dir, consumer, keyPrefix: prefix, env };

  const killAfter = 15 + Math.floor(random() * 30);
  const first = ExampleProcess.start({ ...start, killAfterApplied: killAfter });
  await first.waitForLine('its start position', /^consumer \S+ has no position/, WAIT_MS);
  writer.start();
  try {
    const crashed = await first.waitForExit(WAIT_MS);
    expect(first.applied.length, `killed after ${killAfter} applied lines\n${first.transcript()}`).toBeGreaterThanOrEqual(killAfter);
    expect(crashed.signal).toBe('SIGKILL');

    const journaledAtCrash = (await readJournal(journalPath)).entries.map((entry) => entry.index);
    expect(journaledAtCrash.length).toBeGreaterThan(REDELIVERED_AT_LEAST);
    const committed = (await positionOf(consumer)) ?? 0;
    if (journaledAtCrash.filter((index) => index > committed).length < REDELIVERED_AT_LEAST) {
      // The kill came after the commit: make the state a kill just before it would have left.
      const earlier = journaledAtCrash[journaledAtCrash.length - REDELIVERED_AT_LEAST - 1] as number;
      await raftlog().commitPosition(consumer, earlier, { allowBackwards: true });
    }

    await writer.waitForMore(20, WAIT_MS);
    const second = ExampleProcess.start(start);
    const resumed = await second.waitForLine('where it resumes', /^consumer \S+ (at position \d+|has no position)/, WAIT_MS);
    // The position it read itself: a commit of the killed process still on its way could have moved it since the test read it.
    const position = Number(/at position (\d+)/.exec(resumed)?.[1] ?? 0);
    const redelivered = journaledAtCrash.filter((index) => index > position);

    await writer.waitForMore(20, WAIT_MS);
    await writer.stop();
    const last = await raftlog().put(`${prefix}last`, 'the last write');
    await second.waitUntil(
      `the journal to reach index ${last.index}`,
      async () => ((await readJournal(journalPath)).entries.at(-1)?.index === last.index ? true : undefined),
      WAIT_MS,
    );
    const stopped = await second.stop();
    expect(stopped, second.transcript()).toEqual({ code: 0, signal: null });
    expect(second.lines.at(-1)).toMatch(/^stopped: applied \d+ entries/);

    const changing = await changingIndexes(prefix, last.index);
    // The cluster's view agrees with what the writes were told.
    const changedByWrites = writer.writes.filter((write) => write.changed).map((write) => write.index);
    expect(changing).toEqual([...changedByWrites, last.index]);

    const journaled = (await readJournal(journalPath)).entries.map((entry) => entry.index);
    return { dir, keys: [...keys, `${prefix}last`], consumer, journaled, journaledAtCrash, redelivered, changing, second };
  } finally {
    await writer.stop().catch(() => undefined);
  }
}

describe(`key-files example: crash and resume (seed ${SEED})`, () => {
  it('after a SIGKILL mid-stream and a restart, the key files equal the cluster and the journal lists every changing index exactly once', async () => {
    const outcome = await crashAndResume('crash', SEED);
    const { journaled, journaledAtCrash, redelivered, changing, second } = outcome;

    expect(journalProblems(journaled, changing)).toEqual([]);
    // The journal is append-only: what the first run journaled is still its beginning.
    expect(journaled.slice(0, journaledAtCrash.length)).toEqual(journaledAtCrash);
    // The cluster delivered applied entries again, and the second run dropped exactly those.
    expect(redelivered.length).toBeGreaterThan(0);
    expect(second.skipped).toEqual(redelivered);
    expect(second.applied).toEqual(journaled.slice(journaledAtCrash.length));

    await expectKeyFilesMatchCluster(outcome.dir, outcome.keys);
    // Its last batch was committed: the consumer's position is the last entry it applied.
    expect(await positionOf(outcome.consumer)).toBe(journaled.at(-1));
  });

  it('with the planted bug (resume without dropping journaled entries), the journal check reports each redelivered index as a duplicate', async () => {
    const outcome = await crashAndResume('bug', SEED + 1, { RAFTLOG_EXAMPLE_BUG: 'skip-journal-check' });
    const { journaled, redelivered, changing, second } = outcome;
    expect(second.lines).toContain("BUG ENABLED (skip-journal-check): entries at or below the journal's last index are applied again");

    expect(redelivered.length).toBeGreaterThan(0);
    expect(second.skipped).toEqual([]);
    const problems = journalProblems(journaled, changing);
    const reportedDuplicates = problems
      .filter((problem) => problem.startsWith('duplicate:'))
      .map((problem) => Number(/index (\d+)/.exec(problem)?.[1]));
    expect(reportedDuplicates).toEqual(redelivered);
    expect(duplicatedIndexes(journaled)).toEqual(redelivered);
    expect(problems.filter((problem) => problem.startsWith('missing:') || problem.startsWith('unexpected:'))).toEqual([]);

    // The key files cannot show it: a put applied twice leaves the same value.
    await expectKeyFilesMatchCluster(outcome.dir, outcome.keys);
  });

  it("refuses to start on a directory whose journal ends before the consumer's position (the entries went to another directory)", async () => {
    const consumer = 'key-files-elsewhere';
    const written = await raftlog().put('elsewhere/k', 'v');
    await raftlog().commitPosition(consumer, written.index);
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-key-files-'));
    tempDirs.push(dir);

    const example = ExampleProcess.start({ endpoints: endpoints(), dir, consumer, keyPrefix: 'elsewhere/' });
    const exit = await example.waitForExit(WAIT_MS);
    expect(exit, example.transcript()).toEqual({ code: 1, signal: null });
    expect(example.stderr).toContain(
      `consumer ${consumer} is at position ${written.index}, past the last entry journaled in ${join(dir, JOURNAL_FILE)} (0)`,
    );
    expect(example.applied).toEqual([]);
  });
});
