/**
 * Faults against a 3-node cluster of real `raftlog node` processes: nodes
 * SIGKILLed and restarted from their data directories, a majority down,
 * clients with short deadlines. Each test reads as scenario → fault →
 * expected outcome. Waits are conditions polled with waitFor (generous
 * timeouts: the box may be a loaded 2-core machine), never fixed sleeps.
 */
import { setTimeout as pause } from 'node:timers/promises';
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  RaftLogClient,
  type RaftLogClientOptions,
  RaftLogDeadlineExceededError,
  RaftLogError,
  RaftLogIndeterminateError,
  RaftLogUnavailableError,
} from '../../src/client/index.js';
import type { GetReply, StatusReply, WriteReply } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';

const WAIT_MS = 30_000;
/** Per-RPC timeout for calls that are expected to succeed. */
const CALL_MS = 10_000;
/** "Never hangs": a call with a 500 ms deadline must be back well within this. */
const PROMPT_MS = 5_000;

const b = (s: string) => Buffer.from(s);
const text = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes).toString());
const linearizable = (key: string) => ({ key: b(key), consistency: 'READ_CONSISTENCY_LINEARIZABLE' });

let cluster: ProcessCluster | null = null;
let clients: RaftLogClient[] = [];

afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await cluster?.destroy();
  cluster = null;
});

function client(options: RaftLogClientOptions): RaftLogClient {
  const made = new RaftLogClient(options);
  clients.push(made);
  return made;
}

/** "id=host:port" for every node: a client that knows where the leader listens goes to it directly. */
const namedEndpoints = (c: ProcessCluster, ids: readonly string[] = c.ids) => ids.map((id) => `${id}=${c.address(id)}`);

/** The error a call failed with; fails the test if the call succeeded. */
async function failure<E = ServiceError>(call: Promise<unknown>): Promise<E> {
  try {
    await call;
  } catch (error) {
    return error as E;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** Times a call that must fail, and returns its error and how long it took. */
async function timedFailure<E = ServiceError>(call: () => Promise<unknown>): Promise<{ error: E; ms: number }> {
  const started = Date.now();
  const error = await failure<E>(call());
  return { error, ms: Date.now() - started };
}

describe('a 3-node cluster of real processes, under faults', () => {
  it('one of three down (a follower, then the leader): writes commit through the leader and through the surviving follower', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const [follower, other] = c.ids.filter((id) => id !== leader) as [string, string];

    // Fault: a follower is SIGKILLed. Expected: the other two still commit, whichever of them the client calls.
    await c.kill(follower);
    const viaLeader = await c.call<WriteReply>(leader, 'put', { key: b('a'), value: b('via-leader') }, CALL_MS);
    expect(viaLeader.leader).toBe(leader);
    const viaFollower = await c.call<WriteReply>(other, 'put', { key: b('b'), value: b('via-follower') }, CALL_MS);
    expect(viaFollower.leader).toBe(leader);
    expect(viaFollower.position.index).toBeGreaterThan(viaLeader.position.index);
    const read = await c.call<GetReply>(other, 'get', linearizable('a'), CALL_MS);
    expect(text(read.value)).toBe('via-leader');

    // The follower comes back and catches up; then the leader is SIGKILLed.
    c.startNode(follower);
    await c.waitForConvergence(viaFollower.position.index, c.ids, WAIT_MS);
    await c.kill(leader);
    const survivors = [follower, other];
    const next = await c.waitForLeader(survivors);
    expect(next).not.toBe(leader);
    const nextFollower = survivors.find((id) => id !== next) as string;

    // Expected: the new leader and its follower both take writes, and earlier writes are still there.
    const viaNewLeader = await waitFor(
      'a write through the new leader',
      () => c.call<WriteReply>(next, 'put', { key: b('c'), value: b('via-new-leader') }, CALL_MS),
      { timeoutMs: WAIT_MS, intervalMs: 100 },
    );
    expect(viaNewLeader.leader).toBe(next);
    const viaNewFollower = await c.call<WriteReply>(nextFollower, 'put', { key: b('d'), value: b('via-new-follower') }, CALL_MS);
    expect(viaNewFollower.leader).toBe(next);
    expect(viaNewFollower.position.index).toBeGreaterThan(viaNewLeader.position.index);
    for (const [key, value] of [
      ['a', 'via-leader'],
      ['b', 'via-follower'],
      ['c', 'via-new-leader'],
      ['d', 'via-new-follower'],
    ]) {
      expect(text((await c.call<GetReply>(nextFollower, 'get', linearizable(key as string), CALL_MS)).value)).toBe(value);
    }

    // The old leader restarts from its data directory and converges with the others.
    c.startNode(leader);
    await c.waitForConvergence(viaNewFollower.position.index, c.ids, WAIT_MS);
  });

  it('a node SIGKILLed during a write load loses no acknowledged write (a follower, then the leader)', { timeout: 300_000 }, async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    await c.waitForLeader();

    // Scenario: 8 concurrent writers through the client library. Writers 0–3
    // know every node's id and so go to the leader directly; writers 4–7 know
    // addresses only and stay on whichever node answered (so a follower
    // forwards for them), each starting at a different node. Writer 7 appends
    // records; the others put keys that are unique per write, so the check
    // "every acknowledged put is readable with its value" is exact.
    const load = new WriteLoad();
    const writers = Array.from({ length: 8 }, (_, n) => {
      const rotated = [...c.ids.slice(n % 3), ...c.ids.slice(0, n % 3)];
      const writer =
        n < 4
          ? client({ endpoints: namedEndpoints(c, rotated), deadlineMs: 3_000 })
          : client({ endpoints: rotated.map((id) => c.address(id)), deadlineMs: 3_000, discoverLeader: false });
      return load.run(n, writer, n === 7 ? 'append' : 'put');
    });
    const moreAcks = async (count: number, what: string) => {
      const target = load.acked.length + count;
      await waitFor(`${count} more acknowledged writes ${what}`, () => load.acked.length >= target || load.crashed, {
        timeoutMs: WAIT_MS,
        intervalMs: 20,
      });
      if (load.crashed) throw new Error(`a writer failed unexpectedly: ${load.unexpected.map(String).join('; ')}`);
    };

    try {
      await moreAcks(200, 'with all three up');

      // Fault 1: a follower is SIGKILLed mid-load, and later restarted.
      const leader = await c.waitForLeader();
      const follower = c.ids.find((id) => id !== leader) as string;
      await c.kill(follower);
      load.mark(`SIGKILL follower ${follower}`);
      await moreAcks(200, `with follower ${follower} down`);
      c.startNode(follower);
      load.mark(`restart ${follower}`);
      const caughtUpTo = load.maxAckedIndex();
      await waitFor(
        `${follower} following again and applied up to ${caughtUpTo}`,
        async () => {
          const status = await c.status(follower);
          return status.leader !== '' && status.appliedIndex >= caughtUpTo;
        },
        { timeoutMs: WAIT_MS, intervalMs: 100 },
      );
      await moreAcks(150, `after ${follower} rejoined`);

      // Fault 2: the leader is SIGKILLed mid-load, and later restarted.
      const current = await c.waitForLeader();
      await c.kill(current);
      load.mark(`SIGKILL leader ${current}`);
      await moreAcks(200, `with leader ${current} down`);
      c.startNode(current);
      load.mark(`restart ${current}`);
      await moreAcks(150, `after ${current} rejoined`);
    } finally {
      load.stop();
      await Promise.all(writers);
    }

    // Expected, with all three up: one applied index and one digest everywhere, covering every acknowledged write…
    const statuses = await c.waitForConvergence(load.maxAckedIndex(), c.ids, WAIT_MS);
    const puts = load.acked.filter((w) => w.op === 'put');
    const appends = load.acked.filter((w) => w.op === 'append');
    const summary = {
      acknowledged: load.acked.length,
      acknowledgedPuts: puts.length,
      acknowledgedAppends: appends.length,
      indeterminate: load.indeterminate.length,
      unavailable: load.unavailable.length,
      unexpected: load.unexpected.length,
      appliedIndex: (statuses[0] as StatusReply).appliedIndex,
      timeline: load.timeline,
    };
    console.log(`write load under SIGKILL: ${JSON.stringify(summary)}`);
    expect(load.unexpected).toEqual([]);

    // …no two acknowledged writes at one log index…
    const byIndex = new Map<number, AckedWrite>();
    for (const write of load.acked) {
      const clash = byIndex.get(write.index);
      expect(clash, `index ${write.index} acknowledged for both ${clash?.key} and ${write.key}`).toBeUndefined();
      byIndex.set(write.index, write);
      expect(write.term).toBeGreaterThan(0);
      expect(write.leader).not.toBeNull();
    }

    // …every acknowledged put readable with its value through a linearizable Get on every node…
    for (const id of c.ids) {
      const missing = await readBack(c, id, puts, (w, reply) => !reply.found || text(reply.value) !== w.value);
      expect(
        missing.map((w) => `${w.key}@${w.index}`),
        `acknowledged puts missing or wrong on ${id}`,
      ).toEqual([]);
    }

    // …and no put that failed UNAVAILABLE (the client's "certainly not committed") present anywhere.
    const leaked = await readBack(c, c.ids[0] as string, load.unavailable, (_w, reply) => reply.found);
    expect(
      leaked.map((w) => w.key),
      'puts that failed UNAVAILABLE but took effect',
    ).toEqual([]);
  });

  it('client deadlines are honoured with two of three down: calls fail promptly, nothing is acknowledged, and writes resume once a node is back', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const [down1, down2] = c.ids.filter((id) => id !== leader) as [string, string];
    await c.kill(down1);
    await c.kill(down2);
    const lost = [grpcStatus.DEADLINE_EXCEEDED, grpcStatus.UNAVAILABLE];

    // Raw gRPC with a 500 ms deadline: a Put and a linearizable Get fail with DEADLINE_EXCEEDED or UNAVAILABLE, and return.
    const put = await timedFailure(() => c.call(leader, 'put', { key: b('raw-put'), value: b('v') }, 500));
    expect(lost, `raw Put: ${put.error.code} ${put.error.details}`).toContain(put.error.code);
    expect(put.ms).toBeLessThan(PROMPT_MS);
    const get = await timedFailure(() => c.call(leader, 'get', linearizable('raw-put'), 500));
    expect(lost, `raw Get: ${get.error.code} ${get.error.details}`).toContain(get.error.code);
    expect(get.ms).toBeLessThan(PROMPT_MS);

    // The client library with a 500 ms deadline gives up too, with its documented errors:
    // a write is unavailable (certainly not committed) or indeterminate (sent, outcome unknown);
    // a read is unavailable or past its deadline.
    const lib = client({ endpoints: namedEndpoints(c), deadlineMs: 500 });
    const libPut = await timedFailure<RaftLogError>(() => lib.put('lib-put', 'v'));
    expect([RaftLogUnavailableError.name, RaftLogIndeterminateError.name], libPut.error.message).toContain(libPut.error.name);
    expect(['UNAVAILABLE', 'DEADLINE_EXCEEDED']).toContain(libPut.error.codeName);
    expect(libPut.ms).toBeLessThan(PROMPT_MS);
    const libGet = await timedFailure<RaftLogError>(() => lib.get('lib-put'));
    expect([RaftLogUnavailableError.name, RaftLogDeadlineExceededError.name], libGet.error.message).toContain(libGet.error.name);
    expect(libGet.ms).toBeLessThan(PROMPT_MS);
    const perCall = await timedFailure<RaftLogError>(() =>
      client({ endpoints: namedEndpoints(c) }).put('per-call-deadline', 'v', { deadlineMs: 500 }),
    );
    expect(perCall.error).toBeInstanceOf(RaftLogError);
    expect(perCall.ms).toBeLessThan(PROMPT_MS);

    // A node comes back: a majority again, and writes through the same client succeed.
    c.startNode(down1);
    const written = await waitFor('a write once a majority is back', () => lib.put('after-recovery', 'ok', { deadlineMs: 2_000 }), {
      timeoutMs: WAIT_MS,
      intervalMs: 100,
    });
    expect([leader, down1]).toContain(written.leader);
    expect(text((await lib.get('after-recovery', { deadlineMs: CALL_MS })).value)).toBe('ok');
  });

  it('with no leader known (two of three down, the survivor has stepped down), every write and linearizable read is UNAVAILABLE with a message', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    await c.call<WriteReply>(leader, 'put', { key: b('k'), value: b('before') }, CALL_MS);
    for (const id of c.ids.filter((id) => id !== leader)) await c.kill(id);
    // CheckQuorum: a leader that no longer hears from a majority steps down and knows no leader.
    await waitFor(`${leader} to know no leader`, async () => (await c.status(leader)).leader === '', {
      timeoutMs: WAIT_MS,
      intervalMs: 100,
    });

    const calls: [string, object][] = [
      ['put', { key: b('k'), value: b('v') }],
      ['delete', { key: b('k') }],
      ['compareAndSwap', { key: b('k'), expected: b('before'), value: b('v') }],
      ['append', { record: b('r') }],
      ['get', linearizable('k')],
    ];
    for (const [method, request] of calls) {
      const error = await failure(c.call(leader, method, request, CALL_MS));
      expect(error.code, `${method}: ${error.details}`).toBe(grpcStatus.UNAVAILABLE);
      expect(error.details).toMatch(/no leader is known to node \w+ in term \d+/);
    }
    // What the node has applied stays readable locally, and Status answers.
    const local = await c.call<GetReply>(leader, 'get', { key: b('k'), consistency: 'READ_CONSISTENCY_LOCAL' }, CALL_MS);
    expect(text(local.value)).toBe('before');
    expect((await c.status(leader)).role).not.toBe('leader');
  });

  it('a leader stopped gracefully with writes in flight answers UNKNOWN (it may still commit), never UNAVAILABLE (safe to retry)', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const [f1, f2] = c.ids.filter((id) => id !== leader) as [string, string];
    // One follower paused rather than killed: the leader keeps leading (CheckQuorum needs time) but cannot commit.
    await c.kill(f1);
    expect(c.pause(f2)).toBe(true);
    const pending = failure(c.call(leader, 'put', { key: b('in-flight'), value: b('v') }, 20_000));
    await waitFor(`${leader} to have the write in its log`, async () => {
      const s = await c.status(leader);
      return s.lastLogIndex > s.commitIndex;
    });
    await c.stop(leader);
    const error = await pending;
    expect(error.code, error.details).toBe(grpcStatus.UNKNOWN);
    expect(error.details).toMatch(/may or may not take effect/);

    // And indeed it may: the entry is in the old leader's log and can win once the cluster is back.
    c.resume(f2);
    c.startNode(f1);
    c.startNode(leader);
    const next = await c.waitForLeader(c.ids, WAIT_MS);
    await waitFor('a write after recovery', () => c.call<WriteReply>(next, 'put', { key: b('after'), value: b('x') }, CALL_MS), {
      timeoutMs: WAIT_MS,
      intervalMs: 100,
    });
  });

  it('a client that knows only a follower gets its writes committed, and every reply names the leader', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const lib = client({ endpoints: [c.address(follower)], deadlineMs: CALL_MS });

    const put = await lib.put('fwd', 'one');
    expect(put.leader).toBe(leader);
    expect(put.endpoint).toBe(c.address(follower));
    const swapped = await lib.compareAndSwap('fwd', 'one', 'two');
    expect(swapped).toMatchObject({ succeeded: true, leader, endpoint: c.address(follower) });
    expect(swapped.index).toBeGreaterThan(put.index);
    const appended = await lib.append('a record');
    expect(appended.leader).toBe(leader);
    const read = await lib.get('fwd');
    expect(text(read.value)).toBe('two');
    expect(read.leader).toBe(leader);
    const deleted = await lib.delete('fwd');
    expect(deleted).toMatchObject({ existed: true, leader });

    // The same through a raw call to the follower; the leader's state agrees.
    const raw = await c.call<WriteReply>(follower, 'put', { key: b('raw'), value: b('r') }, CALL_MS);
    expect(raw.leader).toBe(leader);
    const onLeader = await c.call<GetReply>(leader, 'get', { key: b('raw'), consistency: 'READ_CONSISTENCY_LOCAL' }, CALL_MS);
    expect(text(onLeader.value)).toBe('r');
  });
});

interface AckedWrite {
  readonly op: 'put' | 'append';
  readonly key: string;
  readonly value: string;
  readonly index: number;
  readonly term: number;
  readonly leader: string | null;
  readonly endpoint: string;
}

interface FailedWrite {
  readonly key: string;
  readonly value: string;
  readonly error: RaftLogError;
}

/** Concurrent writers, and every outcome they saw. */
class WriteLoad {
  readonly acked: AckedWrite[] = [];
  /** Sent (or maybe sent) and then no answer: may or may not have been committed. */
  readonly indeterminate: FailedWrite[] = [];
  /** Puts the client reports as certainly not committed (every attempt answered UNAVAILABLE or was never sent). */
  readonly unavailable: FailedWrite[] = [];
  readonly unexpected: unknown[] = [];
  readonly timeline: string[] = [];
  private stopped = false;

  get crashed(): boolean {
    return this.unexpected.length > 0;
  }

  stop(): void {
    this.stopped = true;
  }

  mark(event: string): void {
    this.timeline.push(`${event} after ${this.acked.length} acks`);
  }

  maxAckedIndex(): number {
    return this.acked.reduce((max, w) => Math.max(max, w.index), 0);
  }

  async run(writer: number, lib: RaftLogClient, op: 'put' | 'append'): Promise<void> {
    for (let seq = 0; !this.stopped; seq++) {
      const key = `load/w${writer}/${seq}`;
      const value = `${key}=${writer * 1_000_000 + seq}`;
      try {
        const result = op === 'put' ? await lib.put(key, value) : await lib.append(value);
        const { index, term, leader, endpoint } = result;
        this.acked.push({ op, key, value, index, term, leader, endpoint });
      } catch (error) {
        if (error instanceof RaftLogIndeterminateError) this.indeterminate.push({ key, value, error });
        else if (error instanceof RaftLogUnavailableError) {
          if (op === 'put') this.unavailable.push({ key, value, error });
        } else {
          this.unexpected.push(error);
          return;
        }
        // A failed call already waited out its retries; yield so a writer never spins.
        await pause(5);
      }
    }
  }
}

/** Reads each write's key with a linearizable Get on one node; returns the writes for which `bad` holds. */
async function readBack<W extends { readonly key: string }>(
  c: ProcessCluster,
  id: string,
  writes: readonly W[],
  bad: (write: W, reply: GetReply) => boolean,
): Promise<W[]> {
  const found: W[] = [];
  for (let i = 0; i < writes.length; i += 50) {
    const batch = writes.slice(i, i + 50);
    const replies = await Promise.all(batch.map((w) => c.call<GetReply>(id, 'get', linearizable(w.key), CALL_MS)));
    batch.forEach((w, j) => {
      if (bad(w, replies[j] as GetReply)) found.push(w);
    });
  }
  return found;
}
