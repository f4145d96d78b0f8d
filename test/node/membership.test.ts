/**
 * Membership changes with real `raftlog node` processes: nodes join a running
 * cluster with --join, are added as learners, catch up and are promoted; the
 * leader and others are removed; writes go on throughout and none that was
 * acknowledged is lost. Waits are conditions polled with generous deadlines.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftLogClient, RaftLogFailedPreconditionError, RaftLogInvalidArgumentError } from '../../src/client/index.js';
import type { WriteReply } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';

const WAIT_MS = 60_000;
const CALL_MS = 10_000;

let cluster: ProcessCluster | null = null;
let clients: RaftLogClient[] = [];

afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await cluster?.destroy();
  cluster = null;
});

function clientOf(c: ProcessCluster, ids: readonly string[]): RaftLogClient {
  const made = new RaftLogClient({ endpoints: ids.map((id) => `${id}=${c.address(id)}`), deadlineMs: 20_000 });
  clients.push(made);
  return made;
}

/** Puts k<i> = v<i> one after another until stopped; every acknowledged key is remembered. */
function writer(c: ProcessCluster, ids: () => readonly string[]) {
  const acknowledged = new Map<string, string>();
  let stopped = false;
  let i = 0;
  const done = (async () => {
    while (!stopped) {
      const key = `k${i}`;
      const value = `v${i++}`;
      const live = ids().filter((id) => c.isRunning(id));
      const via = live[i % live.length] as string;
      try {
        await c.call<WriteReply>(via, 'put', { key: Buffer.from(key), value: Buffer.from(value) }, 3_000);
        acknowledged.set(key, value);
      } catch {
        // Refused or unknown outcome: not acknowledged, so not checked.
      }
    }
  })();
  return {
    acknowledged,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/** Adds `id` as a learner (started with --join), waits until it catches up, then promotes it. */
async function grow(c: ProcessCluster, admin: RaftLogClient, id: string, joinVia: readonly string[]): Promise<void> {
  const address = await c.startJoining(id, joinVia);
  const added = await admin.memberAdd(id, address, { learner: true });
  expect(added.members.find((m) => m.id === id)?.role).toBe('learner');
  await waitFor(
    `${id} promoted once caught up`,
    async () => {
      try {
        const promoted = await admin.memberPromote(id);
        return promoted.members.find((m) => m.id === id)?.role === 'voter' ? true : undefined;
      } catch (error) {
        if (error instanceof RaftLogFailedPreconditionError) return undefined;
        throw error;
      }
    },
    { timeoutMs: WAIT_MS, intervalMs: 200 },
  );
}

describe('membership changes with real processes', () => {
  it('a client made with the founding node only follows the membership: once that node is replaced, its writes and its subscription carry on at the new one', {
    timeout: 180_000,
  }, async () => {
    cluster = await ProcessCluster.start(1);
    const c = cluster;
    await c.waitForLeader();
    const admin = clientOf(c, ['n1']);
    // Made with n1's address alone, as an application configured before n2 existed would be.
    const user = new RaftLogClient({ endpoints: [c.address('n1')], deadlineMs: CALL_MS, membershipRefreshMs: 500 });
    clients.push(user);
    const subscription = user.subscribe({ from: 1 });
    const before = await user.append(Buffer.from('before'));
    expect(before.endpoint).toBe(c.address('n1'));

    await grow(c, admin, 'n2', ['n1']);
    await waitFor('the client learned n2', async () => (user.knownEndpoints.includes(c.address('n2')) ? true : undefined), { timeoutMs: WAIT_MS });
    // n1 is the leader: removed, it hands over to n2 and exits.
    await admin.memberRemove('n1');
    await waitFor('n1 exits once removed', async () => (c.isRunning('n1') ? undefined : true), { timeoutMs: WAIT_MS });

    const after = await user.append(Buffer.from('after'));
    expect(after.endpoint).toBe(c.address('n2'));
    const seen: { index: number; record: string | null }[] = [];
    // A subscription that stalls is closed after the deadline, which ends the loop below.
    const stall = setTimeout(() => void subscription.close(), WAIT_MS);
    try {
      for await (const entry of subscription) {
        seen.push({ index: entry.index, record: entry.record === null ? null : Buffer.from(entry.record).toString() });
        if (entry.index >= after.index) break;
      }
    } finally {
      clearTimeout(stall);
    }
    // Every index from 1, once, in order: nothing lost or repeated across the move from n1 to n2.
    expect(seen.map((entry) => entry.index)).toEqual(Array.from({ length: after.index }, (_, i) => i + 1));
    expect(seen.filter((entry) => entry.record !== null).map((entry) => entry.record)).toEqual(['before', 'after']);
  });

  it('grows 3 → 5 while writing, removes the leader and shrinks back to 3; no acknowledged write is lost', { timeout: 300_000 }, async () => {
    cluster = await ProcessCluster.start(3, ['--snapshot-entries', '200', '--retain-entries', '50']);
    const c = cluster;
    await c.waitForLeader();
    let members = ['n1', 'n2', 'n3'];
    const admin = clientOf(c, members);
    const load = writer(c, () => members);

    // Grow: n4 and n5 join with empty data dirs, catch up as learners (through a snapshot: the log was compacted) and are promoted.
    await waitFor('some writes first', async () => (load.acknowledged.size >= 300 ? true : undefined), { timeoutMs: WAIT_MS });
    await grow(c, admin, 'n4', members);
    members = [...members, 'n4'];
    await grow(c, admin, 'n5', members);
    members = [...members, 'n5'];
    const five = await admin.memberList();
    expect(
      five.members
        .filter((m) => m.role === 'voter')
        .map((m) => m.id)
        .sort(),
    ).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);

    // Shrink: remove the leader (it hands over and exits), then one more.
    const leader = await c.waitForLeader(members);
    await admin.memberRemove(leader);
    members = members.filter((id) => id !== leader);
    await waitFor(`${leader} exits once removed`, async () => (c.isRunning(leader) ? undefined : true), { timeoutMs: WAIT_MS });
    const next = await c.waitForLeader(members);
    expect(next).not.toBe(leader);
    const victim = members.find((id) => id !== next) as string;
    await admin.memberRemove(victim);
    members = members.filter((id) => id !== victim);
    await waitFor(`${victim} exits once removed`, async () => (c.isRunning(victim) ? undefined : true), { timeoutMs: WAIT_MS });

    // A removed id never becomes a member again: adding it back (as an operator might, with a wiped data dir) is refused.
    const readd = admin.memberAdd(victim, c.address(victim), { learner: true });
    await expect(readd).rejects.toBeInstanceOf(RaftLogInvalidArgumentError);
    await expect(readd).rejects.toThrow(new RegExp(`${victim} was removed from this cluster, and a removed id never becomes a member again`));

    const writtenMore = load.acknowledged.size;
    await waitFor('writes go on with 3 voters', async () => (load.acknowledged.size > writtenMore + 50 ? true : undefined), {
      timeoutMs: WAIT_MS,
    });
    await load.stop();
    const three = await admin.memberList();
    expect(three.members.map((m) => m.id).sort()).toEqual([...members].sort());
    expect(three.members.every((m) => m.role === 'voter')).toBe(true);

    // Expected: the remaining voters agree, and every acknowledged write reads back.
    const statuses = await c.waitForConvergence(1, members, WAIT_MS);
    expect(new Set(statuses.map((s) => s.digest)).size).toBe(1);
    const reader = clientOf(c, members);
    for (const [key, value] of load.acknowledged) {
      const read = await reader.get(key);
      expect(read.value === null ? null : Buffer.from(read.value).toString(), key).toBe(value);
    }
  });

  it('replaces a node whose disk died: n3 killed and wiped, removed, n4 added; after a whole-cluster restart the joined node rejoins from its data', {
    timeout: 300_000,
  }, async () => {
    cluster = await ProcessCluster.start(3, ['--snapshot-entries', '200', '--retain-entries', '50']);
    const c = cluster;
    await c.waitForLeader();
    let members = ['n1', 'n2', 'n3'];
    const admin = clientOf(c, ['n1', 'n2']);
    const load = writer(c, () => members);
    await waitFor('some writes first', async () => (load.acknowledged.size >= 200 ? true : undefined), { timeoutMs: WAIT_MS });

    // The fault: n3's disk dies. Its process is gone and so is everything it held.
    await c.kill('n3');
    await rm(join(c.dir, 'n3'), { recursive: true, force: true });
    members = ['n1', 'n2'];
    const removed = await admin.memberRemove('n3');
    expect(removed.members.map((m) => m.id).sort()).toEqual(['n1', 'n2']);

    // The replacement joins with an empty data dir, catches up (by snapshot: the log was compacted) and votes.
    await grow(c, admin, 'n4', members);
    members = ['n1', 'n2', 'n4'];
    const written = load.acknowledged.size;
    await waitFor('writes go on with n4 voting', async () => (load.acknowledged.size > written + 50 ? true : undefined), { timeoutMs: WAIT_MS });
    await load.stop();
    const before = await c.waitForConvergence(1, members, WAIT_MS);
    expect(new Set(before.map((s) => s.digest)).size).toBe(1);

    // A whole-cluster restart: every process stops, then all start at once. n4 was started with --join; its
    // data dir knows its cluster, so it must not wait on the join endpoints (which are restarting too).
    for (const id of members) await c.stop(id);
    for (const id of members) c.startNode(id);
    await c.waitForLeader(members, WAIT_MS);
    const after = await c.waitForConvergence(before[0]?.appliedIndex ?? 1, members, WAIT_MS);
    expect(new Set(after.map((s) => s.digest)).size).toBe(1);
    const n4Log = await readFile(join(c.dir, 'n4.log'), 'utf8');
    expect(n4Log).toContain('"event":"join-skipped"');
    // n1 restarted with the founding --peers (n1, n2, n3): the data dir's configuration wins, and the node says so.
    const n1Log = await readFile(join(c.dir, 'n1.log'), 'utf8');
    const warning = n1Log.split('\n').find((line) => line.includes('"event":"peers-ignored"'));
    expect(warning).toBeDefined();
    expect(warning).toContain('it lacks n4');
    expect(warning).toContain('it lists n3, which is not a member');

    // Expected: no acknowledged write lost, reading through the replacement.
    const reader = clientOf(c, ['n4']);
    for (const [key, value] of load.acknowledged) {
      const read = await reader.get(key);
      expect(read.value === null ? null : Buffer.from(read.value).toString(), key).toBe(value);
    }
  });

  it('a node added after the leader compacted its whole log installs a snapshot taken before its addition, and stays a member', {
    timeout: 240_000,
  }, async () => {
    cluster = await ProcessCluster.start(3, ['--snapshot-entries', '20', '--retain-entries', '0']);
    const c = cluster;
    await c.waitForLeader();
    const admin = clientOf(c, ['n1', 'n2', 'n3']);
    for (let i = 0; i < 60; i++) await admin.put(`k${i}`, `v${i}`);
    // The snapshot n4 gets holds a configuration without n4: not a removal.
    await grow(c, admin, 'n4', ['n1', 'n2', 'n3']);
    const written = await admin.put('after', 'n4 joined');
    const statuses = await c.waitForConvergence(written.index, ['n1', 'n2', 'n3', 'n4'], WAIT_MS);
    expect(new Set(statuses.map((s) => s.digest)).size).toBe(1);
    expect(c.isRunning('n4')).toBe(true);
    expect(await readFile(join(c.dir, 'n4.log'), 'utf8')).toContain('"event":"snapshot-installed"');
  });

  it('a follower down through the addition of a node that then leads catches up from that leader, which its configuration does not list', {
    timeout: 240_000,
  }, async () => {
    // Found by jepsen-lite (append, seed 101): the lagging node took the new leader's messages but had no
    // address to answer them at, so the leader never learned it needed a snapshot.
    cluster = await ProcessCluster.start(3, ['--snapshot-entries', '20', '--retain-entries', '0']);
    const c = cluster;
    const leader = await c.waitForLeader();
    const lagging = ['n1', 'n2', 'n3'].find((id) => id !== leader) as string;
    const others = ['n1', 'n2', 'n3'].filter((id) => id !== lagging);
    const admin = clientOf(c, others);
    await admin.put('before', 'the freeze');
    // The fault: down (killed, so no message sent meanwhile waits in its socket) while n4 is added and takes
    // over, and while the log it would need is compacted. It restarts from its data, with the founding --peers.
    await c.kill(lagging);
    await grow(c, admin, 'n4', others);
    await admin.transferLeadership({ to: 'n4' });
    let last = 0;
    for (let i = 0; i < 60; i++) last = (await admin.put(`k${i}`, `v${i}`)).index;
    c.startNode(lagging);
    // Expected: it catches up (a snapshot from n4, then the entries) and agrees with everyone.
    const statuses = await c.waitForConvergence(last, ['n1', 'n2', 'n3', 'n4'], WAIT_MS);
    expect(new Set(statuses.map((s) => s.digest)).size).toBe(1);
    expect(await readFile(join(c.dir, `${lagging}.log`), 'utf8')).toContain('"event":"snapshot-installed"');
  });

  it('a follower removed while it was frozen learns it from its peers once it runs again, and exits', { timeout: 240_000 }, async () => {
    cluster = await ProcessCluster.start(4);
    const c = cluster;
    const leader = await c.waitForLeader();
    const admin = clientOf(
      c,
      ['n1', 'n2', 'n3', 'n4'].filter((id) => id !== leader),
    );
    const victim = ['n1', 'n2', 'n3', 'n4'].find((id) => id !== leader) as string;
    // The fault: the victim is frozen (SIGSTOP) through its whole removal; the leader stops talking to it.
    expect(c.pause(victim)).toBe(true);
    await admin.memberRemove(victim);
    await admin.put('after', 'the removal');
    c.resume(victim);
    // Expected: it hears no leader, asks its peers for votes, is refused as a non-member, and exits.
    await waitFor(`${victim} exits`, async () => (c.isRunning(victim) ? undefined : true), { timeoutMs: WAIT_MS });
    const log = await readFile(join(c.dir, `${victim}.log`), 'utf8');
    expect(log).toMatch(/"event":"removed".*"how":"told by n\d"/);
  });
});
