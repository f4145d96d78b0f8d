/**
 * The short jepsen-lite pass of `npm test`: real 3-node clusters behind fault
 * proxies, partitions and kills while clients work, then every checker; in
 * one run the nodes snapshot and compact every 100 entries, so that nodes
 * coming back from a fault need InstallSnapshot; in another members are
 * added, promoted, removed and replaced meanwhile; in another subscribers
 * and crashing durable consumers read the log while it is written. A
 * longer, harsher run is
 * `npm run jepsen` (see the README).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ClientEvent, parseHistory } from './history.js';
import { JEPSEN_DEFAULTS, type JepsenOptions, type JepsenResult, runJepsen } from './run.js';
import { formatSummary } from './summary.js';

const outputs: string[] = [];
afterAll(async () => {
  for (const dir of outputs) await rm(dir, { recursive: true, force: true });
});

async function run(overrides: Partial<JepsenOptions>): Promise<JepsenResult> {
  const out = await mkdtemp(join(tmpdir(), 'raftlog-jepsen-'));
  outputs.push(out);
  return runJepsen({
    ...JEPSEN_DEFAULTS,
    nemesis: ['partition', 'kill'],
    timeSeconds: 30,
    // Faults come often and short, so 30 s holds several of each kind.
    faultIntervalMs: 3_000,
    minFaultMs: 1_500,
    maxFaultMs: 4_000,
    out,
    log: () => {},
    ...overrides,
  });
}

const verdicts = (result: JepsenResult) => Object.fromEntries(result.checkers.map((c) => [c.name, c.valid]));

describe('jepsen-lite short pass (3 nodes, partitions and kills)', () => {
  it('register workload: every key linearizable, logs agree, digests equal, a leader and a write soon after the heal', async () => {
    const result = await run({ workload: 'register', seed: 11 });
    expect(result.valid, formatSummary(result)).toBe(true);
    expect(verdicts(result)).toEqual({
      'liveness after heal': true,
      linearizability: true,
      'log agreement': true,
      'state digests': true,
    });
    // The run did what it claims: faults of both kinds, and real work.
    expect(result.faults.partition ?? 0, formatSummary(result)).toBeGreaterThan(0);
    expect(result.faults.kill ?? 0, formatSummary(result)).toBeGreaterThan(0);
    const ok = Object.values(result.counts).reduce((sum, c) => sum + c.ok, 0);
    expect(ok).toBeGreaterThan(500);
    // The history is on disk in the documented format.
    const history = parseHistory(await readFile(join(result.out, 'history.jsonl'), 'utf8'));
    expect(history.some((e) => e.process === 'nemesis' && e.f === 'kill')).toBe(true);
    const cas = history.find((e): e is ClientEvent => e.process !== 'nemesis' && e.f === 'cas');
    expect(Array.isArray(cas?.value)).toBe(true);
    expect(await readFile(join(result.out, 'report.html'), 'utf8')).toContain('<svg');
  }, 240_000);

  it('append workload, compacting every 100 entries: every acknowledged append once at its index, no failed one, logs agree after the heal', async () => {
    // The log is read while the run goes (the nodes compact behind it), so appends stay checkable.
    const result = await run({ workload: 'append', seed: 12, snapshotEntries: 100, retainEntries: 20 });
    expect(result.valid, formatSummary(result)).toBe(true);
    expect(verdicts(result)).toEqual({
      'liveness after heal': true,
      appends: true,
      'log agreement': true,
      'state digests': true,
    });
    expect(result.faults.partition ?? 0).toBeGreaterThan(0);
    expect(result.faults.kill ?? 0).toBeGreaterThan(0);
    expect(result.counts.append?.ok ?? 0).toBeGreaterThan(500);
    // The folder holds what a third party needs to check the verdict again: each node's committed log and digest,
    // and the fault schedule, beside the history.
    const digests = JSON.parse(await readFile(join(result.out, 'finals', 'digests.json'), 'utf8')) as {
      node: string;
      commitIndex: number;
      firstIndex: number;
      digest: string;
    }[];
    expect(digests.map((d) => d.node).sort()).toEqual(['n1', 'n2', 'n3']);
    const windows: { node: string; window: string; appends: number }[] = [];
    for (const { node, commitIndex, firstIndex, digest } of digests) {
      expect(digest).toMatch(/^[0-9a-f]{64}$/);
      const lines = (await readFile(join(result.out, 'finals', `${node}.jsonl`), 'utf8')).trim().split('\n');
      const entries = lines.map((line) => JSON.parse(line) as { index: number; term: number; kind: string; record: string });
      expect(entries[0]?.index).toBe(firstIndex);
      expect(entries.at(-1)?.index).toBe(commitIndex);
      const appends = entries.filter((e) => e.kind === 'LOG_ENTRY_KIND_APPEND' && e.record !== '').length;
      windows.push({ node, window: `${firstIndex}..${commitIndex}`, appends });
    }
    // Records are written out, in some node's window at least. Not in every node's: a follower brought up to date
    // by a snapshot taken after the last append holds only what came after it (the liveness write, a no-op).
    expect(
      windows.some((w) => w.appends > 0),
      JSON.stringify(windows),
    ).toBe(true);
    const schedule = (await readFile(join(result.out, 'nemesis.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { f: string });
    expect(schedule.filter((e) => e.f === 'kill').length).toBe(result.faults.kill);
  }, 240_000);

  it('register workload with compaction every 100 entries: passes, and every node snapshots and some follower installs a snapshot', async () => {
    // About 120 writes/s: every node snapshots every second or so and keeps 20 entries behind, so a
    // node that is killed or cut off for 1.5–4 s comes back behind every peer's log and needs InstallSnapshot.
    const result = await run({ workload: 'register', seed: 14, snapshotEntries: 100, retainEntries: 20 });
    expect(result.valid, formatSummary(result)).toBe(true);
    expect(verdicts(result)).toEqual({
      'liveness after heal': true,
      linearizability: true,
      'log agreement': true,
      'state digests': true,
    });
    expect(result.faults.partition ?? 0).toBeGreaterThan(0);
    expect(result.faults.kill ?? 0).toBeGreaterThan(0);
    // Compaction really happened: every node took snapshots, and its log now starts after index 1.
    const compaction = result.compaction;
    expect(compaction?.settings).toEqual({ snapshotEntries: 100, retainEntries: 20 });
    for (const node of compaction?.nodes ?? []) {
      expect(node.taken, formatSummary(result)).toBeGreaterThan(0);
      expect(node.firstIndex, formatSummary(result)).toBeGreaterThan(1);
      expect(node.snapshotIndex).toBeGreaterThan(0);
    }
    expect(compaction?.nodes.length).toBe(3);
    // InstallSnapshot really happened, as the nodes' own log files say.
    const logs = await Promise.all(['n1', 'n2', 'n3'].map((id) => readFile(join(result.out, 'nodes', `${id}.log`), 'utf8')));
    expect(
      logs.every((log) => log.includes('"event":"snapshot"')),
      formatSummary(result),
    ).toBe(true);
    expect(
      logs.some((log) => log.includes('"event":"snapshot-installed"')),
      formatSummary(result),
    ).toBe(true);
    // The log check compared the windows the nodes still hold, not whole logs.
    expect(result.checkers.find((c) => c.name === 'log agreement')?.summary).toMatch(/1\.\.\d+ compacted on every node/);
  }, 240_000);

  it('register workload while members are added, promoted, removed and replaced among kills and partitions: every checker passes over the final configuration', async () => {
    // Founders n1..n3; the membership nemesis may use slots n1..n5 (new members under new ids: n4, then n1.2, ...)
    // and keeps 3 to 5 voters. The nodes compact every 100 entries, so a member added late catches up from a
    // snapshot taken before it was added.
    const result = await run({
      workload: 'register',
      nemesis: ['membership', 'kill', 'partition'],
      nodes: 3,
      maxNodes: 5,
      seed: 15,
      snapshotEntries: 100,
      retainEntries: 20,
      // A step (start a joiner, add, catch up, promote) takes seconds, and a replacement took over 45 s on this
      // 2-core machine under a soak and the rest of the suite at once: room for several.
      timeSeconds: 75,
    });
    expect(result.valid, formatSummary(result)).toBe(true);
    expect(verdicts(result)).toEqual({
      'liveness after heal': true,
      'final configuration': true,
      linearizability: true,
      'log agreement': true,
      'state digests': true,
    });
    // The membership really changed, alongside the other faults.
    const membership = result.membership;
    expect(membership?.counts.added ?? 0, formatSummary(result)).toBeGreaterThan(0);
    expect(membership?.counts.promoted ?? 0, formatSummary(result)).toBeGreaterThan(0);
    expect(membership?.counts.removed ?? 0, formatSummary(result)).toBeGreaterThan(0);
    expect(membership?.unexpectedExits).toEqual([]);
    // No add was refused for reusing a removed id: every new member took an id never used before.
    expect(membership?.steps.filter((step) => step.includes('was removed from this cluster'))).toEqual([]);
    expect(result.faults.kill ?? 0, formatSummary(result)).toBeGreaterThan(0);
    expect(result.faults.partition ?? 0, formatSummary(result)).toBeGreaterThan(0);
    // The final configuration is reported, within bounds, and the final checks covered exactly its members.
    const final = membership?.final;
    expect(final?.committed).toBe(true);
    expect(final?.voters.length).toBeGreaterThanOrEqual(3);
    expect(final?.voters.length).toBeLessThanOrEqual(5);
    expect(result.compaction?.nodes.map((n) => n.node).sort()).toEqual([...(final?.voters ?? []), ...(final?.learners ?? [])].sort());
    // The history shows each change as a window, as it shows the other faults.
    const history = parseHistory(await readFile(join(result.out, 'history.jsonl'), 'utf8'));
    const changes = history.filter((e) => e.process === 'nemesis' && e.value.kind === 'membership' && e.f.startsWith('start-member-'));
    expect(changes.length).toBe(membership?.counts.steps);
    const ok = Object.values(result.counts).reduce((sum, c) => sum + c.ok, 0);
    expect(ok).toBeGreaterThan(300);
  }, 240_000);

  it('subscribe workload: every reader handed a gap-free, duplicate-free prefix of the committed log, consumers resume after their committed positions, which never go back', async () => {
    // Writers append with exactly-once retries; 3 plain subscribers start on n1, n2, n3 and 2 durable consumers crash every few seconds.
    const result = await run({ workload: 'subscribe', seed: 16 });
    expect(result.valid, formatSummary(result)).toBe(true);
    expect(verdicts(result)).toEqual({
      'liveness after heal': true,
      appends: true,
      subscriptions: true,
      'consumer positions': true,
      'log agreement': true,
      'state digests': true,
    });
    expect(result.faults.partition ?? 0, formatSummary(result)).toBeGreaterThan(0);
    expect(result.faults.kill ?? 0, formatSummary(result)).toBeGreaterThan(0);
    expect(result.counts.append?.ok ?? 0, formatSummary(result)).toBeGreaterThan(200);
    // The readers did what the run claims: many entries each, streams moved off killed or cut-off nodes, consumers crashed and resumed.
    const readers = result.subscriptions?.readers ?? [];
    expect(
      readers
        .map((r) => `${r.mode} ${r.pinnedTo}`)
        .filter((r) => r.startsWith('plain'))
        .sort(),
    ).toEqual(['plain n1', 'plain n2', 'plain n3']);
    expect(readers.filter((r) => r.mode === 'consumer')).toHaveLength(2);
    for (const reader of readers) expect(reader.delivered, formatSummary(result)).toBeGreaterThan(200);
    expect(
      readers.reduce((sum, r) => sum + r.reconnects, 0),
      formatSummary(result),
    ).toBeGreaterThan(0);
    for (const consumer of readers.filter((r) => r.mode === 'consumer')) {
      expect(consumer.crashes, formatSummary(result)).toBeGreaterThan(0);
      expect(consumer.resumes, formatSummary(result)).toBeGreaterThan(0);
    }
    expect(result.subscriptions?.notCaughtUp).toEqual([]);
    expect(result.counts.commit?.ok ?? 0).toBeGreaterThan(0);
    expect(result.counts.consumers?.ok ?? 0).toBeGreaterThan(0);
    // Each reader's journal is on disk, one JSON object per line, its entries in the order they were handed out.
    const journal = (await readFile(join(result.out, 'subscribers', 's1.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type?: string; index?: number });
    expect(journal[0]).toMatchObject({ subscriber: 's1', mode: 'plain', pinnedTo: 'n1' });
    expect(journal.filter((e) => e.type === 'entry').length).toBe(readers.find((r) => r.name === 's1')?.delivered);
  }, 240_000);

  it('a planted bug is caught: a subscriber that drops the entry after each reconnect is reported, by name and index, and nothing else fails', async () => {
    // Short and kill-only: nodes die every second or two, so some subscriber reconnects early and the bug strikes.
    const result = await run({
      workload: 'subscribe',
      nemesis: ['kill'],
      plantedBug: 'skip-after-reconnect',
      consumers: 0,
      timeSeconds: 10,
      faultIntervalMs: 1_500,
      minFaultMs: 1_000,
      maxFaultMs: 2_000,
      seed: 17,
    });
    const bug = result.subscriptions?.plantedBug;
    expect(bug?.victim, formatSummary(result)).not.toBeNull();
    expect(bug?.dropped ?? 0, formatSummary(result)).toBeGreaterThan(0);
    expect(result.valid).toBe(false);
    expect(verdicts(result), formatSummary(result)).toEqual({
      'liveness after heal': true,
      appends: true,
      subscriptions: false,
      'consumer positions': true,
      'log agreement': true,
      'state digests': true,
    });
    const problems = (result.checkers.find((c) => c.name === 'subscriptions')?.details ?? '').split('\n');
    expect(
      problems.every((p) => p.startsWith(`${bug?.victim}: `)),
      problems.join('\n'),
    ).toBe(true);
    expect(
      problems.some((p) => /skipped index \d+ in subscription 1: after \d+ it was handed \d+ right after a reconnect/.test(p)),
      problems.join('\n'),
    ).toBe(true);
  }, 240_000);

  it('a planted bug is caught: local (stale) reads under partitions are reported not linearizable', async () => {
    const result = await run({
      workload: 'register',
      nemesis: ['partition'],
      readMode: 'local',
      timeSeconds: 20,
      keys: 2,
      faultIntervalMs: 1_500,
      minFaultMs: 3_000,
      maxFaultMs: 5_000,
      seed: 13,
    });
    expect(verdicts(result).linearizability, formatSummary(result)).toBe(false);
    expect(result.valid).toBe(false);
    // The stale reads broke linearizability only: the log itself stayed consistent.
    expect(verdicts(result)['log agreement']).toBe(true);
    const details = result.checkers.find((c) => c.name === 'linearizability')?.details ?? '';
    expect(details).toMatch(/read/);
  }, 240_000);

  it('disk faults: stalled and failing disks (a failed write stops its node, restarted at the heal) among partitions; every checker passes', async () => {
    const result = await run({ nemesis: ['disk', 'partition'], timeSeconds: 25, seed: 5, faultIntervalMs: 2_500 });
    expect(result.valid, formatSummary(result)).toBe(true);
    expect(result.faults.disk ?? 0).toBeGreaterThan(0);
    expect(verdicts(result)).toMatchObject({ linearizability: true, 'log agreement': true, 'state digests': true });
  }, 240_000);

  it('a planted node bug is caught: linearizable reads answered from local state (failpoint bug-read-local) are reported not linearizable', async () => {
    // The mutation suite's first row (npm run jepsen:mutations) kept in CI, with the suite's schedule (the defaults,
    // 30 s): the schedules must fail a broken node. A stale read needs a partition to meet a write to a key read on
    // the cut-off side, which real timing decides: one 30 s run of seed 2 missed it once in CI (2026-12-02, 4
    // partitions), so up to three of the suite's seeds run, and the first that fails the node ends the test.
    const { faultIntervalMs, minFaultMs, maxFaultMs } = JEPSEN_DEFAULTS;
    const missed: string[] = [];
    let caught: JepsenResult | null = null;
    for (const seed of [2, 3, 1]) {
      const result = await run({ mutation: 'bug-read-local', timeSeconds: 30, seed, faultIntervalMs, minFaultMs, maxFaultMs });
      if (!verdicts(result).linearizability) {
        caught = result;
        break;
      }
      missed.push(`seed ${seed}: ${formatSummary(result)}`);
    }
    if (caught === null) return expect.fail(`bug-read-local was not caught in 3 seeds:\n${missed.join('\n')}`);
    expect(caught.checkers.find((c) => c.name === 'linearizability')?.details ?? '').toMatch(/read/);
  }, 600_000);
});
