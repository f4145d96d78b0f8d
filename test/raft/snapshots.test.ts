import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import { MemoryStorage, type StoredSnapshot } from '../../src/raft/memory-storage.js';
import { OutputRunner } from '../../src/raft/output-runner.js';
import { SeededRandom } from '../../src/raft/random.js';
import type {
  AppendRequest,
  AppendResponse,
  Entry,
  FollowerProgress,
  HeartbeatResponse,
  InstallSnapshot,
  Message,
  NodeId,
  RaftOutput,
  SnapshotMeta,
} from '../../src/raft/types.js';
import { decode, text } from '../support/instant-cluster.js';

const ids = ['n1', 'n2', 'n3'];
const config = { voters: ids };

// ------------------------------------------------------------------ building blocks

/** Command entries at from, from+1, ... with the given terms. */
function entriesWithTerms(terms: readonly number[], from = 1): Entry[] {
  return terms.map((term, i) => ({ index: from + i, term, kind: 'command', data: text(`e${from + i}@t${term}`) }));
}

/** The state a caller would keep with a snapshot; in these specs, just a label naming the index. */
const stateAt = (meta: SnapshotMeta): Uint8Array => text(`state@${meta.index}`);

/** A disk as a restarted node would find it: a log with these terms, a hard state, optionally a snapshot and compaction. */
function diskWith(options: { term: number; terms: readonly number[]; commit: number; snapshotAt?: number; compactTo?: number }): MemoryStorage {
  const storage = new MemoryStorage(config);
  storage.save({ term: options.term, votedFor: null, commit: options.commit }, entriesWithTerms(options.terms));
  if (options.snapshotAt !== undefined) {
    const meta = { index: options.snapshotAt, term: storage.term(options.snapshotAt), config };
    storage.saveSnapshot(meta, stateAt(meta));
    storage.compact(options.compactTo ?? options.snapshotAt);
  }
  return storage;
}

/**
 * Carries out one output as a caller would: one write (a snapshot from the
 * leader with the state that arrived with it, the hard state, the entries),
 * then the acknowledgement. Returns the output for inspection.
 */
function carryOut(core: RaftCore, storage: MemoryStorage): RaftOutput {
  const out = core.takeOutput();
  const snapshot = out.snapshot === null ? null : { meta: out.snapshot, data: stateAt(out.snapshot) };
  storage.save(out.hardState, out.entries, snapshot);
  core.persisted(out);
  return out;
}

/** A follower started on `storage` whose state machine has caught up with its committed log. */
function followerOn(storage: MemoryStorage, id: NodeId = 'n2'): RaftCore {
  const core = new RaftCore({ id, random: new SeededRandom(7), preVote: false }, storage);
  carryOut(core, storage);
  return core;
}

const allMessages = (out: RaftOutput): Message[] => [...out.earlyMessages, ...out.messages];
const sentTo = (out: RaftOutput, to: NodeId): Message[] => allMessages(out).filter((m) => m.to === to);

/** Steps into `core` every message of `out` addressed to it. */
function deliver(out: RaftOutput, core: RaftCore): void {
  for (const message of sentTo(out, core.id)) core.step(message);
}

function progressOf(leader: RaftCore, follower: NodeId): FollowerProgress {
  const progress = leader.status().progress?.find((p) => p.id === follower);
  if (progress === undefined) throw new Error(`${leader.id} keeps no progress for ${follower}: is it leading?`);
  return progress;
}

const installSnapshot = (snapshot: SnapshotMeta, term: number, from = 'n1', to = 'n2'): InstallSnapshot => ({
  type: 'InstallSnapshot',
  from,
  to,
  term,
  snapshot,
});

const appendAck = (from: NodeId, term: number, matchIndex: number): AppendResponse => ({
  type: 'AppendResponse',
  from,
  to: 'n1',
  term,
  success: true,
  matchIndex,
  rejectedIndex: 0,
  hintIndex: 0,
  hintTerm: 0,
});

const heartbeatAnswer = (from: NodeId, term: number): HeartbeatResponse => ({
  type: 'HeartbeatResponse',
  from,
  to: 'n1',
  term,
  readContext: null,
});

const indexes = (entries: readonly Entry[]): number[] => entries.map((e) => e.index);

// ------------------------------------------------------------------ a leader that compacted what n3 needs

interface CompactedLeader {
  leader: RaftCore;
  storage: MemoryStorage;
  /** n3 holds only the no-op at index 1: it acknowledged that, then everything sent to it was lost. */
  n3: RaftCore;
  n3Storage: MemoryStorage;
}

/**
 * n1 leads term 1. Entries 1..9 are committed with n2's help; n3 acknowledged
 * only index 1. n1 has applied everything, snapshotted at 7 and compacted
 * through 7, keeping 8..9.
 */
function leaderThatCompactedPastN3(): CompactedLeader {
  const storage = new MemoryStorage(config);
  const leader = new RaftCore({ id: 'n1', random: new SeededRandom(3), preVote: false }, storage);
  for (let t = 0; leader.status().role !== 'candidate'; t++) {
    if (t === 100) throw new Error('n1 did not campaign within 100 ticks');
    leader.tick();
  }
  carryOut(leader, storage);
  leader.step({ type: 'VoteResponse', from: 'n2', to: 'n1', term: 1, preVote: false, granted: true });
  const noop = carryOut(leader, storage);
  expect(indexes(noop.entries)).toEqual([1]);

  const n3Storage = new MemoryStorage(config);
  const n3 = followerOn(n3Storage, 'n3');
  deliver(noop, n3);
  deliver(carryOut(n3, n3Storage), leader);
  leader.step(appendAck('n2', 1, 1));
  carryOut(leader, storage);

  for (let i = 2; i <= 9; i++) leader.propose(text(`cmd-${i}`));
  carryOut(leader, storage); // its appends of 2..9 to n3 are lost
  leader.step(appendAck('n2', 1, 9));
  const applied = carryOut(leader, storage);
  expect(applied.committed.at(-1)?.index).toBe(9);

  storage.saveSnapshot({ index: 7, term: 1, config }, text('state@7'));
  storage.compact(7);
  expect(leader.firstIndex()).toBe(8);
  return { leader, storage, n3, n3Storage };
}

/** n3 answers a heartbeat; the leader's append is rejected (n3 lacks 2..9) and it turns to the snapshot. */
function leaderSendingSnapshotToN3(): CompactedLeader & { install: InstallSnapshot } {
  const setup = leaderThatCompactedPastN3();
  const { leader, storage, n3, n3Storage } = setup;
  leader.step(heartbeatAnswer('n3', 1));
  deliver(carryOut(leader, storage), n3);
  const rejection = carryOut(n3, n3Storage);
  expect(sentTo(rejection, 'n1')).toEqual([expect.objectContaining({ type: 'AppendResponse', success: false })]);
  deliver(rejection, leader);
  const out = carryOut(leader, storage);
  const toN3 = sentTo(out, 'n3');
  expect(toN3).toHaveLength(1);
  return { ...setup, install: toN3[0] as InstallSnapshot };
}

// ------------------------------------------------------------------ the leader's side

describe('a leader whose follower needs compacted entries (Raft §7)', () => {
  it('sends InstallSnapshot naming its latest snapshot and moves the follower to the snapshot state', () => {
    const { leader, storage, install } = leaderSendingSnapshotToN3();
    expect(install).toMatchObject({ type: 'InstallSnapshot', from: 'n1', to: 'n3', term: 1 });
    expect(install.snapshot).toEqual(storage.snapshot());
    expect(install.snapshot).toEqual({ index: 7, term: 1, config });
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'snapshot', pendingSnapshot: 7, matchIndex: 1 });
  });

  it('sends that follower no append while the transfer runs, whatever happens meanwhile', () => {
    const { leader, storage } = leaderSendingSnapshotToN3();
    const toN3: Message[] = [];
    for (let i = 0; i < 3; i++) {
      // New writes, heartbeat rounds, and answers from n3 would each send an append to a follower in probe or replicate.
      leader.propose(text(`during-transfer-${i}`));
      leader.tick();
      leader.step(heartbeatAnswer('n2', 1));
      leader.step(heartbeatAnswer('n3', 1));
      toN3.push(...sentTo(carryOut(leader, storage), 'n3'));
    }
    // A rejection of an append sent before the snapshot, arriving late.
    leader.step({ ...appendAck('n3', 1, 0), success: false, rejectedIndex: 9, hintIndex: 1, hintTerm: 1 });
    toN3.push(...sentTo(carryOut(leader, storage), 'n3'));

    expect(toN3.filter((m) => m.type === 'AppendRequest')).toEqual([]);
    expect(toN3.filter((m) => m.type === 'InstallSnapshot')).toEqual([]);
    // It is still kept from campaigning, and never told to commit past what it holds.
    const heartbeats = toN3.filter((m) => m.type === 'Heartbeat');
    expect(heartbeats.length).toBeGreaterThan(0);
    for (const heartbeat of heartbeats) expect(heartbeat).toMatchObject({ leaderCommit: 1 });
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'snapshot', pendingSnapshot: 7 });
  });
});

describe('the end of a snapshot transfer, as the transport reports it', () => {
  it('failed: the leader sends nothing more to that follower until it answers a heartbeat, then the latest snapshot anew', () => {
    const { leader, storage } = leaderSendingSnapshotToN3();
    leader.reportSnapshot('n3', false);
    // A node that is down fails every transfer at once: new writes, ticks and other followers' answers start no new one.
    const whileSilent: Message[] = [];
    for (let i = 0; i < 3; i++) {
      leader.propose(text(`after-failure-${i}`));
      leader.tick();
      leader.step(heartbeatAnswer('n2', 1));
      whileSilent.push(...sentTo(carryOut(leader, storage), 'n3'));
    }
    expect(whileSilent.filter((m) => m.type !== 'Heartbeat')).toEqual([]);
    expect(whileSilent.filter((m) => m.type === 'Heartbeat').length).toBeGreaterThan(0);
    // Probing restarts right after what n3 is known to hold (1), not after the snapshot that never arrived.
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'probe', matchIndex: 1, nextIndex: 2, pendingSnapshot: 0 });

    // n3 answers a heartbeat: the entries it needs are still compacted, so the snapshot goes again.
    leader.step(heartbeatAnswer('n3', 1));
    const retry = sentTo(carryOut(leader, storage), 'n3');
    expect(retry).toEqual([expect.objectContaining({ type: 'InstallSnapshot', snapshot: { index: 7, term: 1, config } })]);
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'snapshot', matchIndex: 1, pendingSnapshot: 7 });

    // The leader snapshots again meanwhile; after the next failure and heartbeat answer it sends the newer snapshot.
    storage.saveSnapshot({ index: 9, term: 1, config }, text('state@9'));
    storage.compact(9);
    leader.reportSnapshot('n3', false);
    expect(sentTo(carryOut(leader, storage), 'n3')).toEqual([]);
    leader.step(heartbeatAnswer('n3', 1));
    const second = sentTo(carryOut(leader, storage), 'n3');
    expect(second).toEqual([expect.objectContaining({ type: 'InstallSnapshot', snapshot: { index: 9, term: 1, config } })]);
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'snapshot', matchIndex: 1, pendingSnapshot: 9 });
  });

  it('delivered: the leader probes from just after the snapshot, with an append whose prevLogIndex is the snapshot index', () => {
    const { leader, storage, n3, n3Storage, install } = leaderSendingSnapshotToN3();
    // The whole snapshot reached n3, whose caller steps the message in; the sender's transport reports success.
    n3.step(install);
    const installed = carryOut(n3, n3Storage);
    expect(installed.snapshot).toEqual(install.snapshot);
    leader.reportSnapshot('n3', true);

    const resumed = carryOut(leader, storage);
    const toN3 = sentTo(resumed, 'n3');
    expect(toN3).toEqual([expect.objectContaining({ type: 'AppendRequest', prevLogIndex: 7, prevLogTerm: 1 })]);
    expect(indexes((toN3[0] as AppendRequest).entries)).toEqual([8, 9]);
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'probe', nextIndex: 8, pendingSnapshot: 0 });

    // n3's answers (to the snapshot, then to the append) put it back in replicate, fully caught up.
    deliver(installed, leader);
    deliver(resumed, n3);
    const appended = carryOut(n3, n3Storage);
    deliver(appended, leader);
    expect(indexes(appended.committed)).toEqual([8, 9]);
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'replicate', matchIndex: 9, pendingSnapshot: 0 });
    expect(n3.status()).toMatchObject({ firstIndex: 8, lastIndex: 9, commitIndex: 9, appliedIndex: 9, snapshotIndex: 7 });
  });
});

describe("the follower's own answer to the snapshot, when it arrives before the transport's report", () => {
  it('ends the snapshot state at once: the leader streams what follows the snapshot, and the late report changes nothing', () => {
    const { leader, storage, n3, n3Storage, install } = leaderSendingSnapshotToN3();
    n3.step(install);
    deliver(carryOut(n3, n3Storage), leader);
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'replicate', matchIndex: 7, pendingSnapshot: 0 });
    const streamed = sentTo(carryOut(leader, storage), 'n3');
    expect(streamed).toEqual([expect.objectContaining({ type: 'AppendRequest', prevLogIndex: 7 })]);

    leader.reportSnapshot('n3', true);
    expect(leader.hasOutput()).toBe(false);
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'replicate', matchIndex: 7 });
  });

  it('keeps the snapshot state when the leader has compacted past it meanwhile; the report then sends the newer snapshot', () => {
    const { leader, storage, n3, n3Storage, install } = leaderSendingSnapshotToN3();
    storage.saveSnapshot({ index: 9, term: 1, config }, text('state@9'));
    storage.compact(9);
    n3.step(install);
    deliver(carryOut(n3, n3Storage), leader);
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'snapshot', matchIndex: 7, pendingSnapshot: 7 });
    expect(sentTo(carryOut(leader, storage), 'n3')).toEqual([]);

    leader.reportSnapshot('n3', true);
    const toN3 = sentTo(carryOut(leader, storage), 'n3');
    expect(toN3).toEqual([expect.objectContaining({ type: 'InstallSnapshot', snapshot: { index: 9, term: 1, config } })]);
    expect(progressOf(leader, 'n3')).toMatchObject({ state: 'snapshot', matchIndex: 7, pendingSnapshot: 9 });
  });
});

// ------------------------------------------------------------------ the follower's side

describe('a follower stepping an InstallSnapshot', () => {
  const snapshotAt10: SnapshotMeta = { index: 10, term: 2, config };

  it('behind the snapshot: installs it, answers only after the write, and applies what follows the snapshot', () => {
    const storage = diskWith({ term: 1, terms: [1, 1, 1], commit: 2 });
    const follower = followerOn(storage);
    expect(follower.status()).toMatchObject({ commitIndex: 2, appliedIndex: 2 });

    follower.step(installSnapshot(snapshotAt10, 2));
    const out = follower.takeOutput();
    expect(out.snapshot).toEqual(snapshotAt10);
    expect(out.entries).toEqual([]);
    expect(out.hardState).toMatchObject({ term: 2, commit: 10 });
    // The old log's committed entry 3 is never handed out: the snapshot's state replaces it.
    expect(out.committed).toEqual([]);
    // The acknowledgement reports what this write stores: it must not leave before it.
    const ack = { type: 'AppendResponse', to: 'n1', success: true, matchIndex: 10 };
    expect(out.messages).toEqual([expect.objectContaining(ack)]);
    expect(out.earlyMessages).toEqual([]);
    // Until the snapshot is stored, the old log on disk is not read as this log.
    expect(follower.termAt(3)).toBeNull();
    expect(follower.entryAt(3)).toBeNull();

    storage.save(out.hardState, out.entries, { meta: out.snapshot as SnapshotMeta, data: stateAt(snapshotAt10) });
    follower.persisted(out);
    expect(follower.status()).toMatchObject({
      firstIndex: 11,
      lastIndex: 10,
      commitIndex: 10,
      appliedIndex: 10,
      snapshotIndex: 10,
    });
    expect(storage.snapshotWithData()?.data).toEqual(stateAt(snapshotAt10));

    follower.step({
      type: 'AppendRequest',
      from: 'n1',
      to: 'n2',
      term: 2,
      prevLogIndex: 10,
      prevLogTerm: 2,
      entries: entriesWithTerms([2, 2], 11),
      leaderCommit: 12,
    });
    const next = carryOut(follower, storage);
    expect(indexes(next.committed)).toEqual([11, 12]);
    expect(next.messages).toEqual([expect.objectContaining({ type: 'AppendResponse', success: true, matchIndex: 12 })]);
  });

  it('with a conflicting entry at the snapshot index: discards its whole log, the entries after the snapshot index too', () => {
    // Entries 3..6 came from a deposed leader of term 1; the new leader's entry 4 has term 2.
    const storage = diskWith({ term: 1, terms: [1, 1, 1, 1, 1, 1], commit: 2 });
    const follower = followerOn(storage);
    const snapshot = { index: 4, term: 2, config };

    follower.step(installSnapshot(snapshot, 2));
    const out = carryOut(follower, storage);
    expect(out.snapshot).toEqual(snapshot);
    expect(out.messages).toEqual([expect.objectContaining({ type: 'AppendResponse', success: true, matchIndex: 4 })]);
    expect(follower.status()).toMatchObject({ firstIndex: 5, lastIndex: 4, commitIndex: 4, appliedIndex: 4 });
    expect(follower.termAt(4)).toBe(2);
    expect(follower.termAt(5)).toBeNull();
    expect(follower.entryAt(6)).toBeNull();
    expect(storage.lastIndex()).toBe(4);
    expect(storage.allEntries()).toEqual([]);
  });

  it("holding the snapshot's last entry with the same term: keeps what follows and only commits up to the snapshot", () => {
    const storage = diskWith({ term: 1, terms: [1, 1, 1, 1, 1, 1], commit: 2 });
    const follower = followerOn(storage);
    const before = [5, 6].map((i) => follower.entryAt(i));

    follower.step(installSnapshot({ index: 4, term: 1, config }, 2));
    const out = carryOut(follower, storage);
    expect(out.snapshot).toBeNull();
    expect(out.entries).toEqual([]);
    expect(out.hardState).toMatchObject({ term: 2, commit: 4 });
    expect(indexes(out.committed)).toEqual([3, 4]);
    expect(out.messages).toEqual([expect.objectContaining({ type: 'AppendResponse', success: true, matchIndex: 4 })]);
    expect(follower.status()).toMatchObject({ firstIndex: 1, lastIndex: 6, commitIndex: 4, appliedIndex: 4, snapshotIndex: 0 });
    expect([5, 6].map((i) => follower.entryAt(i))).toEqual(before);
    expect(storage.snapshot()).toBeNull();
  });

  it('with appended entries not yet on disk: drops them with the rest of the log', () => {
    const storage = diskWith({ term: 1, terms: [1, 1], commit: 2 });
    const follower = followerOn(storage);
    // A deposed leader's entries 3..5 are stepped in; the caller has not taken the output yet.
    follower.step({
      type: 'AppendRequest',
      from: 'n3',
      to: 'n2',
      term: 1,
      prevLogIndex: 2,
      prevLogTerm: 1,
      entries: entriesWithTerms([1, 1, 1], 3),
      leaderCommit: 2,
    });
    const snapshot = { index: 4, term: 2, config };
    follower.step(installSnapshot(snapshot, 2));
    const out = carryOut(follower, storage);
    expect(out.snapshot).toEqual(snapshot);
    expect(out.entries).toEqual([]);
    expect(follower.status()).toMatchObject({ firstIndex: 5, lastIndex: 4, commitIndex: 4, appliedIndex: 4 });
    expect(storage.lastIndex()).toBe(4);
  });

  it('while the write of appended entries is in flight: the completed write does not bring them back', () => {
    const storage = diskWith({ term: 1, terms: [1, 1], commit: 2 });
    const follower = followerOn(storage);
    // The deposed leader had committed entry 3, which the new leader's snapshot at 4 includes.
    follower.step({
      type: 'AppendRequest',
      from: 'n3',
      to: 'n2',
      term: 1,
      prevLogIndex: 2,
      prevLogTerm: 1,
      entries: entriesWithTerms([1, 1, 1], 3),
      leaderCommit: 3,
    });
    const inFlight = follower.takeOutput();
    expect(indexes(inFlight.entries)).toEqual([3, 4, 5]);
    expect(indexes(inFlight.committed)).toEqual([3]);
    const snapshot = { index: 4, term: 2, config };
    follower.step(installSnapshot(snapshot, 2));
    storage.save(inFlight.hardState, inFlight.entries);
    follower.persisted(inFlight);
    // Applying the older batch does not move applied back below the snapshot.
    expect(follower.status()).toMatchObject({ appliedIndex: 4, commitIndex: 4 });

    const out = carryOut(follower, storage);
    expect(out.snapshot).toEqual(snapshot);
    expect(out.entries).toEqual([]);
    expect(follower.status()).toMatchObject({ firstIndex: 5, lastIndex: 4, commitIndex: 4, appliedIndex: 4 });
    expect(follower.termAt(5)).toBeNull();
    expect(storage.lastIndex()).toBe(4);
  });

  it('already committed past the snapshot: ignores it and answers with its commit index', () => {
    const storage = diskWith({ term: 1, terms: [1, 1, 1, 1, 1, 1, 1, 1], commit: 8 });
    const follower = followerOn(storage);

    follower.step(installSnapshot({ index: 5, term: 1, config }, 1));
    const out = carryOut(follower, storage);
    expect(out.snapshot).toBeNull();
    expect(out.hardState).toBeNull();
    expect(out.committed).toEqual([]);
    expect(out.messages).toEqual([expect.objectContaining({ type: 'AppendResponse', success: true, matchIndex: 8 })]);
    expect(follower.status()).toMatchObject({ firstIndex: 1, lastIndex: 8, commitIndex: 8, appliedIndex: 8, snapshotIndex: 0 });
  });

  it('from a deposed leader (stale term): answers with its own term so the old leader steps down, installs nothing', () => {
    const { leader, storage, install } = leaderSendingSnapshotToN3();
    // Meanwhile n3 has moved to term 2 (it voted in an election n1 never heard of).
    const n3Storage = diskWith({ term: 2, terms: [1], commit: 1 });
    const n3 = followerOn(n3Storage, 'n3');

    n3.step(install);
    const out = carryOut(n3, n3Storage);
    expect(out.snapshot).toBeNull();
    expect(out.messages).toEqual([expect.objectContaining({ type: 'HeartbeatResponse', to: 'n1', term: 2 })]);
    expect(n3.status()).toMatchObject({ term: 2, firstIndex: 1, lastIndex: 1, commitIndex: 1, snapshotIndex: 0 });
    expect(n3Storage.snapshot()).toBeNull();

    deliver(out, leader);
    carryOut(leader, storage);
    expect(leader.status()).toMatchObject({ role: 'follower', term: 2 });
  });
});

// ------------------------------------------------------------------ restart

describe('a node restarting on a disk that holds a snapshot and a compacted log', () => {
  // Entries 1..10, committed through 9; snapshot at 6 (term 2).
  const terms = [1, 1, 1, 2, 2, 2, 2, 2, 2, 2];

  it('starts applied at the snapshot index by default and replays only the committed entries after it', () => {
    const storage = diskWith({ term: 2, terms, commit: 9, snapshotAt: 6 });
    const core = new RaftCore({ id: 'n2', random: new SeededRandom(1) }, storage);
    expect(core.status()).toMatchObject({ firstIndex: 7, lastIndex: 10, commitIndex: 9, appliedIndex: 6, snapshotIndex: 6 });
    expect(indexes(carryOut(core, storage).committed)).toEqual([7, 8, 9]);
  });

  it('starts at the snapshot index even when compaction kept entries before it', () => {
    const storage = diskWith({ term: 2, terms, commit: 9, snapshotAt: 6, compactTo: 4 });
    const core = new RaftCore({ id: 'n2', random: new SeededRandom(1) }, storage);
    expect(core.status()).toMatchObject({ firstIndex: 5, appliedIndex: 6, snapshotIndex: 6 });
    expect(indexes(carryOut(core, storage).committed)).toEqual([7, 8, 9]);
  });

  it("honours a state machine's own applied index at or after the snapshot", () => {
    const storage = diskWith({ term: 2, terms, commit: 9, snapshotAt: 6 });
    const atSnapshot = new RaftCore({ id: 'n2', random: new SeededRandom(1), appliedIndex: 6 }, storage);
    expect(indexes(carryOut(atSnapshot, storage).committed)).toEqual([7, 8, 9]);
    const ahead = new RaftCore({ id: 'n2', random: new SeededRandom(1), appliedIndex: 8 }, storage);
    expect(indexes(carryOut(ahead, storage).committed)).toEqual([9]);
  });

  it('counts what its snapshot covers as committed when the stored commit index lags it (a commit index is stored only with other writes)', () => {
    const storage = diskWith({ term: 2, terms, commit: 3, snapshotAt: 6 });
    const core = new RaftCore({ id: 'n2', random: new SeededRandom(1), appliedIndex: 6 }, storage);
    expect(core.status()).toMatchObject({ commitIndex: 6, appliedIndex: 6, snapshotIndex: 6 });
    expect(carryOut(core, storage).committed).toEqual([]);
    expect(() => new RaftCore({ id: 'n2', random: new SeededRandom(1), appliedIndex: 7 }, storage)).toThrow(
      /node n2: applied index 7 is beyond the stored commit index 3 and the latest snapshot \(6\)/,
    );
  });

  it('refuses an applied index below the compacted log, naming the node and the first index held', () => {
    const storage = diskWith({ term: 2, terms, commit: 9, snapshotAt: 6 });
    expect(() => new RaftCore({ id: 'n2', random: new SeededRandom(1), appliedIndex: 5 }, storage)).toThrow(
      /node n2: applied index 5 is below the compacted log, which starts at 7.*restored from the latest snapshot/,
    );
  });
});

// ------------------------------------------------------------------ end to end

/** One server: its disk survives a crash; the core and the state machine do not. */
interface Server {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  core: RaftCore | null;
  runner: OutputRunner | null;
  /** The state machine: the commands applied, in order. A snapshot carries it whole. */
  commands: string[];
  appliedIndex: number;
  /** Snapshots that arrived whole from a leader, by index, until the core asks for one to be installed. */
  readonly received: Map<number, StoredSnapshot>;
}

/** A message on the wire; an InstallSnapshot carries the sender's snapshot with its state, as a snapshot stream would. */
interface Envelope {
  readonly message: Message;
  readonly sender: RaftCore;
  readonly payload: StoredSnapshot | null;
}

const encodeCommands = (commands: readonly string[]): Uint8Array => text(JSON.stringify(commands));
const decodeCommands = (data: Uint8Array): string[] => JSON.parse(decode(data)) as string[];

/**
 * Three servers in one process with instant, ordered delivery, whose callers
 * snapshot, compact, send and install snapshots the way a real node does.
 * A transfer that cannot be delivered is reported failed at the next tick
 * (a transport notices a broken stream after a while, not at once).
 */
class SnapshottingCluster {
  readonly servers = new Map<NodeId, Server>();
  readonly sent: Message[] = [];
  private queue: Envelope[] = [];
  private readonly cut = new Set<NodeId>();
  private failedTransfers: Envelope[] = [];
  private transfersToLose = new Map<NodeId, number>();
  private lives = 0;

  constructor() {
    for (const id of ids) {
      const server: Server = { id, storage: new MemoryStorage(config), core: null, runner: null, commands: [], appliedIndex: 0, received: new Map() };
      this.servers.set(id, server);
      this.start(server);
    }
  }

  server(id: NodeId): Server {
    const server = this.servers.get(id);
    if (server === undefined) throw new Error(`no server ${id}`);
    return server;
  }

  core(id: NodeId): RaftCore {
    const core = this.server(id).core;
    if (core === null) throw new Error(`server ${id} is down`);
    return core;
  }

  crash(id: NodeId): void {
    const server = this.server(id);
    server.core = null;
    server.runner = null;
  }

  /** A new life on the same disk: the state machine restored from the latest snapshot, the core applied up to it. */
  restart(id: NodeId): void {
    this.start(this.server(id));
  }

  isolate(id: NodeId): void {
    this.cut.add(id);
  }

  heal(): void {
    this.cut.clear();
  }

  /** The next `count` snapshot transfers to `to` break on the way. */
  loseTransfers(to: NodeId, count: number): void {
    this.transfersToLose.set(to, count);
  }

  /** The caller's snapshot policy: snapshot the state machine at its applied index, delete the log up to `retain` entries behind it. */
  snapshot(id: NodeId, retain: number): SnapshotMeta {
    const server = this.server(id);
    const index = server.appliedIndex;
    const term = this.core(id).termAt(index);
    if (term === null) throw new Error(`${id} applied ${index} but holds no entry there`);
    const meta = { index, term, config };
    server.storage.saveSnapshot(meta, encodeCommands(server.commands));
    server.storage.compact(index - retain);
    return meta;
  }

  propose(leader: NodeId, command: string): void {
    const result = this.core(leader).propose(text(command));
    if (!result.accepted) throw new Error(`${leader} refused ${command}: ${result.message}`);
  }

  tick(ticks = 1): void {
    for (let t = 0; t < ticks; t++) {
      for (const server of this.servers.values()) server.core?.tick();
      const failed = this.failedTransfers;
      this.failedTransfers = [];
      for (const { message, sender } of failed) this.reportTransfer(message, sender, false);
      this.settle();
    }
  }

  /** Ticks until `done` holds; the bound is in ticks, never in time. */
  tickUntil(what: string, done: () => boolean, maxTicks = 500): void {
    for (let t = 0; t < maxTicks; t++) {
      if (done()) return;
      this.tick();
    }
    throw new Error(`after ${maxTicks} ticks, still not: ${what}`);
  }

  /** The only leader, once its no-op is committed; null otherwise. */
  leader(): NodeId | null {
    const leaders = [...this.servers.values()].filter((s) => s.core?.status().role === 'leader');
    const status = leaders.length === 1 ? leaders[0]?.core?.status() : undefined;
    return status !== undefined && status.commitIndex === status.lastIndex ? status.id : null;
  }

  waitForLeader(): NodeId {
    this.tickUntil('one leader with its no-op committed', () => this.leader() !== null);
    return this.leader() as NodeId;
  }

  settle(): void {
    for (let round = 0; round < 10_000; round++) {
      let busy = false;
      for (const server of this.servers.values()) {
        // A core that always has more output would otherwise hang the test instead of failing it.
        const taken = server.runner?.run() ?? 0;
        if (taken >= 1000) throw new Error(`${server.id} still has output after 1000 outputs in a row`);
        if (taken > 0) busy = true;
      }
      const batch = this.queue;
      this.queue = [];
      for (const envelope of batch) {
        busy = true;
        this.deliver(envelope);
      }
      if (!busy) return;
    }
    throw new Error('cluster did not settle');
  }

  private start(server: Server): void {
    const snapshot = server.storage.snapshotWithData();
    server.commands = snapshot === null ? [] : decodeCommands(snapshot.data);
    server.appliedIndex = snapshot?.meta.index ?? 0;
    server.received.clear();
    const core = new RaftCore({ id: server.id, random: new SeededRandom(100 * ++this.lives + ids.indexOf(server.id)) }, server.storage);
    server.core = core;
    server.runner = new OutputRunner(
      core,
      {
        write: (out, done) => {
          this.write(server, out);
          done();
        },
        send: (messages) => this.send(server, core, messages),
        apply: (entries) => this.apply(server, entries),
        reads: () => undefined,
      },
      { maxWritesInProgress: 1 },
    );
  }

  /** Stores an output; a snapshot from the leader also becomes the state machine. */
  private write(server: Server, out: RaftOutput): void {
    let installed: StoredSnapshot | null = null;
    if (out.snapshot !== null) {
      installed = server.received.get(out.snapshot.index) ?? null;
      if (installed === null || installed.meta.term !== out.snapshot.term) {
        throw new Error(`${server.id} was asked to install snapshot ${out.snapshot.index}/${out.snapshot.term}, which never arrived`);
      }
      server.received.clear();
    }
    server.storage.save(out.hardState, out.entries, installed);
    if (installed !== null) {
      server.commands = decodeCommands(installed.data);
      server.appliedIndex = installed.meta.index;
    }
  }

  private apply(server: Server, entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.index !== server.appliedIndex + 1) {
        throw new Error(`${server.id} was handed entry ${entry.index} to apply after applying ${server.appliedIndex}`);
      }
      if (entry.kind === 'command') server.commands.push(decode(entry.data));
      server.appliedIndex = entry.index;
    }
  }

  private send(server: Server, core: RaftCore, messages: readonly Message[]): void {
    for (const message of messages) {
      const payload = message.type === 'InstallSnapshot' ? server.storage.snapshotWithData() : null;
      if (message.type === 'InstallSnapshot' && payload?.meta.index !== message.snapshot.index) {
        throw new Error(`${server.id} asked to send snapshot ${message.snapshot.index}, its disk holds ${payload?.meta.index}`);
      }
      this.queue.push({ message, sender: core, payload });
      this.sent.push(message);
    }
  }

  private deliver(envelope: Envelope): void {
    const { message, payload } = envelope;
    const target = this.servers.get(message.to);
    const reachable = target?.core != null && !this.cut.has(message.from) && !this.cut.has(message.to);
    if (message.type !== 'InstallSnapshot') {
      if (reachable) target?.core?.step(message);
      return;
    }
    const toLose = this.transfersToLose.get(message.to) ?? 0;
    if (!reachable || target === undefined || payload === null) {
      this.failedTransfers.push(envelope);
      return;
    }
    if (toLose > 0) {
      this.transfersToLose.set(message.to, toLose - 1);
      this.failedTransfers.push(envelope);
      return;
    }
    target.received.set(payload.meta.index, payload);
    target.core?.step(message);
    this.reportTransfer(message, envelope.sender, true);
  }

  private reportTransfer(message: Message, sender: RaftCore, ok: boolean): void {
    // A report goes to the core that asked for the transfer, not to a later life of its server.
    if (this.servers.get(message.from)?.core === sender) sender.reportSnapshot(message.to, ok);
  }
}

/** What the end-to-end specs set up: a cluster where `lagging` missed entries the others compacted away. */
interface LeftBehind {
  cluster: SnapshottingCluster;
  leaderId: NodeId;
  lagging: NodeId;
  other: NodeId;
  /** Every command written, in order. */
  written: string[];
  leaderSnapshot: SnapshotMeta;
  write(count: number, prefix: string): void;
}

function leaveBehind(fault: 'crashed' | 'partitioned'): LeftBehind {
  const cluster = new SnapshottingCluster();
  const leaderId = cluster.waitForLeader();
  const [lagging, other] = ids.filter((id) => id !== leaderId) as [NodeId, NodeId];
  const written: string[] = [];
  const write = (count: number, prefix: string): void => {
    const leader = cluster.leader();
    if (leader === null) throw new Error('no leader to write to');
    for (let i = 0; i < count; i++) {
      written.push(`${prefix}-${i}`);
      cluster.propose(leader, `${prefix}-${i}`);
    }
    cluster.settle();
  };

  write(3, 'everyone');
  if (fault === 'crashed') cluster.crash(lagging);
  else cluster.isolate(lagging);
  write(20, 'without-lagging');
  const leaderSnapshot = cluster.snapshot(leaderId, 2);
  cluster.snapshot(other, 0);
  write(5, 'after-snapshot');
  // What the lagging node would need next is gone from the leader's log.
  expect(cluster.core(leaderId).firstIndex()).toBeGreaterThan(cluster.server(lagging).storage.lastIndex() + 1);
  return { cluster, leaderId, lagging, other, written, leaderSnapshot, write };
}

/** Every live node holds the same log from `from` on, the same commit, and the same state machine holding `written`. */
function expectConverged(cluster: SnapshottingCluster, from: number, written: readonly string[]): void {
  const leaderId = cluster.leader();
  expect(leaderId).not.toBeNull();
  const leader = cluster.core(leaderId as NodeId);
  const cores = ids.map((id) => cluster.core(id));
  expect(cores.map((c) => c.status().commitIndex)).toEqual(cores.map(() => leader.status().commitIndex));
  expect(cores.map((c) => c.lastIndex())).toEqual(cores.map(() => leader.lastIndex()));
  expect(leader.status().commitIndex).toBe(leader.lastIndex());
  for (let index = from; index <= leader.lastIndex(); index++) {
    expect(
      cores.map((c) => c.termAt(index)),
      `terms at ${index}`,
    ).toEqual(cores.map(() => leader.termAt(index)));
    if (index > from) {
      expect(
        cores.map((c) => c.entryAt(index)),
        `entries at ${index}`,
      ).toEqual(cores.map(() => leader.entryAt(index)));
    }
  }
  for (const id of ids) {
    expect(cluster.server(id).commands, `${id}'s state machine`).toEqual(written);
    expect(cluster.server(id).appliedIndex, `${id}'s applied index`).toBe(leader.status().commitIndex);
  }
}

function tickUntilCaughtUp(cluster: SnapshottingCluster, id: NodeId): void {
  cluster.tickUntil(`${id} applied everything the leader committed`, () => {
    const leaderId = cluster.leader();
    if (leaderId === null) return false;
    const leader = cluster.core(leaderId);
    const status = cluster.core(id).status();
    return status.appliedIndex === leader.status().commitIndex && status.lastIndex === leader.lastIndex();
  });
}

describe('end to end: a follower left behind catches up through a snapshot', () => {
  const cases = [
    { title: 'crashed while the others compacted', fault: 'crashed', lostTransfers: 0 },
    { title: 'partitioned while the others compacted', fault: 'partitioned', lostTransfers: 0 },
    { title: 'crashed, and the first two transfers break on the way', fault: 'crashed', lostTransfers: 2 },
  ] as const;

  it.each(cases)('$title', ({ fault, lostTransfers }) => {
    const { cluster, leaderId, lagging, written, leaderSnapshot } = leaveBehind(fault);
    cluster.loseTransfers(lagging, lostTransfers);
    if (fault === 'crashed') cluster.restart(lagging);
    else cluster.heal();
    tickUntilCaughtUp(cluster, lagging);

    const transfers = cluster.sent.filter((m): m is InstallSnapshot => m.type === 'InstallSnapshot' && m.to === lagging);
    expect(transfers).toHaveLength(lostTransfers + 1);
    for (const transfer of transfers) expect(transfer.snapshot).toEqual(leaderSnapshot);
    expect(cluster.server(lagging).storage.snapshot()).toEqual(leaderSnapshot);
    expect(cluster.core(lagging).firstIndex()).toBe(leaderSnapshot.index + 1);
    expect(cluster.leader()).toBe(leaderId);
    expectConverged(cluster, leaderSnapshot.index, written);
  });

  it('the node that caught up restarts from the installed snapshot, then leads and sends a snapshot of its own', () => {
    const { cluster, leaderId, lagging, written, leaderSnapshot, write } = leaveBehind('crashed');
    cluster.restart(lagging);
    tickUntilCaughtUp(cluster, lagging);

    // Its disk now holds the leader's snapshot and the entries after it; a new life restores from that.
    cluster.crash(lagging);
    cluster.restart(lagging);
    const restored = cluster.server(lagging);
    expect(restored.appliedIndex).toBe(leaderSnapshot.index);
    // The state that came with the snapshot: more than the 3 commands it had applied itself before its first crash.
    expect(restored.commands.length).toBeGreaterThan(3);
    expect(restored.commands).toEqual(written.slice(0, restored.commands.length));
    tickUntilCaughtUp(cluster, lagging);

    expect(cluster.core(leaderId).transferLeadership(lagging).accepted).toBe(true);
    cluster.settle();
    cluster.tickUntil(`${lagging} leads`, () => cluster.leader() === lagging);

    // The old leader goes down; the new one writes, snapshots and compacts everything; the old one returns.
    cluster.crash(leaderId);
    write(4, 'new-leader');
    const newSnapshot = cluster.snapshot(lagging, 0);
    expect(newSnapshot.index).toBeGreaterThan(cluster.server(leaderId).storage.lastIndex());
    cluster.restart(leaderId);
    tickUntilCaughtUp(cluster, leaderId);

    const transfers = cluster.sent.filter((m) => m.type === 'InstallSnapshot' && m.from === lagging && m.to === leaderId);
    expect(transfers).toEqual([expect.objectContaining({ snapshot: newSnapshot })]);
    expect(cluster.server(leaderId).storage.snapshot()).toEqual(newSnapshot);
    expect(newSnapshot.index).toBeGreaterThan(leaderSnapshot.index);
    expectConverged(cluster, newSnapshot.index, written);
  });
});
