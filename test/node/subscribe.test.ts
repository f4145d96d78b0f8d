/**
 * Subscribe (client.proto) against real `raftlog node` processes, over raw
 * gRPC: the COMMANDS and CHANGES views, consecutive ranges whatever the
 * filter, heartbeats, compacted starts, the tail, a node that stops under a
 * subscriber, and a subscriber that stops reading while the cluster writes.
 * Waits are conditions polled with generous deadlines, never fixed sleeps.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WireLogEntryKind } from '../../src/api/client-api.js';
import type {
  CommitPositionReply,
  CompareAndSwapReply,
  DeleteReply,
  LogEntryReply,
  ReadLogReply,
  StatusReply,
  SubscribeRequest,
  WriteReply,
} from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { closeAllSubscriptions, isHeartbeat, rangeProblems, SubscribeStream } from '../support/subscribe-stream.js';
import { waitFor } from '../support/wait-for.js';

const CALL_MS = 10_000;
const WAIT_MS = 60_000;

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');
const indexesOf = (entries: readonly LogEntryReply[]): number[] => entries.map((entry) => entry.index);
const from = (first: number, last: number): number[] => Array.from({ length: last - first + 1 }, (_, i) => first + i);

/** Raw client calls of one cluster, by node id. */
function callsOn(c: ProcessCluster) {
  return {
    put: (id: string, key: string, value: string) => c.call<WriteReply>(id, 'put', { key: Buffer.from(key), value: Buffer.from(value) }, CALL_MS),
    append: (id: string, record: string | Buffer) =>
      c.call<WriteReply>(id, 'append', { record: typeof record === 'string' ? Buffer.from(record) : record }, CALL_MS),
    cas: (id: string, key: string, expected: string | null, value: string) =>
      c.call<CompareAndSwapReply>(
        id,
        'compareAndSwap',
        { key: Buffer.from(key), expected: Buffer.from(expected ?? ''), expectAbsent: expected === null, value: Buffer.from(value) },
        CALL_MS,
      ),
    del: (id: string, key: string) => c.call<DeleteReply>(id, 'delete', { key: Buffer.from(key) }, CALL_MS),
    commitPosition: (id: string, consumer: string, position: number) =>
      c.call<CommitPositionReply>(id, 'commitPosition', { consumer, position, allowBackwards: false }, CALL_MS),
    status: (id: string) => c.call<StatusReply>(id, 'status', {}, CALL_MS),
    readLog: (id: string, fromIndex: number, maxEntries = 1000) => c.call<ReadLogReply>(id, 'readLog', { fromIndex, maxEntries }, CALL_MS),
  };
}

/** A node's commit index once it has reached at least `index` (a follower's may trail the leader's). */
async function commitReached(c: ProcessCluster, id: string, index: number): Promise<number> {
  return waitFor(
    `node ${id} to commit index ${index}`,
    async () => {
      const { commitIndex } = await c.status(id);
      return commitIndex >= index ? commitIndex : undefined;
    },
    { timeoutMs: WAIT_MS, intervalMs: 50 },
  );
}

function subscribe(c: ProcessCluster, id: string, request: Partial<SubscribeRequest>): SubscribeStream {
  return SubscribeStream.open(c.address(id), request);
}

afterEach(() => closeAllSubscriptions());

describe('Subscribe on a healthy cluster', () => {
  let cluster: ProcessCluster | null = null;
  const c = (): ProcessCluster => cluster as ProcessCluster;

  beforeAll(async () => {
    cluster = await ProcessCluster.start(3);
    await cluster.waitForLeader(cluster.ids, WAIT_MS);
  });
  afterAll(async () => {
    await cluster?.destroy();
    cluster = null;
  });

  /** The leader now, and a follower of it. */
  async function roles(): Promise<{ leader: string; follower: string }> {
    const leader = await c().waitForLeader(c().ids, WAIT_MS);
    return { leader, follower: c().ids.find((id) => id !== leader) as string };
  }

  it('COMMANDS view from index 1 on a follower: consecutive ranges, every entry with its command, then the live tail', async () => {
    const { leader, follower } = await roles();
    const calls = callsOn(c());
    const put = await calls.put(leader, 'cmd/a', 'one');
    const swapped = await calls.cas(leader, 'cmd/a', 'one', 'two');
    const swappedAbsent = await calls.cas(leader, 'cmd/b', null, 'new');
    const appended = await calls.append(leader, 'record one');
    const committed = await calls.commitPosition(leader, 'cmd-reader', appended.position.index);
    const beforeSubscribe = Date.now();

    const stream = subscribe(c(), follower, { fromIndex: 1 });
    await stream.untilCovered(committed.entry.index);

    expect(rangeProblems(stream.replies, 1)).toEqual([]);
    // Nothing filtered: every index of the covered range is an entry.
    expect(indexesOf(stream.entries)).toEqual(from(1, stream.coveredThrough));
    for (const entry of stream.entries) {
      expect(entry.term).toBeGreaterThan(0);
      // Before and after values belong to the CHANGES view only.
      expect(entry.changes).toEqual([]);
    }
    // What the follower streams is its committed log as ReadLog reads it.
    const read = await calls.readLog(follower, 1, stream.coveredThrough);
    expect(stream.entries.slice(0, read.entries.length)).toEqual(read.entries);

    const at = (index: number): LogEntryReply => {
      const entry = stream.entries.find((e) => e.index === index);
      if (entry === undefined) throw new Error(`no entry ${index} in the stream`);
      return entry;
    };
    const described = (entry: LogEntryReply) => ({
      kind: entry.kind,
      term: entry.term,
      key: text(entry.key),
      value: text(entry.value),
      expected: text(entry.expected),
      expectAbsent: entry.expectAbsent,
      record: text(entry.record),
      consumer: entry.consumer,
      position: entry.position,
    });
    const blank = { key: '', value: '', expected: '', expectAbsent: false, record: '', consumer: '', position: 0 };
    expect(described(at(put.position.index))).toEqual({ ...blank, kind: 'LOG_ENTRY_KIND_PUT', term: put.position.term, key: 'cmd/a', value: 'one' });
    expect(described(at(swapped.position.index))).toEqual({
      ...blank,
      kind: 'LOG_ENTRY_KIND_COMPARE_AND_SWAP',
      term: swapped.position.term,
      key: 'cmd/a',
      value: 'two',
      expected: 'one',
    });
    expect(described(at(swappedAbsent.position.index))).toEqual({
      ...blank,
      kind: 'LOG_ENTRY_KIND_COMPARE_AND_SWAP',
      term: swappedAbsent.position.term,
      key: 'cmd/b',
      value: 'new',
      expectAbsent: true,
    });
    expect(described(at(appended.position.index))).toEqual({
      ...blank,
      kind: 'LOG_ENTRY_KIND_APPEND',
      term: appended.position.term,
      record: 'record one',
    });
    expect(described(at(committed.entry.index))).toEqual({
      ...blank,
      kind: 'LOG_ENTRY_KIND_COMMIT_POSITION',
      term: committed.entry.term,
      consumer: 'cmd-reader',
      position: appended.position.index,
    });
    // The leader stamped each command with its clock when it proposed it.
    for (const index of [put.position.index, appended.position.index, committed.entry.index]) {
      expect(at(index).proposedAtMs).toBeGreaterThan(beforeSubscribe - 10 * 60_000);
      expect(at(index).proposedAtMs).toBeLessThanOrEqual(beforeSubscribe + 60_000);
    }

    // Live: the stream follows what is written after it caught up.
    const live = [await calls.append(leader, 'live one'), await calls.put(leader, 'cmd/live', 'fresh'), await calls.append(follower, 'live two')];
    const lastLive = Math.max(...live.map((w) => w.position.index));
    await stream.untilCovered(lastLive);
    expect(rangeProblems(stream.replies, 1)).toEqual([]);
    expect(indexesOf(stream.entries)).toEqual(from(1, stream.coveredThrough));
    expect(text(at(live[0]!.position.index).record)).toBe('live one');
    expect(text(at(live[1]!.position.index).value)).toBe('fresh');
    expect(text(at(live[2]!.position.index).record)).toBe('live two');
    expect(stream.endedWith).toBeNull();
  });

  it('an idle stream gets heartbeats: replies covering nothing, with the commit index, the node and its leader', async () => {
    const { leader, follower } = await roles();
    const onFollower = subscribe(c(), follower, { fromTail: true });
    const onLeader = subscribe(c(), leader, { fromTail: true });
    for (const stream of [onFollower, onLeader]) await stream.until('a heartbeat', (s) => s.replies.some(isHeartbeat), 20_000);

    const [fromFollower, fromLeader] = [onFollower, onLeader].map((stream) => stream.replies.find(isHeartbeat)!);
    const { commitIndex } = await c().status(leader);
    expect(fromFollower).toMatchObject({ entries: [], node: follower, leader });
    expect(fromLeader).toMatchObject({ entries: [], node: leader, leader });
    for (const heartbeat of [fromFollower!, fromLeader!]) {
      expect(heartbeat.lastIndex).toBe(heartbeat.firstIndex - 1);
      expect(heartbeat.commitIndex).toBeGreaterThan(0);
      expect(heartbeat.commitIndex).toBeLessThanOrEqual(commitIndex);
    }
  });

  it('a kinds filter and a key-prefix filter leave entries out, while the replies still cover consecutive ranges', async () => {
    const { leader, follower } = await roles();
    const calls = callsOn(c());
    const start = (await calls.status(leader)).commitIndex + 1;
    const appends = [await calls.append(leader, 'a1')];
    const userPut = await calls.put(leader, 'user/1', 'x');
    await calls.put(leader, 'order/1', 'x');
    appends.push(await calls.append(leader, 'a2'));
    const userCas = await calls.cas(leader, 'user/1', 'x', 'y');
    await calls.cas(leader, 'order/1', 'wrong', 'y');
    const userDelete = await calls.del(leader, 'user/1');
    await calls.del(leader, 'order/1');
    // "users" is not under "user/", and a consumer's name is not a key.
    await calls.put(leader, 'users', 'x');
    await calls.commitPosition(leader, 'user/reader', start);
    const userPut2 = await calls.put(leader, 'user/2', 'z');
    appends.push(await calls.append(leader, 'a3'));
    const last = (await calls.status(leader)).commitIndex;

    const appendsOnly = subscribe(c(), follower, { fromIndex: start, kinds: ['LOG_ENTRY_KIND_APPEND'] });
    const userKeys = subscribe(c(), follower, { fromIndex: start, keyPrefix: Buffer.from('user/') });
    const userPutsAndDeletes = subscribe(c(), leader, {
      fromIndex: start,
      kinds: ['LOG_ENTRY_KIND_PUT', 'LOG_ENTRY_KIND_DELETE'],
      keyPrefix: Buffer.from('user/'),
    });
    for (const stream of [appendsOnly, userKeys, userPutsAndDeletes]) {
      await stream.untilCovered(last);
      expect(rangeProblems(stream.replies, start)).toEqual([]);
    }

    expect(indexesOf(appendsOnly.entries)).toEqual(appends.map((w) => w.position.index));
    expect(appendsOnly.entries.map((e) => [e.kind, text(e.record)])).toEqual([
      ['LOG_ENTRY_KIND_APPEND', 'a1'],
      ['LOG_ENTRY_KIND_APPEND', 'a2'],
      ['LOG_ENTRY_KIND_APPEND', 'a3'],
    ]);
    expect(indexesOf(userKeys.entries)).toEqual([userPut, userCas, userDelete, userPut2].map((w) => w.position.index));
    expect(userKeys.entries.map((e) => text(e.key))).toEqual(['user/1', 'user/1', 'user/1', 'user/2']);
    expect(indexesOf(userPutsAndDeletes.entries)).toEqual([userPut, userDelete, userPut2].map((w) => w.position.index));
  });

  it('CHANGES view: only the entries that changed a key, each with the value before and after', async () => {
    const { leader, follower } = await roles();
    const calls = callsOn(c());
    const start = (await calls.status(leader)).commitIndex + 1;
    const first = await calls.put(leader, 'chg/k', 'v1');
    const second = await calls.put(leader, 'chg/k', 'v2');
    const failedSwap = await calls.cas(leader, 'chg/k', 'not-v2', 'v3');
    const swap = await calls.cas(leader, 'chg/k', 'v2', 'v3');
    await calls.append(leader, 'not a key change');
    await calls.commitPosition(leader, 'chg-reader', start);
    const removed = await calls.del(leader, 'chg/k');
    const removedAgain = await calls.del(leader, 'chg/k');
    const elsewhere = await calls.put(leader, 'other/k', 'o1');
    expect([failedSwap.succeeded, swap.succeeded, removed.existed, removedAgain.existed]).toEqual([false, true, true, false]);
    const last = elsewhere.position.index;

    const changes = subscribe(c(), follower, { fromIndex: start, view: 'SUBSCRIBE_VIEW_CHANGES' });
    const chgOnly = subscribe(c(), follower, { fromIndex: start, view: 'SUBSCRIBE_VIEW_CHANGES', keyPrefix: Buffer.from('chg/') });
    for (const stream of [changes, chgOnly]) {
      await stream.untilCovered(last);
      expect(rangeProblems(stream.replies, start)).toEqual([]);
    }

    const described = (entry: LogEntryReply) => ({
      index: entry.index,
      term: entry.term,
      kind: entry.kind,
      changes: entry.changes.map((change) => ({
        key: text(change.key),
        foundBefore: change.foundBefore,
        before: text(change.before),
        deleted: change.deleted,
        after: text(change.after),
      })),
    });
    const change = (kind: WireLogEntryKind, at: { index: number; term: number }, key: string, before: string | null, after: string | null) => ({
      index: at.index,
      term: at.term,
      kind,
      changes: [{ key, foundBefore: before !== null, before: before ?? '', deleted: after === null, after: after ?? '' }],
    });
    const expected = [
      change('LOG_ENTRY_KIND_PUT', first.position, 'chg/k', null, 'v1'),
      change('LOG_ENTRY_KIND_PUT', second.position, 'chg/k', 'v1', 'v2'),
      change('LOG_ENTRY_KIND_COMPARE_AND_SWAP', swap.position, 'chg/k', 'v2', 'v3'),
      change('LOG_ENTRY_KIND_DELETE', removed.position, 'chg/k', 'v3', null),
      change('LOG_ENTRY_KIND_PUT', elsewhere.position, 'other/k', null, 'o1'),
    ];
    expect(changes.entries.map(described)).toEqual(expected);
    expect(chgOnly.entries.map(described)).toEqual(expected.slice(0, 4));
  });

  it('from_tail: only entries committed after the subscription started are delivered', async () => {
    const { leader, follower } = await roles();
    const calls = callsOn(c());
    const before = [await calls.append(leader, 'before 1'), await calls.append(leader, 'before 2')];
    const committedBefore = await commitReached(c(), follower, before[1]!.position.index);

    const stream = subscribe(c(), follower, { fromTail: true, kinds: ['LOG_ENTRY_KIND_APPEND'] });
    // The first reply (a heartbeat, as nothing is written meanwhile) shows where the stream starts.
    await stream.until('a first reply', (s) => s.replies.length > 0, 20_000);
    const start = stream.replies[0]!.firstIndex;
    expect(start).toBeGreaterThan(committedBefore);

    const after = [await calls.append(leader, 'after 1'), await calls.append(follower, 'after 2'), await calls.append(leader, 'after 3')];
    await stream.untilCovered(after[2]!.position.index);
    expect(rangeProblems(stream.replies, start)).toEqual([]);
    expect(stream.entries.map((e) => text(e.record))).toEqual(['after 1', 'after 2', 'after 3']);
    expect(indexesOf(stream.entries)).toEqual(after.map((w) => w.position.index));
  });

  it('several subscribers on one node, from different starts, while writes arrive in bursts: each gets the committed log from its own start', async () => {
    // The node serves every stream from the same shared, decoded entries: each must still get its own range, filtered its own way.
    const { leader, follower } = await roles();
    const calls = callsOn(c());
    const first = await calls.append(leader, 'shared 0');
    const start = first.position.index;
    const burst = (label: string) => Promise.all(Array.from({ length: 20 }, (_, i) => calls.append(leader, `${label} ${i}`)));
    await burst('early');

    const APPENDS: WireLogEntryKind[] = ['LOG_ENTRY_KIND_APPEND'];
    const streams = [
      { from: start, kinds: [] },
      { from: start, kinds: [] },
      { from: start + 7, kinds: [] },
      { from: start + 7, kinds: APPENDS },
    ].map(({ from, kinds }) => ({ from, kinds, stream: subscribe(c(), follower, { fromIndex: from, kinds }) }));
    const written = [...(await burst('live a')), ...(await burst('live b')), ...(await burst('live c'))];
    const last = Math.max(...written.map((w) => w.position.index));
    for (const { stream } of streams) await stream.untilCovered(last);

    const log = await calls.readLog(follower, start, last - start + 1);
    for (const [i, { from: at, kinds, stream }] of streams.entries()) {
      expect(rangeProblems(stream.replies, at), `stream ${i}`).toEqual([]);
      expect(stream.replies[0]?.firstIndex, `stream ${i}`).toBe(at);
      const expected = log.entries.filter((entry) => entry.index >= at && (kinds.length === 0 || kinds.includes(entry.kind)));
      expect(
        stream.entries.filter((entry) => entry.index <= last),
        `stream ${i}`,
      ).toEqual(expected);
    }
  });

  it('bad input is refused with INVALID_ARGUMENT: an unknown entry kind in the filter, an over-long consumer name', async () => {
    const { follower } = await roles();
    const unknownKind = subscribe(c(), follower, { fromIndex: 1, kinds: [99 as unknown as WireLogEntryKind] });
    const error = await unknownKind.failure(20_000);
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/entry kind 99/);

    const unspecified = subscribe(c(), follower, { fromIndex: 1, kinds: ['LOG_ENTRY_KIND_UNSPECIFIED'] });
    expect((await unspecified.failure(20_000)).code).toBe(grpc.status.INVALID_ARGUMENT);

    const longName = subscribe(c(), follower, { fromIndex: 1, consumer: 'c'.repeat(201) });
    const nameError = await longName.failure(20_000);
    expect(nameError.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(nameError.details).toMatch(/consumer name of 201 bytes/);
    expect(unknownKind.replies).toEqual([]);
  });

  it('a subscriber that stops reading holds back neither the writes nor its own completeness: after resuming it gets every entry in order', {
    timeout: 180_000,
  }, async () => {
    const { leader } = await roles();
    const calls = callsOn(c());
    const stream = subscribe(c(), leader, { fromIndex: 1 });
    await stream.until('a first reply', (s) => s.replies.length > 0, 20_000);
    stream.pause();

    // 2,000 appends of 1 KiB, 8 at a time, while the subscriber reads nothing.
    const count = 2000;
    const positions: number[] = new Array<number>(count);
    const failures: string[] = [];
    let next = 0;
    const writer = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const record = Buffer.alloc(1024, `flow-${i}-`);
        try {
          positions[i] = (await calls.append(leader, record)).position.index;
        } catch (error) {
          failures.push(`append ${i}: ${grpc.status[(error as grpc.ServiceError).code]} ${(error as grpc.ServiceError).details}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, writer));
    expect(failures).toEqual([]);
    expect(stream.endedWith).toBeNull();

    stream.resume();
    const last = Math.max(...positions);
    await stream.untilCovered(last, 120_000);
    expect(rangeProblems(stream.replies, 1)).toEqual([]);
    expect(indexesOf(stream.entries)).toEqual(from(1, stream.coveredThrough));
    // Each record exactly once, where its append said it went.
    const flowRecords = stream.entries.filter((e) => e.kind === 'LOG_ENTRY_KIND_APPEND' && text(e.record).startsWith('flow-'));
    expect(flowRecords).toHaveLength(count);
    for (let i = 0; i < count; i++) {
      const entry = stream.entries[positions[i]! - 1]!;
      expect(entry.index).toBe(positions[i]);
      expect(Buffer.from(entry.record).equals(Buffer.alloc(1024, `flow-${i}-`))).toBe(true);
    }
  });
});

describe('Subscribe from a compacted start', () => {
  let cluster: ProcessCluster | null = null;

  afterEach(async () => {
    await cluster?.destroy();
    cluster = null;
  });

  it('from before the first index held: OUT_OF_RANGE naming it (message and trailer); from it, the stream works; CHANGES on a restarted node likewise', {
    timeout: 180_000,
  }, async () => {
    cluster = await ProcessCluster.start(3, ['--snapshot-entries', '50', '--retain-entries', '10']);
    const c = cluster;
    const calls = callsOn(c);
    const leader = await c.waitForLeader(c.ids, WAIT_MS);
    const [follower, restarted] = c.ids.filter((id) => id !== leader) as [string, string];
    let written = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < 200) {
          const i = next++;
          written = Math.max(written, (await calls.put(leader, `k${i % 20}`, `v${i}`)).position.index);
        }
      }),
    );
    await c.waitForConvergence(written, c.ids, WAIT_MS);
    // Compaction settles: the latest snapshot is within 50 entries of the end (no more are due) and the log behind it is cut to the retained window.
    const settled = await waitFor(
      `node ${follower} to compact its log behind its latest snapshot`,
      async () => {
        const s = await calls.status(follower);
        return s.firstLogIndex > 1 && s.snapshotIndex > s.commitIndex - 50 && s.firstLogIndex >= s.snapshotIndex - 10 ? s : undefined;
      },
      { timeoutMs: WAIT_MS, intervalMs: 100 },
    );

    const tooEarly = subscribe(c, follower, { fromIndex: 1 });
    const error = await tooEarly.failure(20_000);
    expect(error.code).toBe(grpc.status.OUT_OF_RANGE);
    const firstIndex = Number(error.metadata.get('raftlog-first-index')[0]);
    expect(firstIndex).toBe(settled.firstLogIndex);
    expect(error.details).toContain(`the log starts at ${firstIndex}`);
    expect(tooEarly.replies).toEqual([]);
    // Any start before it alike.
    expect((await subscribe(c, follower, { fromIndex: firstIndex - 1 }).failure(20_000)).code).toBe(grpc.status.OUT_OF_RANGE);

    const fromFirst = subscribe(c, follower, { fromIndex: firstIndex });
    await fromFirst.untilCovered(written);
    expect(rangeProblems(fromFirst.replies, firstIndex)).toEqual([]);
    expect(indexesOf(fromFirst.entries)).toEqual(from(firstIndex, fromFirst.coveredThrough));

    // A restarted node knows the changes only of what it applied since: its history starts after its snapshot.
    await c.stop(restarted);
    c.startNode(restarted);
    await c.waitForConvergence(written, c.ids, WAIT_MS);
    await c.waitForLeader(c.ids, WAIT_MS);
    const changesFrom1 = subscribe(c, restarted, { fromIndex: 1, view: 'SUBSCRIBE_VIEW_CHANGES' });
    const changesError = await changesFrom1.failure(20_000);
    expect(changesError.code).toBe(grpc.status.OUT_OF_RANGE);
    const historyStart = Number(changesError.metadata.get('raftlog-first-index')[0]);
    expect(historyStart).toBeGreaterThan(1);
    expect(historyStart).toBeLessThanOrEqual(written + 1);
    expect(changesError.details).toContain(`the changes view starts at ${historyStart}`);

    const changes = subscribe(c, restarted, { fromIndex: historyStart, view: 'SUBSCRIBE_VIEW_CHANGES' });
    const after = await calls.put(leader, 'after-restart', 'seen');
    await changes.untilCovered(after.position.index);
    expect(rangeProblems(changes.replies, historyStart)).toEqual([]);
    expect(changes.entries.at(-1)).toMatchObject({ index: after.position.index, kind: 'LOG_ENTRY_KIND_PUT' });
    expect(text(changes.entries.at(-1)!.changes[0]!.after)).toBe('seen');
  });
});

describe('Subscribe on a node that stops', () => {
  let cluster: ProcessCluster | null = null;

  afterEach(async () => {
    await cluster?.destroy();
    cluster = null;
  });

  it('a graceful stop (SIGTERM) of the node ends its subscribers with UNAVAILABLE promptly; subscribers elsewhere go on', {
    timeout: 120_000,
  }, async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader(c.ids, WAIT_MS);
    const [stopping, staying] = c.ids.filter((id) => id !== leader) as [string, string];
    await callsOn(c).append(leader, 'something to read');
    const caughtUp = subscribe(c, stopping, { fromIndex: 1 });
    const paused = subscribe(c, stopping, { fromIndex: 1 });
    const elsewhere = subscribe(c, staying, { fromIndex: 1 });
    for (const stream of [caughtUp, paused, elsewhere]) await stream.until('a first reply', (s) => s.replies.length > 0, 20_000);
    paused.pause();

    // The fault: SIGTERM; the node is SIGKILLed only if it has not exited after 30 s.
    const stopped = c.stop(stopping, 30_000);
    const error = await caughtUp.failure(20_000);
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.details).toMatch(new RegExp(`node ${stopping} is shutting down`));
    await stopped;
    paused.resume();
    expect((await paused.failure(20_000)).code).toBe(grpc.status.UNAVAILABLE);

    // The subscriber on another node still hears from it (heartbeats at least).
    const heard = elsewhere.replies.length;
    await elsewhere.until('another reply after the stop', (s) => s.replies.length > heard, 20_000);
    expect(elsewhere.endedWith).toBeNull();
  });
});
