/**
 * `raftlog append`, `tail` and `consumers` as a person runs them (node
 * bin/raftlog.js) against a real 3-node cluster (raftlog node processes):
 * a record appended once and seen once at its index, consumers resuming
 * where their last tail left off, a live tail stopped with SIGTERM, the
 * changes view, refused backwards commits, and a start compacted away.
 * Waits are conditions with generous deadlines; processes and temp dirs go
 * whether a test passes or fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { collectRun, type Run } from '../support/collect-run.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';

const BIN = fileURLToPath(new URL('../../bin/raftlog.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** How long one CLI run may take before the test kills it. */
const RUN_LIMIT_MS = 60_000;
const WAIT_MS = 60_000;
const TEST_MS = 240_000;

let children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children = [];
});

/** Starts `node bin/raftlog.js --endpoints <endpoints> ...args`; `run` resolves once it has exited. */
function start(endpoints: readonly string[], args: readonly string[]): { child: ChildProcess; run: Promise<Run>; output: () => string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.RAFTLOG_ENDPOINTS;
  // A generous deadline: a loaded machine may take seconds for a linearizable read.
  const all = ['--endpoints', endpoints.join(','), '--timeout', '20000', ...args];
  const child = spawn(process.execPath, [BIN, ...all], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let seen = '';
  child.stdout.on('data', (chunk: Buffer | string) => (seen += String(chunk)));
  return { child, run: collectRun(child, `raftlog ${all.join(' ')}`, RUN_LIMIT_MS), output: () => seen };
}

const lines = (text: string) => text.split('\n').filter((line) => line !== '');
/** The index each tail line starts with. */
const indexesOf = (run: Run) => lines(run.stdout).map((line) => Number(/^(\d+)  term \d+  /.exec(line)?.[1] ?? NaN));
const range = (first: number, last: number) => Array.from({ length: last - first + 1 }, (_, i) => first + i);

/** "OK  appended at index 12 term 1 (leader n1)" → 12, 1 */
function appendedAt(run: Run): { index: number; term: number } {
  expect(run).toMatchObject({ code: 0, stderr: '' });
  const match = /^OK {2}appended at index (\d+) term (\d+) \(leader n\d\)\n$/.exec(run.stdout);
  expect(match, run.stdout).not.toBeNull();
  return { index: Number(match![1]), term: Number(match![2]) };
}

/** "OK  index 12 term 1 (leader n1)" → 12 */
function writtenAt(run: Run): number {
  expect(run).toMatchObject({ code: 0, stderr: '' });
  return Number(/index (\d+) term/.exec(run.stdout)?.[1]);
}

interface ConsumerRow {
  readonly position: number;
  readonly lag: number;
  readonly lastCommit: string;
  readonly entry: number;
}

/** The rows of the `consumers` table, by name, and the commit index its last line measures lags against. */
function consumerTable(run: Run): { rows: Map<string, ConsumerRow>; commitIndex: number } {
  expect(run).toMatchObject({ code: 0, stderr: '' });
  const [header, ...rest] = lines(run.stdout);
  const summary = rest.pop() ?? '';
  expect(header).toMatch(/^CONSUMER +POSITION +LAG +LAST COMMIT +COMMIT ENTRY$/);
  const commitIndex = Number(/^lag against commit index (\d+) on n\d \(read at index \d+\)$/.exec(summary)?.[1]);
  const rows = new Map<string, ConsumerRow>();
  for (const row of rest) {
    const match = /^(\S+) +(\d+) +(\d+) +(\S.* ago|-) +(\d+|-)$/.exec(row);
    expect(match, row).not.toBeNull();
    rows.set(match![1]!, { position: Number(match![2]), lag: Number(match![3]), lastCommit: match![4]!, entry: Number(match![5]) });
  }
  return { rows, commitIndex };
}

describe('raftlog tail and consumers on a 3-node cluster', () => {
  let cluster: ProcessCluster | null = null;
  let endpoints: string[] = [];
  const raftlog = (...args: string[]) => start(endpoints, args).run;

  beforeAll(async () => {
    cluster = await ProcessCluster.start(3);
    endpoints = cluster.ids.map((id) => cluster!.address(id));
    await cluster.waitForLeader(cluster.ids, WAIT_MS);
  }, TEST_MS);
  afterAll(async () => {
    await cluster?.destroy();
    cluster = null;
  });

  it('shows an appended record once, at the index append reported, in a log without gaps', { timeout: TEST_MS }, async () => {
    const { index, term } = appendedAt(await raftlog('append', 'order 1'));

    const tail = await raftlog('tail', '--from', '1');
    expect(tail.code).toBe(0);
    expect(tail.stderr).toBe('');
    // No filter: every index from 1 up to where the tail ended, each once.
    const indexes = indexesOf(tail);
    expect(indexes).toEqual(range(1, indexes.length));
    expect(indexes.length).toBeGreaterThanOrEqual(index);
    const records = lines(tail.stdout).filter((line) => line.includes('"order 1"'));
    expect(records).toEqual([expect.stringMatching(new RegExp(`^${index}  term ${term}  append  "order 1"  \\(producer \\d+ seq 1\\)$`))]);
    // A producer's id is the index of the entry that registered it, before its first write.
    const producer = Number(/\(producer (\d+) seq 1\)$/.exec(records[0]!)?.[1]);
    expect(producer).toBeLessThan(index);
    expect(lines(tail.stdout)[producer - 1]).toMatch(new RegExp(`^${producer}  term \\d+  register-producer$`));

    const json = await raftlog('--json', 'tail', '--from', String(index), '--kinds', 'append');
    expect(json.code).toBe(0);
    expect(JSON.parse(lines(json.stdout)[0]!)).toEqual({
      index,
      term,
      kind: 'append',
      record: { value: 'order 1', encoding: 'utf8' },
      producer: { id: producer, sequence: 1 },
      proposedAtMs: expect.any(Number),
    });
  });

  it('resumes a consumer after what its previous tail printed, and lists it with its lag', { timeout: TEST_MS }, async () => {
    await raftlog('append', 'before the first tail');
    const first = await raftlog('tail', '--consumer', 'c');
    expect(first).toMatchObject({ code: 0, stderr: '' });
    // A consumer with no position starts at --from, 1 by default.
    const firstIndexes = indexesOf(first);
    expect(firstIndexes).toEqual(range(1, firstIndexes.length));
    expect(first.stdout).toContain('"before the first tail"');

    const { index: later } = appendedAt(await raftlog('append', 'after the first tail'));
    const second = await raftlog('tail', '--consumer', 'c');
    expect(second).toMatchObject({ code: 0, stderr: '' });
    const secondIndexes = indexesOf(second);
    // Right after the first: nothing twice, nothing skipped; the first tail's own commit is among what follows.
    expect(secondIndexes).toEqual(range(firstIndexes.length + 1, firstIndexes.length + secondIndexes.length));
    expect(lines(second.stdout)).toContainEqual(expect.stringMatching(new RegExp(`^\\d+  term \\d+  commit-position  c at ${firstIndexes.length}$`)));
    expect(second.stdout).toContain('"after the first tail"');
    expect(second.stdout).not.toContain('"before the first tail"');

    const listed = consumerTable(await raftlog('consumers'));
    const c = listed.rows.get('c');
    expect(c).toMatchObject({ position: secondIndexes.at(-1) });
    expect(c!.position).toBeGreaterThanOrEqual(later);
    // Its own commit came after its position, so it lags by at least that entry.
    expect(c!.lag).toBe(listed.commitIndex - c!.position);
    expect(c!.lag).toBeGreaterThanOrEqual(1);
    expect(c!.entry).toBeGreaterThan(c!.position);
    expect(c!.lastCommit).toMatch(/^\d+\.\d (s|min) ago$/);

    const json = JSON.parse((await raftlog('--json', 'consumers')).stdout) as {
      consumers: { name: string; position: number; lag: number }[];
      commitIndex: number;
    };
    expect(json.consumers.find((entry) => entry.name === 'c')).toMatchObject({ position: c!.position, lag: json.commitIndex - c!.position });
  });

  it('follows the log live with -f, then exits 0 on SIGTERM with its consumer committed past what it printed', { timeout: TEST_MS }, async () => {
    const { index: marker } = appendedAt(await raftlog('append', 'marker before the live tail'));
    const live = start(endpoints, ['tail', '-f', '--consumer', 'live', '--kinds', 'append']);
    // Caught up: what was appended before it started is printed.
    await waitFor('the live tail to print the marker', () => live.output().includes('"marker before the live tail"'), WAIT_MS);

    const { index: appended } = appendedAt(await raftlog('append', 'appended while tailing'));
    expect(appended).toBeGreaterThan(marker);
    await waitFor('the live tail to print the record appended after it started', () => live.output().includes('"appended while tailing"'), WAIT_MS);
    expect(live.child.exitCode).toBeNull();

    live.child.kill('SIGTERM');
    const run = await live.run;
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const printed = lines(run.stdout);
    expect(printed.filter((line) => line.includes('"appended while tailing"'))).toEqual([
      expect.stringMatching(new RegExp(`^${appended}  term \\d+  append  `)),
    ]);
    expect(printed.every((line) => / {2}append {2}/.test(line))).toBe(true);

    const listed = consumerTable(await raftlog('consumers'));
    expect(listed.rows.get('live')?.position).toBeGreaterThanOrEqual(appended);
  });

  it('shows what writes did in the changes view: key, before, after', { timeout: TEST_MS }, async () => {
    const put1 = writtenAt(await raftlog('put', 'changes/k', 'one'));
    const put2 = writtenAt(await raftlog('put', 'changes/k', 'two'));
    const swapped = writtenAt(await raftlog('cas', 'changes/k', 'two', 'three'));
    const deleted = writtenAt(await raftlog('del', 'changes/k'));
    await raftlog('put', 'elsewhere', 'not shown');

    const tail = await raftlog('tail', '--view', 'changes', '--prefix', 'changes/', '--from', String(put1));
    expect(tail).toMatchObject({ code: 0, stderr: '' });
    expect(lines(tail.stdout).map((line) => line.replace(/  term \d+  /, '  '))).toEqual([
      `${put1}  put  changes/k: (absent) → "one"`,
      `${put2}  put  changes/k: "one" → "two"`,
      `${swapped}  cas  changes/k: "two" → "three"`,
      `${deleted}  delete  changes/k: "three" → (deleted)`,
    ]);

    const json = await raftlog('--json', 'tail', '--view', 'changes', '--prefix', 'changes/', '--from', String(deleted));
    expect(JSON.parse(lines(json.stdout)[0]!)).toMatchObject({
      index: deleted,
      kind: 'delete',
      changes: [{ key: { value: 'changes/k', encoding: 'utf8' }, before: { value: 'three', encoding: 'utf8' }, after: null }],
    });
  });

  it('refuses a backwards commit with exit code 7 unless allowed, and forgets a deleted consumer', { timeout: TEST_MS }, async () => {
    expect(await raftlog('consumers', 'commit', 'rewinder', '3')).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^OK {2}rewinder at 3; committed at index \d+ term \d+ \(leader n\d\)\n$/),
    });

    const refused = await raftlog('consumers', 'commit', 'rewinder', '1');
    expect(refused.code).toBe(7);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(
      /^error: commitPosition refused by .*consumer rewinder is at 3; committing 1 would move it backwards.*\(FAILED_PRECONDITION\)\n$/,
    );
    expect(consumerTable(await raftlog('consumers')).rows.get('rewinder')?.position).toBe(3);

    expect((await raftlog('consumers', 'commit', 'rewinder', '1', '--allow-backwards')).code).toBe(0);
    expect(consumerTable(await raftlog('consumers', '--local')).rows.get('rewinder')?.position ?? NaN).toBeLessThanOrEqual(3);
    expect(consumerTable(await raftlog('consumers')).rows.get('rewinder')?.position).toBe(1);

    expect(await raftlog('consumers', 'delete', 'rewinder')).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^OK {2}deleted consumer rewinder; index \d+ term \d+/),
    });
    expect(consumerTable(await raftlog('consumers')).rows.has('rewinder')).toBe(false);
    expect((await raftlog('consumers', 'delete', 'rewinder')).stdout).toMatch(/^OK {2}consumer rewinder was not there; /);
  });
});

describe('raftlog tail on a compacted cluster', () => {
  let cluster: ProcessCluster | null = null;

  afterEach(async () => {
    await cluster?.destroy();
    cluster = null;
  });

  it('exits 6 from a start compacted away, naming the first index held; from there it works', { timeout: TEST_MS }, async () => {
    cluster = await ProcessCluster.start(3, ['--snapshot-entries', '20', '--retain-entries', '5']);
    const c = cluster;
    const leader = await c.waitForLeader(c.ids, WAIT_MS);
    let written = 0;
    for (let i = 0; i < 60; i++) {
      const reply = await c.call<{ position: { index: string } }>(leader, 'append', { record: Buffer.from(`event ${i}`) }, 10_000);
      written = Number(reply.position.index);
    }
    await c.waitForConvergence(written, c.ids, WAIT_MS);
    const follower = c.ids.find((id) => id !== leader)!;
    // Settled: no snapshot is due any more (the latest is within 20 entries of the end) and the log behind it is cut to the 5 retained.
    const compacted = await waitFor(
      `node ${follower} to compact its log behind its latest snapshot`,
      async () => {
        const s = await c.status(follower);
        const [first, snapshot, commit] = [Number(s.firstLogIndex), Number(s.snapshotIndex), Number(s.commitIndex)];
        return first > 1 && snapshot > commit - 20 && first >= snapshot - 5 ? s : undefined;
      },
      { timeoutMs: WAIT_MS, intervalMs: 100 },
    );
    const firstIndex = Number(compacted.firstLogIndex);
    const only = [c.address(follower)];

    const run = await start(only, ['tail', '--from', '1']).run;
    expect(run.code).toBe(6);
    expect(run.stdout).toBe('');
    expect(lines(run.stderr)).toEqual([
      expect.stringMatching(new RegExp(`^error: subscribe on .*the log starts at ${firstIndex}.*; to read what is left, use --from ${firstIndex}$`)),
    ]);

    const json = await start(only, ['--json', 'tail', '--from', '1']).run;
    expect(json.code).toBe(6);
    expect(JSON.parse(json.stderr)).toMatchObject({
      error: { kind: 'compacted', code: 'OUT_OF_RANGE', operation: 'subscribe', fromIndex: 1, firstIndex },
    });

    const rest = await start(only, ['tail', '--from', String(firstIndex), '--kinds', 'append']).run;
    expect(rest.code).toBe(0);
    expect(indexesOf(rest)[0]).toBe(firstIndex);
    expect(lines(rest.stdout).at(-1)).toMatch(new RegExp(`^${written}  term \\d+  append  "event 59"$`));
  });
});
