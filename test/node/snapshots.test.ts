/**
 * Snapshots and compaction with real `raftlog node` processes: nodes that
 * snapshot every few dozen entries, a follower that misses the entries the
 * others compacted and comes back through InstallSnapshot, a transfer cut by
 * a crash that resumes, and restarts that load the latest snapshot. Waits are
 * conditions polled with generous deadlines, never fixed sleeps.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReadLogReply, WriteReply } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';

const WAIT_MS = 60_000;
const CALL_MS = 10_000;
const SNAPSHOT_FLAGS = ['--snapshot-entries', '40', '--retain-entries', '10'];

let cluster: ProcessCluster | null = null;

afterEach(async () => {
  delete process.env.RAFTLOG_TEST_SNAPSHOT_CHUNK_DELAY_MS;
  await cluster?.destroy();
  cluster = null;
});

/** `count` Puts through `via`, `concurrency` at a time, over `keys` keys; returns the highest index written. */
async function writeMany(
  c: ProcessCluster,
  via: string,
  count: number,
  options: { keys?: number; valueBytes?: number; concurrency?: number } = {},
): Promise<number> {
  const { keys = 50, valueBytes = 16, concurrency = 8 } = options;
  let next = 0;
  let highest = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const value = Buffer.alloc(valueBytes, `v${i}-`);
      const reply = await c.call<WriteReply>(via, 'put', { key: Buffer.from(`k${i % keys}`), value }, CALL_MS);
      highest = Math.max(highest, reply.position.index);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return highest;
}

/** The node's structured log lines with this event. */
async function events(c: ProcessCluster, id: string, event: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(c.dir, `${id}.log`), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.includes(`"event":"${event}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The first index a node's log still holds, as its ReadLog tells it (OUT_OF_RANGE names it once compacted). */
async function firstHeldIndex(c: ProcessCluster, id: string): Promise<number> {
  try {
    await c.call<ReadLogReply>(id, 'readLog', { fromIndex: 1, maxEntries: 1 }, CALL_MS);
    return 1;
  } catch (error) {
    const serviceError = error as ServiceError;
    expect(serviceError.code).toBe(grpcStatus.OUT_OF_RANGE);
    const first = serviceError.metadata.get('raftlog-first-index')[0];
    return Number(first);
  }
}

describe('snapshots and compaction with real processes', () => {
  it('a follower down while the others write past the retained window comes back through InstallSnapshot to an equal digest', {
    timeout: 180_000,
  }, async () => {
    cluster = await ProcessCluster.start(3, SNAPSHOT_FLAGS);
    const c = cluster;
    const leader = await c.waitForLeader();
    const [follower] = c.ids.filter((id) => id !== leader) as [string];
    await writeMany(c, leader, 20);

    // Fault: the follower is SIGKILLed; the others write far past their snapshot threshold and retained window.
    await c.kill(follower);
    const written = await writeMany(c, leader, 300);
    const leaderFirst = await waitFor(
      'the leader compacts its log',
      async () => {
        const first = await firstHeldIndex(c, leader);
        return first > 40 ? first : undefined;
      },
      { timeoutMs: WAIT_MS },
    );
    expect(leaderFirst).toBeGreaterThan(1);
    // A compacted index is answered OUT_OF_RANGE, and reading from the first index held works.
    const page = await c.call<ReadLogReply>(leader, 'readLog', { fromIndex: leaderFirst, maxEntries: 5 }, CALL_MS);
    expect(page.entries[0]?.index).toBe(leaderFirst);

    // Expected: the follower restarts, is sent the leader's snapshot, installs it and converges.
    c.startNode(follower);
    await c.waitForConvergence(written, c.ids, WAIT_MS);
    const installed = await events(c, follower, 'snapshot-installed');
    expect(installed.length).toBeGreaterThan(0);
    expect(await events(c, leader, 'snapshot-sent')).not.toHaveLength(0);
    expect(await firstHeldIndex(c, follower)).toBeGreaterThan(1);

    // The cluster keeps taking writes after the install, on every node alike.
    const after = await writeMany(c, follower, 30);
    await c.waitForConvergence(after, c.ids, WAIT_MS);
  });

  it('a follower killed in the middle of a snapshot transfer resumes it from what it had staged, not from zero', { timeout: 240_000 }, async () => {
    // Each outgoing chunk (256 KiB) waits 150 ms: a snapshot of a few MiB takes seconds to send.
    process.env.RAFTLOG_TEST_SNAPSHOT_CHUNK_DELAY_MS = '150';
    cluster = await ProcessCluster.start(3, SNAPSHOT_FLAGS);
    const c = cluster;
    const leader = await c.waitForLeader();
    const [follower] = c.ids.filter((id) => id !== leader) as [string];
    await c.kill(follower);
    // About 4 MiB of state: 200 keys of 20 KiB.
    const written = await writeMany(c, leader, 400, { keys: 200, valueBytes: 20_000, concurrency: 4 });
    await waitFor('the leader compacts its log', async () => ((await firstHeldIndex(c, leader)) > 40 ? true : undefined), {
      timeoutMs: WAIT_MS,
    });

    // Fault: the follower comes back, and is SIGKILLed once part of the snapshot has arrived.
    c.startNode(follower);
    const incoming = join(c.dir, follower, 'snapshots', 'incoming');
    const staged = await waitFor(
      'part of the snapshot staged on the follower',
      async () => {
        const names = await readdir(incoming).catch(() => [] as string[]);
        for (const name of names.filter((n) => n.endsWith('.part'))) {
          const { size } = await stat(join(incoming, name));
          if (size >= 1024 * 1024) return size;
        }
        return undefined;
      },
      { timeoutMs: WAIT_MS, intervalMs: 20 },
    );
    await c.kill(follower);

    // The transfer cut by the crash fails; the leader then waits for the follower to answer a heartbeat before it
    // starts another, rather than starting one each time a transfer to the dead process fails or a write goes out.
    const attemptsTo = async (): Promise<number> => (await events(c, leader, 'snapshot-send')).filter((event) => event.peer === follower).length;
    await waitFor(
      'the cut transfer reported as failed',
      async () => ((await events(c, leader, 'snapshot-send-failed')).some((event) => event.peer === follower) ? true : undefined),
      { timeoutMs: WAIT_MS },
    );
    const attemptsBefore = await attemptsTo();
    // Linearizable reads let time pass in heartbeat rounds without a write (a write could make a newer snapshot).
    for (let i = 0; i < 100; i++) {
      await c.call(leader, 'get', { key: Buffer.from(`k${i}`), consistency: 'READ_CONSISTENCY_LINEARIZABLE' }, CALL_MS);
    }
    expect(await attemptsTo()).toBeLessThanOrEqual(attemptsBefore + 1);

    // Expected: restarted, it is offered the snapshot again and receives only the rest, then converges.
    c.startNode(follower);
    await c.waitForConvergence(written, c.ids, WAIT_MS);
    const sent = await events(c, leader, 'snapshot-sent');
    const resumed = sent.filter((e) => e.peer === follower && Number(e.resumedFrom) > 0);
    expect(resumed.length, JSON.stringify(sent)).toBeGreaterThan(0);
    expect(Number(resumed[0]?.resumedFrom)).toBeGreaterThanOrEqual(256 * 1024);
    expect(Number(resumed[0]?.resumedFrom)).toBeLessThanOrEqual(staged + 2 * 256 * 1024);
  });

  it('a restarted node loads its latest snapshot and replays only the entries after it', { timeout: 180_000 }, async () => {
    cluster = await ProcessCluster.start(3, SNAPSHOT_FLAGS);
    const c = cluster;
    const leader = await c.waitForLeader();
    const written = await writeMany(c, leader, 200);
    const [before] = await c.waitForConvergence(written, c.ids, WAIT_MS);
    const [follower] = c.ids.filter((id) => id !== leader) as [string];

    // Fault: a SIGTERM and a restart. Expected: the state comes from the snapshot, the digest is unchanged.
    await c.stop(follower);
    c.startNode(follower);
    const [after] = await c.waitForConvergence(written, [follower], WAIT_MS);
    expect(after?.digest).toBe(before?.digest);
    const restored = await events(c, follower, 'snapshot-restored');
    expect(restored.length).toBeGreaterThan(0);
    const started = (await events(c, follower, 'started')).at(-1);
    expect(Number(started?.appliedIndex)).toBeGreaterThan(0);
    expect(Number(started?.firstIndex)).toBeGreaterThan(1);
  });
});
