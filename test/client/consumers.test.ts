/**
 * Durable consumers through the client library, against real `raftlog node`
 * processes: commitPosition, consumers() with lags, a backwards commit
 * refused unless allowed, deleteConsumer, a consumer subscription that
 * resumes after its committed position, and autoCommit as the caller takes
 * entries and on close(). Waits are conditions with generous deadlines.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type LogSubscription,
  RaftLogClient,
  RaftLogFailedPreconditionError,
  RaftLogInvalidArgumentError,
  type SubscribedEntry,
} from '../../src/client/index.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { rejection } from '../support/rejection.js';
import { take } from '../support/take-entries.js';
import { waitFor } from '../support/wait-for.js';

const WAIT_MS = 60_000;

let cluster: ProcessCluster | null = null;
let c: RaftLogClient | null = null;
let subscriptions: LogSubscription[] = [];

const client = (): RaftLogClient => c as RaftLogClient;

beforeAll(async () => {
  cluster = await ProcessCluster.start(3);
  await cluster.waitForLeader(cluster.ids, WAIT_MS);
  c = new RaftLogClient({ endpoints: cluster.ids.map((id) => `${id}=${(cluster as ProcessCluster).address(id)}`), deadlineMs: 10_000 });
});

afterEach(async () => {
  await Promise.all(subscriptions.map((subscription) => subscription.close().catch(() => undefined)));
  subscriptions = [];
});

afterAll(async () => {
  c?.close();
  await cluster?.destroy();
  cluster = null;
});

function subscribe(options: Parameters<RaftLogClient['subscribe']>[0]): LogSubscription {
  const subscription = client().subscribe(options);
  subscriptions.push(subscription);
  return subscription;
}

/** Appends `count` records and returns the index of the last. */
async function appendSome(count: number, tag: string): Promise<number> {
  let last = 0;
  for (let i = 1; i <= count; i++) last = (await client().append(`${tag}-${i}`)).index;
  return last;
}

async function positionOf(consumer: string): Promise<number | null> {
  const list = await client().consumers();
  return list.consumers.find((entry) => entry.name === consumer)?.position ?? null;
}

describe('durable consumers through the client', () => {
  it('commits a position, lists it with its lag, refuses to move it backwards unless allowed, and deletes it', async () => {
    const last = await appendSome(10, 'basic');
    const committed = await client().commitPosition('billing', last - 4);
    expect(committed.position).toBe(last - 4);
    expect(committed.entry.index).toBeGreaterThan(last);
    expect(committed.leader).not.toBeNull();

    const list = await client().consumers();
    const billing = list.consumers.find((entry) => entry.name === 'billing');
    expect(billing).toMatchObject({ position: last - 4, commitEntryIndex: committed.entry.index });
    expect(billing?.lag).toBe(list.commitIndex - (last - 4));
    expect(billing?.committedAtMs).toBeGreaterThan(0);
    expect(list.readIndex).toBeGreaterThanOrEqual(committed.entry.index);

    const backwards = await rejection(client().commitPosition('billing', 2));
    expect(backwards).toBeInstanceOf(RaftLogFailedPreconditionError);
    expect((backwards as Error).message).toMatch(/billing is at \d+; committing 2 would move it backwards/);
    expect(await positionOf('billing')).toBe(last - 4);

    expect((await client().commitPosition('billing', 2, { allowBackwards: true })).position).toBe(2);
    expect(await positionOf('billing')).toBe(2);

    expect((await client().deleteConsumer('billing')).existed).toBe(true);
    expect((await client().deleteConsumer('billing')).existed).toBe(false);
    expect(await positionOf('billing')).toBeNull();
  });

  it('rejects malformed consumer calls before sending them', async () => {
    const before = (await client().consumers()).consumers.length;
    await expect(client().commitPosition('', 1)).rejects.toBeInstanceOf(RaftLogInvalidArgumentError);
    await expect(client().commitPosition('x'.repeat(201), 1)).rejects.toBeInstanceOf(RaftLogInvalidArgumentError);
    await expect(client().commitPosition('ok', -1)).rejects.toBeInstanceOf(RaftLogInvalidArgumentError);
    await expect(client().commitPosition('ok', 1.5)).rejects.toBeInstanceOf(RaftLogInvalidArgumentError);
    await expect(client().deleteConsumer('')).rejects.toBeInstanceOf(RaftLogInvalidArgumentError);
    expect((await client().consumers()).consumers.length).toBe(before);
    // commit() of a subscription without a consumer has nothing to commit for.
    await expect(subscribe({}).commit()).rejects.toBeInstanceOf(RaftLogInvalidArgumentError);
  });

  it('a consumer subscription starts right after the committed position; a new consumer starts at from', async () => {
    const last = await appendSome(10, 'resume');
    await client().commitPosition('reporting', last - 3);

    const resumed = await take(subscribe({ consumer: 'reporting' }), 3);
    expect(resumed.map((entry) => entry.index)).toEqual([last - 2, last - 1, last]);

    const fresh = await take(subscribe({ consumer: 'never-committed', from: last - 1 }), 2);
    expect(fresh.map((entry) => entry.index)).toEqual([last - 1, last]);
    expect(await positionOf('never-committed')).toBeNull();
  });

  it('commit() commits coveredThrough of a consumer subscription', async () => {
    const last = await appendSome(5, 'manual');
    await client().commitPosition('manual', last - 5);
    const subscription = subscribe({ consumer: 'manual' });
    const taken = await take(subscription, 2);
    const result = await subscription.commit();
    expect(result.position).toBe(subscription.coveredThrough);
    expect(result.position).toBeGreaterThanOrEqual(taken[1]?.index ?? Infinity);
    expect(await positionOf('manual')).toBe(result.position);
    expect(subscription.committedPosition).toBe(result.position);
  });

  it('autoCommit commits what the caller has taken as it goes and on close(); the next subscription starts after it', async () => {
    const start = await appendSome(1, 'auto-start');
    await client().commitPosition('auto', start);
    const last = await appendSome(30, 'auto');

    const first = subscribe({ consumer: 'auto', autoCommit: { everyEntries: 5 } });
    const taken = await take(first, 12);
    expect(taken[0]?.index).toBe(start + 1);
    // The caller holds the 12th entry: it has taken the first 11, and commits come in steps of 5.
    await waitFor('autoCommit to commit 10 entries past the start', async () => ((await positionOf('auto')) ?? 0) >= start + 10, WAIT_MS);
    expect(await positionOf('auto')).toBeLessThanOrEqual(start + 11);
    await first.close();
    // Closing commits what was taken: the 11 entries before the one the caller still held.
    expect(await positionOf('auto')).toBe(start + 11);
    expect(first.committedPosition).toBe(start + 11);

    const second = subscribe({ consumer: 'auto' });
    const [next] = await take(second, 1);
    expect(next?.index).toBe(taken[11]?.index);
    expect(next?.index).toBeLessThanOrEqual(last);
  });

  it('autoCommit by time commits work once, not its own commit entries: an idle log stays idle', async () => {
    const last = await appendSome(1, 'idle');
    const subscription = subscribe({ consumer: 'idle', from: last, autoCommit: { everyMs: 200 } });
    const seen: SubscribedEntry[] = [];
    const reading = (async () => {
      for await (const entry of subscription) seen.push(entry);
    })();
    await waitFor('the timer to commit the appended entry', async () => ((await positionOf('idle')) ?? 0) >= last, WAIT_MS);
    const before = (await client().consumers()).commitIndex;
    // Each commit is an entry the subscription then delivers; committing past those on a timer would add one every 200 ms.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const after = (await client().consumers()).commitIndex;
    expect(after - before, `commit index went from ${before} to ${after} on an idle log`).toBeLessThanOrEqual(1);
    expect(seen[0]?.index).toBe(last);
    await subscription.close();
    await reading;
  });

  it('autoCommit in a for-await loop commits each entry the loop finished, once it breaks out', async () => {
    const start = await appendSome(1, 'loop-start');
    await client().commitPosition('loop', start);
    await appendSome(10, 'loop');

    const seen: number[] = [];
    for await (const entry of subscribe({ consumer: 'loop', autoCommit: { everyMs: 60_000 } })) {
      seen.push(entry.index);
      if (seen.length === 4) break; // leaves the 4th unfinished as far as the subscription can tell
    }
    expect(seen).toEqual([start + 1, start + 2, start + 3, start + 4]);
    expect(await positionOf('loop')).toBe(start + 3);
  });
});
