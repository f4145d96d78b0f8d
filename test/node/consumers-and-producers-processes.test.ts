/**
 * Durable consumers and exactly-once producer writes (client.proto) against
 * real `raftlog node` processes, over raw gRPC: positions committed through
 * Raft, read back, resumed by Subscribe and kept across the loss of the
 * leader; producer stamps that make a retried write apply once, whichever
 * node the retry reaches. Waits are conditions polled with generous
 * deadlines, never fixed sleeps.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type {
  CommitPositionReply,
  CompareAndSwapReply,
  ConsumersReply,
  DeleteConsumerReply,
  DeleteReply,
  ProducerStampRequest,
  ReadLogReply,
  RegisterProducerReply,
  WriteReply,
} from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { rejection } from '../support/rejection.js';
import { closeAllSubscriptions, SubscribeStream } from '../support/subscribe-stream.js';

const CALL_MS = 10_000;
const WAIT_MS = 60_000;
const TEN_MINUTES = 10 * 60_000;

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

let cluster: ProcessCluster | null = null;
const c = (): ProcessCluster => cluster as ProcessCluster;

beforeAll(async () => {
  cluster = await ProcessCluster.start(3);
  await cluster.waitForLeader(cluster.ids, WAIT_MS);
});
afterEach(() => closeAllSubscriptions());
afterAll(async () => {
  await cluster?.destroy();
  cluster = null;
});

const commitPosition = (id: string, consumer: string, position: number, allowBackwards = false) =>
  c().call<CommitPositionReply>(id, 'commitPosition', { consumer, position, allowBackwards }, CALL_MS);
const consumers = (id: string) => c().call<ConsumersReply>(id, 'consumers', { consistency: 'READ_CONSISTENCY_LINEARIZABLE' }, CALL_MS);
const deleteConsumer = (id: string, consumer: string) => c().call<DeleteConsumerReply>(id, 'deleteConsumer', { consumer }, CALL_MS);
const registerProducer = (id: string) => c().call<RegisterProducerReply>(id, 'registerProducer', {}, CALL_MS);
const stamp = (producerId: number, sequence: number, acknowledgedBelow = 0): ProducerStampRequest => ({ producerId, sequence, acknowledgedBelow });
const append = (id: string, record: string, producer?: ProducerStampRequest) =>
  c().call<WriteReply>(id, 'append', { record: Buffer.from(record), producer: producer ?? null }, CALL_MS);

/** The leader now, and its two followers. */
async function roles(): Promise<{ leader: string; followers: [string, string] }> {
  const leader = await c().waitForLeader([...c().processes.keys()], WAIT_MS);
  return { leader, followers: c().ids.filter((id) => id !== leader) as [string, string] };
}

/** Where a Subscribe with this request starts: the first index its first reply covers. */
async function subscribeStart(id: string, request: { consumer?: string; fromIndex?: number; fromTail?: boolean }): Promise<number> {
  const stream = SubscribeStream.open(c().address(id), request);
  try {
    await stream.until('a first reply', (s) => s.replies.length > 0, 20_000);
    return stream.replies[0]!.firstIndex;
  } finally {
    stream.close();
  }
}

async function appendSome(id: string, prefix: string, count: number): Promise<WriteReply[]> {
  const replies: WriteReply[] = [];
  for (let i = 0; i < count; i++) replies.push(await append(id, `${prefix}-${i}`));
  return replies;
}

async function grpcError(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  return (await rejection(promise)) as grpc.ServiceError;
}

describe('durable consumers', () => {
  it('a committed position is where Subscribe with that consumer resumes; a consumer with none starts at from_index', async () => {
    const { leader, followers } = await roles();
    const written = await appendSome(leader, 'resume', 10);
    const position = written[4]!.position.index;
    const committed = await commitPosition(followers[0], 'resumer', position);
    expect(committed).toMatchObject({ leader, position });

    expect(await subscribeStart(followers[1], { consumer: 'resumer', fromIndex: 1 })).toBe(position + 1);
    expect(await subscribeStart(leader, { consumer: 'resumer' })).toBe(position + 1);
    expect(await subscribeStart(followers[1], { consumer: 'never-committed', fromIndex: written[7]!.position.index })).toBe(
      written[7]!.position.index,
    );
  });

  it('a consumer with no position that asks for the tail starts at the tail, as a subscriber without a consumer would', async () => {
    const { leader, followers } = await roles();
    const written = await appendSome(leader, 'tail', 3);
    // from_index is ignored when from_tail is set; a consumer with no position starts where the request says.
    const start = await subscribeStart(followers[0], { consumer: 'first-time-at-the-tail', fromTail: true });
    expect(start).toBeGreaterThan(written[2]!.position.index);
  });

  it('Consumers lists each consumer with its position, its lag behind the commit index and when it committed', async () => {
    const { leader, followers } = await roles();
    const written = await appendSome(leader, 'listed', 5);
    const before = Date.now();
    const a = await commitPosition(leader, 'listed-a', written[1]!.position.index);
    const b = await commitPosition(followers[0], 'listed-b', written[3]!.position.index);

    for (const id of [leader, ...followers]) {
      const reply = await consumers(id);
      expect(reply.node).toBe(id);
      expect(reply.readIndex).toBeGreaterThanOrEqual(b.entry.index);
      const names = reply.consumers.map((consumer) => consumer.name);
      expect(names).toEqual([...names].sort());
      for (const [name, commit] of [
        ['listed-a', a],
        ['listed-b', b],
      ] as const) {
        const info = reply.consumers.find((consumer) => consumer.name === name);
        expect(info, `${name} on ${id}`).toBeDefined();
        expect(info).toMatchObject({ position: commit.position, lag: reply.commitIndex - commit.position, commitEntryIndex: commit.entry.index });
        // The leader's clock stamped the commit: close to this machine's (one machine, generous bound).
        expect(Math.abs(info!.committedAtMs - before)).toBeLessThan(TEN_MINUTES);
        expect(info!.msSinceCommit).toBeLessThan(TEN_MINUTES);
      }
    }
  });

  it('refuses a commit backwards (FAILED_PRECONDITION) unless allowed, a position beyond the commit index and an empty name (INVALID_ARGUMENT)', async () => {
    const { leader, followers } = await roles();
    const written = await appendSome(leader, 'refused', 4);
    await commitPosition(leader, 'careful', written[3]!.position.index);

    const backwards = await grpcError(commitPosition(followers[0], 'careful', written[0]!.position.index));
    expect(backwards.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(backwards.details).toMatch(/careful is at \d+; committing \d+ would move it backwards/);
    const unchanged = (await consumers(leader)).consumers.find((consumer) => consumer.name === 'careful');
    expect(unchanged?.position).toBe(written[3]!.position.index);
    // The leader refuses it before it proposes: a refusal costs no log entry.
    const before = (await c().status(leader)).commitIndex;
    expect((await grpcError(commitPosition(leader, 'careful', written[0]!.position.index))).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect((await c().status(leader)).commitIndex).toBe(before);

    const allowed = await commitPosition(leader, 'careful', written[0]!.position.index, true);
    expect(allowed.position).toBe(written[0]!.position.index);
    expect((await consumers(followers[1])).consumers.find((consumer) => consumer.name === 'careful')?.position).toBe(written[0]!.position.index);

    const { commitIndex } = await c().status(leader);
    for (const id of [leader, followers[0]]) {
      const beyond = await grpcError(commitPosition(id, 'careful', commitIndex + 1000));
      expect(beyond.code).toBe(grpc.status.INVALID_ARGUMENT);
      const empty = await grpcError(commitPosition(id, '', 1));
      expect(empty.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect((await grpcError(deleteConsumer(id, ''))).code).toBe(grpc.status.INVALID_ARGUMENT);
    }
    expect((await consumers(leader)).consumers.find((consumer) => consumer.name === 'careful')?.position).toBe(written[0]!.position.index);
  });

  it('DeleteConsumer forgets a consumer: Consumers no longer lists it, and Subscribe with its name starts at from_index', async () => {
    const { leader, followers } = await roles();
    const written = await appendSome(leader, 'deleted', 3);
    await commitPosition(leader, 'short-lived', written[2]!.position.index);
    expect((await consumers(leader)).consumers.map((consumer) => consumer.name)).toContain('short-lived');

    expect(await deleteConsumer(followers[0], 'short-lived')).toMatchObject({ existed: true, leader });
    for (const id of [leader, ...followers]) {
      expect((await consumers(id)).consumers.map((consumer) => consumer.name)).not.toContain('short-lived');
    }
    expect(await subscribeStart(followers[1], { consumer: 'short-lived', fromIndex: written[0]!.position.index })).toBe(written[0]!.position.index);
    expect(await deleteConsumer(leader, 'short-lived')).toMatchObject({ existed: false });
  });
});

describe('exactly-once producer writes', () => {
  it('a stamped append sent twice is applied once: the retry gets the same position, marked duplicate, and the log holds the record once', async () => {
    const { leader } = await roles();
    const registered = await registerProducer(leader);
    expect(registered.producerId).toBeGreaterThan(0);
    expect(registered.producerId).toBe(registered.entry.index);
    const other = await registerProducer(leader);
    expect(other.producerId).not.toBe(registered.producerId);

    const first = await append(leader, 'once only', stamp(registered.producerId, 1));
    const retry = await append(leader, 'once only', stamp(registered.producerId, 1));
    expect(first.duplicate).toBe(false);
    expect(retry).toEqual({ ...first, duplicate: true });

    const { commitIndex } = await c().status(leader);
    const read = await c().call<ReadLogReply>(leader, 'readLog', { fromIndex: registered.entry.index, maxEntries: 1000 }, CALL_MS);
    expect(read.entries.at(-1)?.index).toBeGreaterThanOrEqual(Math.min(commitIndex, first.position.index));
    const copies = read.entries.filter((entry) => entry.kind === 'LOG_ENTRY_KIND_APPEND' && text(entry.record) === 'once only');
    expect(copies.map((entry) => entry.index)).toEqual([first.position.index]);
    expect(copies[0]!.producer).toMatchObject({ producerId: registered.producerId, sequence: 1 });
  });

  it('a retried compare-and-swap and delete get the first answer, though the state has changed since', async () => {
    const { leader, followers } = await roles();
    const { producerId } = await registerProducer(leader);
    const swap = { key: Buffer.from('once/k'), expected: Buffer.alloc(0), expectAbsent: true, value: Buffer.from('mine') };
    const swapped = await c().call<CompareAndSwapReply>(leader, 'compareAndSwap', { ...swap, producer: stamp(producerId, 1) }, CALL_MS);
    expect(swapped).toMatchObject({ succeeded: true, duplicate: false });
    // Applied again, it would fail: the key exists now.
    const swapRetry = await c().call<CompareAndSwapReply>(followers[0], 'compareAndSwap', { ...swap, producer: stamp(producerId, 1) }, CALL_MS);
    expect(swapRetry).toMatchObject({ succeeded: true, duplicate: true, position: swapped.position });

    const removal = { key: Buffer.from('once/k') };
    const removed = await c().call<DeleteReply>(leader, 'delete', { ...removal, producer: stamp(producerId, 2, 2) }, CALL_MS);
    const removedRetry = await c().call<DeleteReply>(followers[1], 'delete', { ...removal, producer: stamp(producerId, 2, 2) }, CALL_MS);
    expect(removed).toMatchObject({ existed: true, duplicate: false });
    expect(removedRetry).toMatchObject({ existed: true, duplicate: true, position: removed.position });
  });

  it('the same stamped write sent three times at once, to the leader and a follower, enters the log once', async () => {
    const { leader, followers } = await roles();
    const { producerId } = await registerProducer(leader);
    const replies = await Promise.all([leader, leader, followers[0]].map((id) => append(id, 'sent at once', stamp(producerId, 1))));
    const [first] = replies as [WriteReply];
    for (const reply of replies) expect(reply.position).toEqual(first.position);
    // One of them applied the write; the others were told it was a repeat.
    expect(replies.map((reply) => reply.duplicate).sort()).toEqual([false, true, true]);

    const read = await c().call<ReadLogReply>(leader, 'readLog', { fromIndex: first.position.index - 5, maxEntries: 1000 }, CALL_MS);
    const copies = read.entries.filter((entry) => entry.kind === 'LOG_ENTRY_KIND_APPEND' && text(entry.record) === 'sent at once');
    expect(copies.map((entry) => entry.index)).toEqual([first.position.index]);
  });

  it('a retry that reaches a follower is forwarded and recognised as a duplicate', async () => {
    const { leader, followers } = await roles();
    const { producerId } = await registerProducer(followers[0]);
    const first = await append(followers[0], 'via a follower', stamp(producerId, 1));
    const retry = await append(followers[1], 'via a follower', stamp(producerId, 1));
    expect(first).toMatchObject({ duplicate: false, leader });
    expect(retry).toEqual({ ...first, duplicate: true });
  });

  it('refuses an unknown producer and a stale sequence (FAILED_PRECONDITION) and sequence 0 (INVALID_ARGUMENT), writing nothing', async () => {
    const { leader, followers } = await roles();
    const { producerId } = await registerProducer(leader);
    const before = (await c().status(leader)).commitIndex;

    const unknown = await grpcError(append(leader, 'unknown producer', stamp(producerId + 1_000_000, 1)));
    expect(unknown.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(unknown.details).toMatch(/unknown/);
    expect((await grpcError(append(followers[0], 'unknown producer', stamp(producerId + 1_000_000, 1)))).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect((await grpcError(append(leader, 'sequence zero', stamp(producerId, 0)))).code).toBe(grpc.status.INVALID_ARGUMENT);

    await append(leader, 'seq 1', stamp(producerId, 1));
    await append(leader, 'seq 2', stamp(producerId, 2, 1));
    // Sequence 3 tells the cluster every answer below 3 arrived: a retry of 2 is a producer bug.
    await append(leader, 'seq 3', stamp(producerId, 3, 3));
    const stale = await grpcError(append(leader, 'seq 2', stamp(producerId, 2, 1)));
    expect(stale.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect((await grpcError(append(followers[1], 'seq 2', stamp(producerId, 2, 1)))).code).toBe(grpc.status.FAILED_PRECONDITION);

    // Nothing refused reached the log.
    const read = await c().call<ReadLogReply>(leader, 'readLog', { fromIndex: before + 1, maxEntries: 1000 }, CALL_MS);
    const records = read.entries.filter((entry) => entry.kind === 'LOG_ENTRY_KIND_APPEND').map((entry) => text(entry.record));
    expect(records).toEqual(['seq 1', 'seq 2', 'seq 3']);
  });
});

// Last: it kills the leader of the shared cluster.
describe('consumer positions across the loss of the leader', () => {
  it('a position committed before the leader is SIGKILLed is what the new leader reports and where Subscribe resumes; a producer retry is still a duplicate', {
    timeout: 120_000,
  }, async () => {
    const { leader } = await roles();
    const written = await appendSome(leader, 'durable', 5);
    const position = written[3]!.position.index;
    await commitPosition(leader, 'durable', position);
    const { producerId } = await registerProducer(leader);
    const stamped = await append(leader, 'stamped before the kill', stamp(producerId, 1));

    await c().kill(leader);
    const survivors = c().ids.filter((id) => id !== leader);
    const newLeader = await c().waitForLeader(survivors, WAIT_MS);
    expect(newLeader).not.toBe(leader);
    const survivor = survivors.find((id) => id !== newLeader) as string;

    const info = (await consumers(newLeader)).consumers.find((consumer) => consumer.name === 'durable');
    expect(info?.position).toBe(position);
    expect((await consumers(survivor)).consumers.find((consumer) => consumer.name === 'durable')?.position).toBe(position);
    expect(await subscribeStart(survivor, { consumer: 'durable', fromIndex: 1 })).toBe(position + 1);
    // Producer sessions are replicated too: the retry of a write the old leader answered is a duplicate.
    expect(await append(survivor, 'stamped before the kill', stamp(producerId, 1))).toEqual({ ...stamped, leader: newLeader, duplicate: true });
    // And the consumer moves on under the new leader.
    const moved = await commitPosition(survivor, 'durable', written[4]!.position.index);
    expect(moved).toMatchObject({ leader: newLeader, position: written[4]!.position.index });
  });
});
