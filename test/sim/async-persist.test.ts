/**
 * Asynchronous persistence: a node's durable write completes events after it
 * took the output, and meanwhile the node keeps stepping messages and ticking.
 * This is where the core's subtle code lives: entries replaced in memory while
 * the write that carries them is in flight (RaftLog.stableTo), a leader that
 * counts its own entries only once they are on disk, messages produced while an
 * output is outstanding that leave with the next one. The seeds that choose
 * this mode run in seeds-a/seeds-b; here it is forced on for a batch of its
 * own, and the caller's side of the contract is pinned down.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/raft/random.js';
import type { Message } from '../../src/raft/types.js';
import { formatFailure, replayCommand } from './batch.js';
import { Cluster, emptyStats } from './cluster.js';
import { realCore } from './default-core.js';
import { EventLog } from './event-log.js';
import { SafetyChecks } from './invariants.js';
import { Network } from './network.js';
import { chooseScenario } from './scenario.js';
import { describeSeedBatch } from './seed-batch.js';
import type { SimNode } from './sim-node.js';
import { defaultNodeCount, runSimulation } from './simulation.js';

// Seeds of their own (seeds-a/seeds-b run 0..5999 with the mode each seed chooses).
describeSeedBatch(20_000, 2500, 500, {
  scenario: { asyncPersist: true },
  label: 'asynchronous persistence forced on',
  expectChunk: (summary) => {
    const s = summary.totals.stats;
    expect(summary.totals.asyncSeeds).toBe(summary.seedsRun);
    // The windows this mode exists for were exercised, not just the happy path.
    expect(s.deliveriesDuringWrite / summary.seedsRun).toBeGreaterThan(100);
    expect(s.writesReplacedInFlight).toBeGreaterThan(0);
    expect(s.crashesLosingWrite).toBeGreaterThan(0);
    expect(s.crashesAfterWrite).toBeGreaterThan(0);
  },
});

function traceOf(seed: number, asyncPersist: boolean): { hash: string; text: string } {
  const lines: string[] = [];
  runSimulation({ seed, coreFactory: realCore, scenario: { asyncPersist }, trace: (line) => lines.push(line) });
  const text = lines.join('\n');
  return { hash: createHash('sha256').update(text).digest('hex'), text };
}

describe('asynchronous persistence in the simulation', () => {
  it('is chosen by about half of the seeds, and can be forced either way', () => {
    let on = 0;
    for (let seed = 0; seed < 1000; seed++) if (chooseScenario(seed, defaultNodeCount(seed)).asyncPersist) on++;
    expect(on).toBeGreaterThan(400);
    expect(on).toBeLessThan(600);
    const seed = [...Array(20).keys()].find((s) => chooseScenario(s, defaultNodeCount(s)).asyncPersist) as number;
    expect(traceOf(seed, false).text).not.toContain('write until t=');
    expect(traceOf(seed, true).text).toContain('write until t=');
  });

  it('replays a seed byte for byte (3 and 5 nodes), and traces the writes, stalls and crashes it adds', () => {
    let text = '';
    for (const seed of [20, 21]) {
      const first = traceOf(seed, true);
      expect(traceOf(seed, true).hash).toBe(first.hash);
      expect(first.text).toContain('persistence async');
      text += first.text;
    }
    expect(text).toMatch(/write until t=\d+: entries \[/);
    expect(text).toMatch(/CRASH \(down for \d+\): the write in flight (is lost|completed just before)/);
  });

  it('names the forced mode in the replay command of a failure', () => {
    const seed = [...Array(20).keys()].find((s) => !chooseScenario(s, defaultNodeCount(s)).asyncPersist) as number;
    const result = runSimulation({ seed, coreFactory: realCore, scenario: { asyncPersist: true } });
    expect(replayCommand(result)).toBe(`npm run sim -- --seed ${seed} --trace --async-persist on`);
    const own = runSimulation({ seed, coreFactory: realCore });
    expect(replayCommand(own)).toBe(`npm run sim -- --seed ${seed} --trace`);
  });

  it('catches a caller that sends an output’s messages before its write completes', () => {
    // Its acknowledgements and votes claim what its disk does not hold yet: a leader counts an entry
    // committed while a majority of durable logs still lacks it.
    let caught = null;
    for (let seed = 0; seed < 20 && caught === null; seed++) {
      const result = runSimulation({ seed, coreFactory: realCore, scenario: { asyncPersist: true }, callerBug: 'send-before-persist' });
      if (result.violation !== null) caught = result;
    }
    if (caught === null) expect.fail('a caller that sends before persisting was not caught in 20 seeds');
    // A leader counts acknowledgements no durable log backs: a commit no quorum holds (seen at once), or later a lost one.
    expect(['Commit Quorum', 'Leader Completeness'], formatFailure(caught)).toContain(caught.violation?.property);
    const control = runSimulation({ seed: caught.seed, coreFactory: realCore, scenario: { asyncPersist: true } });
    expect(control.violation, control.violation === null ? '' : formatFailure(control)).toBeNull();
  });
});

/** Three nodes driven by hand, with writes that complete only when the test says so. */
function handCluster() {
  const clock = { now: 0 };
  const sent: Message[] = [];
  const completions: { at: number; node: SimNode; life: number; serial: number }[] = [];
  const stats = emptyStats();
  const cluster = new Cluster({
    ids: ['n1', 'n2', 'n3'],
    tickPeriods: [10, 10, 10],
    tuning: {
      electionTicks: 10,
      heartbeatTicks: 1,
      preVote: false,
      checkQuorum: false,
      maxMessageBytes: 1 << 20,
      maxInflightMessages: 256,
      maxApplyBytes: 1 << 22,
      maxUncommittedBytes: 64 * 1024 * 1024,
    },
    coreFactory: realCore,
    clock,
    network: new Network(new SeededRandom(1), {
      minDelay: 1,
      maxDelay: 1,
      lossRate: 0,
      duplicateRate: 0,
      longDelayRate: 0,
      longDelayMax: 1,
    }),
    log: new EventLog(null),
    checks: new SafetyChecks(clock),
    coreSeeds: new SeededRandom(7),
    deliverLater: (_delay, message) => sent.push(message),
    snapshots: null,
    reportSnapshotLater: () => undefined,
    stats,
    persistence: {
      delay: () => 5,
      completeAt: (at, node, life, serial) => completions.push({ at, node, life, serial }),
      emptyWritesWait: true,
    },
  });
  const [n1, n2, n3] = cluster.nodes as [SimNode, SimNode, SimNode];
  for (const node of cluster.nodes) cluster.start(node);
  /** Ticks n1 until it campaigns: its write of term 1 and its own vote is then in flight. */
  const campaign = (): void => {
    for (let i = 0; i < 30 && n1.write === null; i++) cluster.tick(n1);
    expect(n1.write?.output.hardState).toMatchObject({ term: 1, votedFor: 'n1' });
  };
  /** The last completion scheduled happens now (the clock moves to its time). */
  const completeLast = (): void => {
    const done = completions.at(-1);
    if (done === undefined) throw new Error('no write was started');
    clock.now = Math.max(clock.now, done.at);
    cluster.completeWrite(done.node, done.life, done.serial);
  };
  return { cluster, clock, sent, completions, stats, n1, n2, n3, campaign, completeLast };
}

describe('the caller with asynchronous persistence', () => {
  it('holds an output’s messages until its write completes, and keeps stepping and ticking meanwhile', () => {
    const h = handCluster();
    h.campaign();
    const write = h.n1.write;
    expect(h.sent).toHaveLength(0);
    expect(h.n1.storage.currentHardState().term).toBe(0);
    for (let i = 0; i < 5; i++) h.cluster.tick(h.n1);
    expect(h.n1.write).toBe(write); // one output outstanding at a time
    expect(h.sent).toHaveLength(0);

    h.completeLast();
    expect(h.n1.storage.currentHardState()).toMatchObject({ term: 1, votedFor: 'n1' });
    expect(h.sent.filter((m) => m.type === 'VoteRequest').map((m) => m.to)).toEqual(['n2', 'n3']);
  });

  it('loses the whole write in flight on a crash, and ignores its completion after the restart', () => {
    const h = handCluster();
    h.campaign();
    h.completeLast();
    const request = h.sent.find((m) => m.to === 'n2') as Message;
    h.sent.length = 0;

    h.cluster.deliver(request, false);
    const vote = h.completions.at(-1);
    expect(vote?.node).toBe(h.n2);
    expect(h.sent).toHaveLength(0); // the vote leaves only once it is on disk
    h.cluster.crash(h.n2, 10);
    expect(h.n2.storage.currentHardState()).toMatchObject({ term: 0, votedFor: null });
    expect(h.stats.crashesLosingWrite).toBe(1);

    h.cluster.start(h.n2);
    h.clock.now = vote?.at ?? 0;
    h.cluster.completeWrite(h.n2, vote?.life ?? -1, vote?.serial ?? -1); // stale: an earlier life
    expect(h.n2.storage.currentHardState()).toMatchObject({ term: 0, votedFor: null });
    expect(h.sent).toHaveLength(0);
  });

  it('stores a write that completed just before a crash, but sends nothing of it', () => {
    const h = handCluster();
    h.campaign();
    h.completeLast();
    const request = h.sent.find((m) => m.to === 'n3') as Message;
    h.sent.length = 0;

    h.cluster.deliver(request, false);
    h.cluster.crash(h.n3, 10, true);
    expect(h.n3.storage.currentHardState()).toMatchObject({ term: 1, votedFor: 'n1' });
    expect(h.sent).toHaveLength(0);
    expect(h.stats.crashesAfterWrite).toBe(1);
  });

  it('lets a disk stall postpone the write in flight; the completion due earlier is ignored', () => {
    const h = handCluster();
    h.campaign();
    const due = h.completions.at(-1);
    h.cluster.stallDisk(h.n1, 100);
    const moved = h.completions.at(-1);
    expect(moved?.serial).toBe(due?.serial);
    expect(h.n1.write?.doneAt).toBe(100);

    h.clock.now = 5;
    h.cluster.completeWrite(h.n1, due?.life ?? -1, due?.serial ?? -1);
    expect(h.n1.storage.currentHardState().term).toBe(0);
    expect(h.sent).toHaveLength(0);
    h.clock.now = 100;
    h.cluster.completeWrite(h.n1, moved?.life ?? -1, moved?.serial ?? -1);
    expect(h.n1.storage.currentHardState().term).toBe(1);
    expect(h.sent).toHaveLength(2);
  });
});
