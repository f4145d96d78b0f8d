/**
 * Planned leadership moves with real `raftlog node` processes: the
 * TransferLeadership RPC (through any node), its refusals, and a graceful
 * stop (SIGTERM) of the leader, which hands leadership over before it goes
 * while a writer keeps writing. Waits are conditions polled with generous
 * deadlines; nothing here is timed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftLogClient, type RaftLogError, RaftLogFailedPreconditionError, RaftLogInvalidArgumentError } from '../../src/client/index.js';
import { ClusterGrpcClient } from '../../src/node/cluster-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { rejection } from '../support/rejection.js';
import { waitFor } from '../support/wait-for.js';

const WAIT_MS = 60_000;

let cluster: ProcessCluster | null = null;
let clients: RaftLogClient[] = [];

afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await cluster?.destroy();
  cluster = null;
});

async function startCluster(size: number, extraArgs: readonly string[] = []): Promise<ProcessCluster> {
  cluster = await ProcessCluster.start(size, extraArgs);
  return cluster;
}

/** A client that talks to the given nodes only. */
function clientOf(c: ProcessCluster, ids: readonly string[], deadlineMs = 20_000): RaftLogClient {
  const made = new RaftLogClient({ endpoints: ids.map((id) => `${id}=${c.address(id)}`), deadlineMs });
  clients.push(made);
  return made;
}

/** Every running node reports `leader` as the leader of one term, and `leader` says it leads. */
async function everyNodeFollows(c: ProcessCluster, leader: string): Promise<number> {
  return waitFor(
    `every running node following ${leader}`,
    async () => {
      const statuses = await Promise.all([...c.processes.keys()].map((id) => c.status(id)));
      const terms = new Set(statuses.map((s) => s.term));
      const agree = statuses.every((s) => s.leader === leader && (s.node === leader) === (s.role === 'leader'));
      return agree && terms.size === 1 ? statuses[0]?.term : undefined;
    },
    { timeoutMs: WAIT_MS, intervalMs: 50 },
  );
}

describe('TransferLeadership', () => {
  it('moves leadership to the chosen node, asked through a follower; Status on every node agrees', async () => {
    const c = await startCluster(3);
    const leader = await c.waitForLeader();
    const [target, other] = c.ids.filter((id) => id !== leader) as [string, string];
    const termBefore = (await c.status(leader)).term;

    // Asked through the node that is neither leader nor target: it forwards the call to the leader.
    const moved = await clientOf(c, [other]).transferLeadership({ to: target });

    expect(moved).toMatchObject({ leader: target, previousLeader: leader });
    expect(moved.term).toBeGreaterThan(termBefore);
    expect(await everyNodeFollows(c, target)).toBe(moved.term);

    // Without a target the leader picks a voter itself (the one with the longest log): leadership moves off it.
    const again = await clientOf(c, c.ids).transferLeadership();
    expect(again.previousLeader).toBe(target);
    expect(again.leader).not.toBe(target);
    expect(await everyNodeFollows(c, again.leader)).toBe(again.term);
  });

  it('answers a target that already leads at once, with nothing changed', async () => {
    const c = await startCluster(3);
    const leader = await c.waitForLeader();
    const { term } = await c.status(leader);

    const moved = await clientOf(c, c.ids).transferLeadership({ to: leader });

    expect(moved).toMatchObject({ leader, previousLeader: leader, term });
    expect(await everyNodeFollows(c, leader)).toBe(term);
  });

  it('refuses a learner, an unknown node and a malformed id with clear errors, and leadership stays', async () => {
    const c = await startCluster(3);
    const leader = await c.waitForLeader();
    const { term } = await c.status(leader);
    const admin = clientOf(c, c.ids);
    const address = await c.startJoining('n4', c.ids);
    await admin.memberAdd('n4', address, { learner: true });

    const learner = await rejection(admin.transferLeadership({ to: 'n4' }));
    expect(learner).toBeInstanceOf(RaftLogFailedPreconditionError);
    expect((learner as RaftLogError).codeName).toBe('FAILED_PRECONDITION');
    expect((learner as Error).message).toContain('n4 is a learner: only a voter can lead');

    const unknown = await rejection(admin.transferLeadership({ to: 'n9' }));
    expect(unknown).toBeInstanceOf(RaftLogFailedPreconditionError);
    expect((unknown as Error).message).toContain('n9 is not a member of the cluster (voters n1, n2, n3; learners n4)');

    // The client refuses a malformed id before sending; the node does too (a client of another language).
    expect(await rejection(admin.transferLeadership({ to: 'not an id' }))).toBeInstanceOf(RaftLogInvalidArgumentError);
    const raw = await rawTransfer(c.address(leader), 'not an id');
    expect(raw.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(raw.details).toContain('is not a node id');

    expect(await everyNodeFollows(c, leader)).toBe(term);
  });
});

describe('writes forwarded by a follower while leadership moves', () => {
  it('are all answered: the old leader refuses them once it has handed over, and the follower forwards them to the new one', async () => {
    const c = await startCluster(3);
    const first = await c.waitForLeader();
    const [second, forwarder] = c.ids.filter((id) => id !== first) as [string, string];
    const admin = clientOf(c, [first, second]);
    // Single attempts through the follower, no client library: any refusal it relays would show here.
    const outcomes = { ok: 0, errors: [] as string[] };
    let stopped = false;
    const writer = async (w: number) => {
      for (let i = 0; !stopped; i++) {
        try {
          await c.call(forwarder, 'put', { key: Buffer.from(`w${w}-${i}`), value: Buffer.from('v') }, 20_000);
          outcomes.ok++;
        } catch (error) {
          outcomes.errors.push((error as Error).message);
        }
      }
    };
    const writing = Promise.all([0, 1, 2, 3].map(writer));
    const moves: string[] = [];
    try {
      // Back and forth between the two others, never to the forwarder: each move leaves writes held on the old leader.
      for (const to of [second, first, second, first]) {
        const okBefore = outcomes.ok;
        await waitFor('writes acknowledged before the move', () => outcomes.ok >= okBefore + 10, WAIT_MS);
        const moved = await admin.transferLeadership({ to });
        moves.push(moved.leader);
      }
      const okAfter = outcomes.ok;
      await waitFor('writes acknowledged after the last move', () => outcomes.ok >= okAfter + 10, WAIT_MS);
    } finally {
      stopped = true;
      await writing;
    }

    expect(moves).toEqual([second, first, second, first]);
    expect(outcomes.errors).toEqual([]);
    const log = await readFile(join(c.dir, `${forwarder}.log`), 'utf8');
    const heldAfterRefusal = log.split('\n').filter((line) => line.includes('"event":"request-held"') && line.includes('is not the leader'));
    process.stdout.write(
      `${forwarder} held ${heldAfterRefusal.length} forwarded writes its old leader refused; ${outcomes.ok} writes acknowledged\n`,
    );
  });
});

describe('graceful stop of the leader', () => {
  it('hands leadership over before the node exits: another node leads and a concurrent writer sees no error', async () => {
    const c = await startCluster(3);
    const leader = await c.waitForLeader();
    const others = c.ids.filter((id) => id !== leader);
    // A plain client (no exactly-once retries): a write that the stop left with an unknown outcome would be an error.
    const client = clientOf(c, c.ids);
    const outcomes = { ok: 0, errors: [] as string[], acknowledged: [] as string[] };
    let stopped = false;
    const writing = (async () => {
      for (let i = 0; !stopped; i++) {
        try {
          await client.put(`k${i}`, `v${i}`);
          outcomes.ok++;
          outcomes.acknowledged.push(`k${i}`);
        } catch (error) {
          outcomes.errors.push((error as Error).message);
        }
      }
    })();
    let successor: string;
    try {
      await waitFor('some writes acknowledged before the stop', () => outcomes.ok >= 20, WAIT_MS);

      await c.stop(leader, 30_000);
      const okAtStop = outcomes.ok;
      successor = await c.waitForLeader(others, WAIT_MS);
      await waitFor('writes acknowledged after the stop', () => outcomes.ok >= okAtStop + 20, WAIT_MS);
    } finally {
      // Also when a wait above failed: the writer must not outlive the test.
      stopped = true;
      await writing;
    }

    expect(others).toContain(successor);
    const log = await readFile(join(c.dir, `${leader}.log`), 'utf8');
    const handedOver = log.split('\n').filter((line) => line.includes('"event":"leadership-transferred"'));
    expect(handedOver.length, `${leader} logged no completed handover:\n${log.slice(-3000)}`).toBeGreaterThan(0);
    expect(outcomes.errors).toEqual([]);
    // Every acknowledged write survived the move.
    const reader = clientOf(c, others);
    for (const key of outcomes.acknowledged) {
      const read = await reader.get(key);
      expect(read.value === null ? null : Buffer.from(read.value).toString(), key).toBe(key.replace('k', 'v'));
    }
  });
});

/** TransferLeadership by hand, as a client in another language would call it. */
function rawTransfer(address: string, to: string): Promise<grpc.ServiceError | { code: grpc.status.OK; details: string }> {
  const client = new ClusterGrpcClient(address, grpc.credentials.createInsecure());
  type Unary = (request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null) => void) => void;
  const call = (client as unknown as { transferLeadership: Unary }).transferLeadership;
  return new Promise((resolve) => {
    call.call(client, { to }, { deadline: Date.now() + 10_000 }, (error) => {
      client.close();
      resolve(error ?? { code: grpc.status.OK, details: '' });
    });
  });
}
