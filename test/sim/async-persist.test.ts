/**
 * Asynchronous persistence: a node's durable write completes events after it
 * took the output, and meanwhile the node keeps stepping messages and ticking.
 * This is where the core's subtle code lives: entries replaced in memory while
 * the write that carries them is in flight (RaftLog.stableTo), a leader that
 * counts its own entries only once they are on disk, messages produced while an
 * output is outstanding that leave with the next one. The seeds that choose
 * this mode run in seeds.test.ts; here it is forced on for a batch of its
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
import { defaultNodeCount, runSimulation, type SimulationResult, type WriteOrderBug } from './simulation.js';

// Seeds of their own (seeds.test.ts runs 0..2499 with the mode each seed chooses; npm run sim:sweep goes further).
describeSeedBatch(20_000, 1500, 500, {
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
    // Several writes in progress at once, behind one another.
    expect(s.writesBehindOthers / summary.seedsRun).toBeGreaterThan(10);
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
    expect(text).toMatch(/CRASH \(down for \d+\): of \d+ writes in progress, \d+ completed just before/);
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
    expectWriteOrderBugCaught('send-before-persist', 20);
  });

  it('catches a pipeline off by one: a follower that acknowledges entries whose write has not completed', () => {
    // With several writes in progress, each output's messages leave when the write BEFORE it completes:
    // an AppendResponse claims entries still on their way to disk, which a crash then loses.
    const caught = expectWriteOrderBugCaught('ack-after-previous-write', 40);
    expect(caught.scenario.persist.writesInProgress).toBeGreaterThan(1);
  });
});

/**
 * Runs seeds with the broken caller until one fails: a leader then counts acknowledgements no durable
 * log backs (a commit no quorum holds, seen at once, or later a lost one, or a follower that crashed
 * before its write completed told to commit entries it no longer holds, which stops it). The same seed
 * passes without it.
 */
function expectWriteOrderBugCaught(bug: WriteOrderBug, seeds: number): SimulationResult {
  let caught: SimulationResult | null = null;
  for (let seed = 0; seed < seeds && caught === null; seed++) {
    const result = runSimulation({ seed, coreFactory: realCore, scenario: { asyncPersist: true }, callerBug: bug });
    if (result.violation !== null) caught = result;
  }
  if (caught === null) return expect.fail(`${bug} was not caught in ${seeds} seeds`);
  const violation = caught.violation;
  const toldToCommitWhatItLost = violation?.property === 'Core Exception' && /told to commit index \d+, but its log ends at/.test(violation.detail);
  if (!toldToCommitWhatItLost) expect(['Commit Quorum', 'Leader Completeness'], formatFailure(caught)).toContain(violation?.property);
  console.info(`${bug}: caught as ${caught.violation?.property} by seed ${caught.seed}`);
  const control = runSimulation({ seed: caught.seed, coreFactory: realCore, scenario: { asyncPersist: true } });
  expect(control.violation, control.violation === null ? '' : formatFailure(control)).toBeNull();
  return caught;
}

/** Three nodes driven by hand, with writes that complete only when the test says so. */
function handCluster(writesInProgress = 1) {
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
      writesInProgress,
    },
  });
  const [n1, n2, n3] = cluster.nodes as [SimNode, SimNode, SimNode];
  for (const node of cluster.nodes) cluster.start(node);
  /** Ticks n1 until it campaigns: its write of term 1 and its own vote is then in flight. */
  const campaign = (): void => {
    for (let i = 0; i < 30 && n1.writes.length === 0; i++) cluster.tick(n1);
    expect(n1.writes[0]?.output.hardState).toMatchObject({ term: 1, votedFor: 'n1' });
  };
  /** The last completion scheduled happens now (the clock moves to its time). */
  const completeLast = (): void => {
    const done = completions.at(-1);
    if (done === undefined) throw new Error('no write was started');
    clock.now = Math.max(clock.now, done.at);
    cluster.completeWrite(done.node, done.life, done.serial);
  };
  /** Delivers every message and completes every write (but those of `stalled`), in time order, until nothing is left. */
  const settle = (stalled: SimNode | null = null): void => {
    for (let round = 0; round < 1000; round++) {
      const messages = sent.splice(0);
      const held = completions.filter((c) => c.node === stalled);
      const due = completions.filter((c) => c.node !== stalled).sort((a, b) => a.at - b.at);
      completions.length = 0;
      completions.push(...held);
      if (messages.length === 0 && due.length === 0) return;
      for (const message of messages) cluster.deliver(message, false);
      for (const done of due) {
        clock.now = Math.max(clock.now, done.at);
        cluster.completeWrite(done.node, done.life, done.serial);
      }
    }
    throw new Error('the hand cluster did not settle');
  };
  /** n1 campaigns and wins; its no-op is committed and stored everywhere. */
  const elect = (): void => {
    campaign();
    settle();
    expect(n1.core?.status()).toMatchObject({ role: 'leader', commitIndex: 1 });
  };
  return { cluster, clock, sent, completions, stats, n1, n2, n3, campaign, completeLast, settle, elect };
}

describe('the caller with asynchronous persistence', () => {
  it('holds an output’s messages until its write completes, and keeps stepping and ticking meanwhile', () => {
    const h = handCluster();
    h.campaign();
    const writes = [...h.n1.writes];
    expect(h.sent).toHaveLength(0);
    expect(h.n1.storage.currentHardState().term).toBe(0);
    for (let i = 0; i < 5; i++) h.cluster.tick(h.n1);
    expect(h.n1.writes).toEqual(writes); // at most one write in progress with this bound
    expect(h.sent).toHaveLength(0);

    h.completeLast();
    expect(h.n1.storage.currentHardState()).toMatchObject({ term: 1, votedFor: 'n1' });
    expect(h.sent.filter((m) => m.type === 'VoteRequest').map((m) => m.to)).toEqual(['n2', 'n3']);
  });

  it('loses the whole write in progress on a crash, and ignores its completion after the restart', () => {
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
    h.cluster.crash(h.n3, 10, 1);
    expect(h.n3.storage.currentHardState()).toMatchObject({ term: 1, votedFor: 'n1' });
    expect(h.sent).toHaveLength(0);
    expect(h.stats.crashesAfterWrite).toBe(1);
  });

  it('lets a disk stall postpone the write in progress; the completion due earlier finds nothing to do', () => {
    const h = handCluster();
    h.campaign();
    const due = h.completions.at(-1);
    h.cluster.stallDisk(h.n1, 100);
    const moved = h.completions.at(-1);
    expect(moved?.serial).toBe(due?.serial);
    expect(h.n1.writes[0]?.doneAt).toBe(100);

    h.clock.now = 5;
    h.cluster.completeWrite(h.n1, due?.life ?? -1, due?.serial ?? -1);
    expect(h.n1.storage.currentHardState().term).toBe(0);
    expect(h.sent).toHaveLength(0);
    h.clock.now = 100;
    h.cluster.completeWrite(h.n1, moved?.life ?? -1, moved?.serial ?? -1);
    expect(h.n1.storage.currentHardState().term).toBe(1);
    expect(h.sent).toHaveLength(2);
  });

  it('with several writes in progress, acknowledges each append only once its own write completed, applying meanwhile', () => {
    const h = handCluster(4);
    h.elect();
    /** Takes the leader's appends to `to` off the wire (the rest stay). */
    const appendTo = (to: string): Message[] => {
      const taken = h.sent.filter((m) => m.to === to && m.type === 'AppendRequest');
      h.sent.splice(0, h.sent.length, ...h.sent.filter((m) => !taken.includes(m)));
      return taken;
    };
    const text = (s: string): Uint8Array => new TextEncoder().encode(s);

    h.cluster.propose(h.n1, text('a'), false);
    const first = appendTo('n2');
    h.cluster.propose(h.n1, text('b'), false);
    const second = appendTo('n2');
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(1);
    h.cluster.deliver(first[0] as Message, false);
    h.clock.now++;
    h.cluster.deliver(second[0] as Message, false);
    expect(h.n2.writes.map((w) => w.output.entries.map((e) => e.index))).toEqual([[2], [3]]);
    expect(h.sent.filter((m) => m.from === 'n2')).toHaveLength(0); // neither append is acknowledged yet

    // The first write completes: only what it stored is acknowledged.
    const [doneFirst, doneSecond] = h.completions.filter((c) => c.node === h.n2) as [(typeof h.completions)[0], (typeof h.completions)[0]];
    h.clock.now = doneFirst.at;
    h.cluster.completeWrite(h.n2, doneFirst.life, doneFirst.serial);
    const fromN2 = h.sent.filter((m) => m.from === 'n2');
    expect(fromN2.map((m) => m.type === 'AppendResponse' && m.matchIndex)).toEqual([2]);

    // The leader commits index 3 with n3's copy: n2 applies it while its own write of 3 is still in progress.
    h.settle(h.n2);
    expect(h.n1.core?.status().commitIndex).toBe(3);
    expect(h.n2.writes[0]?.output.entries.map((e) => e.index)).toEqual([3]); // still in progress, behind it commit updates
    expect(h.n2.applied).toBe(3);
    expect(h.sent.filter((m) => m.from === 'n2' && m.type === 'AppendResponse' && m.matchIndex >= 3)).toHaveLength(0);

    const pending = h.completions.filter((c) => c.node === h.n2);
    h.clock.now = Math.max(h.clock.now, ...pending.map((c) => c.at));
    h.cluster.completeWrite(h.n2, doneSecond.life, doneSecond.serial);
    expect(h.n2.writes).toHaveLength(0);
    expect(h.n2.storage.lastIndex()).toBe(3);
    expect(h.sent.some((m) => m.from === 'n2' && m.type === 'AppendResponse' && m.matchIndex === 3)).toBe(true);
  });

  it('on a crash with several writes in progress, keeps a completed prefix of them and loses the rest', () => {
    const h = handCluster(4);
    h.elect();
    const text = (s: string): Uint8Array => new TextEncoder().encode(s);
    h.cluster.propose(h.n1, text('a'), false);
    const first = h.sent.splice(0).filter((m) => m.to === 'n2' && m.type === 'AppendRequest');
    h.cluster.propose(h.n1, text('b'), false);
    const second = h.sent.splice(0).filter((m) => m.to === 'n2' && m.type === 'AppendRequest');
    h.cluster.deliver(first[0] as Message, false);
    h.cluster.deliver(second[0] as Message, false);
    expect(h.n2.writes).toHaveLength(2);

    h.cluster.crash(h.n2, 10, 1);
    expect(h.n2.storage.lastIndex()).toBe(2); // the first write completed, the second is lost
    expect(h.sent.filter((m) => m.from === 'n2')).toHaveLength(0); // and nothing of either was sent
    expect(h.stats.crashesAfterWrite).toBe(1);
    expect(h.stats.crashesLosingWrite).toBe(1);
  });
});
