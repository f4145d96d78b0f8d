import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_IN_FLIGHT } from '../../src/node/call-stream.js';
import { type CallReply, type CallRequest, RaftLogGrpcClient } from '../../src/node/client-proto.js';
import type { KvCommand } from '../../src/node/kv-commands.js';
import type { Committed, RaftNode } from '../../src/node/raft-node.js';
import { ClientServiceHarness } from '../support/client-service-harness.js';
import { waitFor } from '../support/wait-for.js';

/**
 * A node's real client service in-process, in front of a stand-in leader
 * whose proposals commit only when the test says so: what a Calls stream
 * does with each write, its answers' ids, its failures and its limit.
 */
class StandInLeader {
  readonly proposed: { command: KvCommand; commit: (index: number) => void }[] = [];
  /** Linearizable reads waiting for the test to confirm them (as the leader's ReadIndex round would). */
  readonly reads: { key: string; confirm: (value: string | null, index: number) => void }[] = [];
  /** What a local read finds, by key. */
  readonly localValues = new Map<string, string>();
  private readonly applied = new Set<() => void>();
  /** Stops as RaftNode does: isStopped, then every onApplied listener woken. */
  stop(): void {
    (this.node as { isStopped: boolean }).isStopped = true;
    for (const listener of this.applied) listener();
  }
  readonly node = {
    id: 'n1',
    isStopped: false,
    failpoints: null,
    onApplied: (listener: () => void) => {
      this.applied.add(listener);
      return () => this.applied.delete(listener);
    },
    brief: () => ({ leader: 'n1' }),
    localGet: (key: Uint8Array) => {
      const value = this.localValues.get(Buffer.from(key).toString());
      return { value: value === undefined ? null : Buffer.from(value), index: 4 };
    },
    linearizableGet: (key: Uint8Array): Promise<{ value: Uint8Array | null; index: number }> =>
      new Promise((resolve) => {
        this.reads.push({
          key: Buffer.from(key).toString(),
          confirm: (value, index) => resolve({ value: value === null ? null : Buffer.from(value), index }),
        });
      }),
    propose: (command: KvCommand): Promise<Committed> =>
      new Promise((resolve) => {
        this.proposed.push({ command, commit: (index) => resolve({ index, term: 3, result: { op: command.op } as Committed['result'] }) });
      }),
  } as unknown as RaftNode;
}

type Duplex = grpc.ClientDuplexStream<CallRequest, CallReply>;

const harness = new ClientServiceHarness();
const clients: grpc.Client[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  harness.close();
});

async function openStream(leader: StandInLeader): Promise<{ stream: Duplex; replies: CallReply[]; ended: Promise<grpc.ServiceError | null> }> {
  const endpoint = await harness.serve(leader.node);
  const client = new RaftLogGrpcClient(endpoint, grpc.credentials.createInsecure());
  clients.push(client);
  const stream = (client as unknown as { calls: () => Duplex }).calls();
  const replies: CallReply[] = [];
  stream.on('data', (reply: CallReply) => replies.push(reply));
  const ended = new Promise<grpc.ServiceError | null>((resolve) => {
    stream.on('error', (error: grpc.ServiceError) => resolve(error));
    stream.on('end', () => resolve(null));
  });
  return { stream, replies, ended };
}

/** The stream stays open while the first proposed write is unanswered, and ends with OK once it is committed and answered. */
async function expectEndsOnlyOnceAnswered(leader: StandInLeader, ended: Promise<grpc.ServiceError | null>): Promise<void> {
  let over = false;
  void ended.then(() => (over = true));
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(over).toBe(false);
  leader.proposed[0]?.commit(1);
  expect(await ended).toBeNull();
}

const put = (id: number, key: string, value = 'v'): CallRequest => ({
  id,
  timeoutMs: 10_000,
  call: 'put',
  put: { key: Buffer.from(key), value: Buffer.from(value) },
});

describe('Calls: many writes and Gets over one stream', () => {
  it('answers each write under its own id, in the order the writes commit', async () => {
    const leader = new StandInLeader();
    const { stream, replies } = await openStream(leader);
    stream.write(put(7, 'a'));
    stream.write({ id: 8, timeoutMs: 10_000, call: 'append', append: { record: Buffer.from('r') } });
    stream.write({ id: 9, timeoutMs: 10_000, call: 'delete', delete: { key: Buffer.from('a') } });
    await waitFor('three writes proposed', () => leader.proposed.length === 3, 10_000);
    expect(leader.proposed.map((p) => p.command.op)).toEqual(['put', 'append', 'delete']);
    // Committed last to first: each answer goes out as soon as its write is done.
    for (const [i, p] of [...leader.proposed.entries()].reverse()) p.commit(100 + i);
    await waitFor('three answers', () => replies.length === 3, 10_000);
    expect(replies.map((r) => [r.id, r.result])).toEqual([
      [9, 'delete'],
      [8, 'append'],
      [7, 'put'],
    ]);
    expect(replies[2]?.put).toMatchObject({ position: { index: 100, term: 3 }, leader: 'n1', duplicate: false });
    expect(replies[1]?.append).toMatchObject({ position: { index: 101, term: 3 } });
    stream.end();
  });

  it('serves a Get as the Get method does: a linearizable one when the leader confirms it, a local one at once', async () => {
    const leader = new StandInLeader();
    leader.localValues.set('here', 'local value');
    const { stream, replies } = await openStream(leader);
    const get = (id: number, key: string, consistency: 'READ_CONSISTENCY_LINEARIZABLE' | 'READ_CONSISTENCY_LOCAL'): CallRequest => ({
      id,
      timeoutMs: 10_000,
      call: 'get',
      get: { key: Buffer.from(key), consistency },
    });
    stream.write(get(1, 'k', 'READ_CONSISTENCY_LINEARIZABLE'));
    stream.write(put(2, 'k', 'new'));
    stream.write(get(3, 'here', 'READ_CONSISTENCY_LOCAL'));
    stream.write(get(4, 'absent', 'READ_CONSISTENCY_LOCAL'));
    await waitFor('the local reads answered, the write proposed, the linearizable read waiting', () => replies.length === 2, 10_000);
    expect(leader.proposed.map((p) => p.command.op)).toEqual(['put']);
    expect(leader.reads.map((r) => r.key)).toEqual(['k']);
    const byId = () => new Map(replies.map((r) => [Number(r.id), r]));
    expect(byId().get(3)).toMatchObject({ result: 'get', get: { found: true, readIndex: 4, leader: '' } });
    expect(Buffer.from(byId().get(3)?.get?.value ?? []).toString()).toBe('local value');
    expect(byId().get(4)).toMatchObject({ result: 'get', get: { found: false, readIndex: 4 } });
    expect(byId().get(4)?.get?.value.length).toBe(0);
    leader.reads[0]?.confirm('old', 9);
    await waitFor('the linearizable read answered', () => replies.length === 3, 10_000);
    expect(byId().get(1)).toMatchObject({ result: 'get', get: { found: true, readIndex: 9, leader: 'n1' } });
    expect(Buffer.from(byId().get(1)?.get?.value ?? []).toString()).toBe('old');
    leader.proposed[0]?.commit(10);
    await waitFor('the write answered', () => replies.length === 4, 10_000);
    expect(byId().get(2)).toMatchObject({ result: 'put', put: { position: { index: 10 } } });
    // A Get with a bad key fails as the Get method would, and reads nothing.
    stream.write(get(5, '', 'READ_CONSISTENCY_LINEARIZABLE'));
    await waitFor('the bad read refused', () => replies.length === 5, 10_000);
    expect(byId().get(5)).toMatchObject({ result: 'failure', failure: { code: grpc.status.INVALID_ARGUMENT } });
    expect(leader.reads).toHaveLength(1);
    stream.end();
  });

  it('answers a bad write with its failure, and the stream goes on', async () => {
    const leader = new StandInLeader();
    const { stream, replies } = await openStream(leader);
    stream.write(put(1, ''));
    stream.write({ id: 2, timeoutMs: 0 });
    stream.write(put(3, 'k'));
    await waitFor('one write proposed, two refused', () => leader.proposed.length === 1 && replies.length === 2, 10_000);
    leader.proposed[0]?.commit(5);
    await waitFor('three answers', () => replies.length === 3, 10_000);
    const byId = new Map(replies.map((r) => [r.id, r]));
    expect(byId.get(1)).toMatchObject({ result: 'failure', failure: { code: grpc.status.INVALID_ARGUMENT, nothingWritten: false } });
    expect(byId.get(1)?.failure?.message).toMatch(/key/);
    expect(byId.get(2)).toMatchObject({ result: 'failure', failure: { code: grpc.status.INVALID_ARGUMENT } });
    expect(byId.get(2)?.failure?.message).toContain('call 2 names no write or read');
    expect(byId.get(3)).toMatchObject({ result: 'put', put: { position: { index: 5, term: 3 } } });
    stream.end();
  });

  it('ends the stream with INVALID_ARGUMENT on bytes that are not a CallRequest', async () => {
    const leader = new StandInLeader();
    const endpoint = await harness.serve(leader.node);
    const client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
    clients.push(client);
    const identity = (bytes: Buffer) => bytes;
    const stream = client.makeBidiStreamRequest('/raftlog.v1.RaftLog/Calls', identity, identity);
    const ended = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    stream.on('data', () => undefined);
    // Field 3 (put) as a length-delimited field whose length runs past the message.
    stream.write(Buffer.from([0x1a, 0x7f, 0x01]));
    const error = await ended;
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain('malformed request on a Calls stream');
    expect(leader.proposed).toHaveLength(0);
  });

  it('ends the stream with INVALID_ARGUMENT on an id it could not echo exactly, and serves nothing after it', async () => {
    const leader = new StandInLeader();
    const { stream, ended } = await openStream(leader);
    stream.write(put(2 ** 53 + 2, 'k'));
    stream.write(put(1, 'k'));
    const error = await ended;
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.details).toContain('above 2^53 - 1');
    expect(leader.proposed).toHaveLength(0);
  });

  it(`refuses a write past ${MAX_IN_FLIGHT} in flight at once with RESOURCE_EXHAUSTED, proposing nothing, and takes more once answers went out`, async () => {
    const leader = new StandInLeader();
    const { stream, replies } = await openStream(leader);
    for (let i = 1; i <= MAX_IN_FLIGHT + 5; i++) stream.write(put(i, `k${i}`));
    await waitFor('the refusals', () => replies.length === 5, 20_000);
    expect(leader.proposed).toHaveLength(MAX_IN_FLIGHT);
    expect(replies.map((r) => r.id)).toEqual([1001, 1002, 1003, 1004, 1005]);
    expect(replies[0]?.failure).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, nothingWritten: true });
    expect(replies[0]?.failure?.message).toContain('1000 calls of this stream are in flight');
    leader.proposed[0]?.commit(1);
    await waitFor('the first answer', () => replies.length === 6, 20_000);
    stream.write(put(2000, 'again'));
    await waitFor('the next write proposed', () => leader.proposed.length === MAX_IN_FLIGHT + 1, 20_000);
    for (const [i, p] of leader.proposed.entries()) p.commit(i + 1);
    await waitFor('every write answered', () => replies.length === MAX_IN_FLIGHT + 6, 20_000);
    expect(replies.filter((r) => r.result === 'put')).toHaveLength(MAX_IN_FLIGHT + 1);
    stream.end();
  });

  it('a stopping node carries out no new write, answers the writes it had read, then ends the stream with OK', async () => {
    const leader = new StandInLeader();
    const { stream, replies, ended } = await openStream(leader);
    stream.write(put(1, 'k'));
    await waitFor('the write proposed', () => leader.proposed.length === 1, 10_000);
    leader.stop();
    stream.write(put(2, 'late'));
    await waitFor('the late write refused', () => replies.length === 1, 10_000);
    expect(replies[0]).toMatchObject({ id: 2, failure: { code: grpc.status.UNAVAILABLE, nothingWritten: true } });
    expect(replies[0]?.failure?.message).toContain('node n1 is shutting down; call 2 was not carried out');
    expect(leader.proposed).toHaveLength(1);
    // Ending now would leave write 1's outcome unknown to its caller: the stream waits for its answer.
    await expectEndsOnlyOnceAnswered(leader, ended);
    expect(replies.map((r) => [r.id, r.result])).toEqual([
      [2, 'failure'],
      [1, 'put'],
    ]);
  });

  it('a stopping node with no write in flight ends its streams with OK at once, so that a graceful stop is not held up', async () => {
    const leader = new StandInLeader();
    const { stream, replies, ended } = await openStream(leader);
    stream.write(put(1, 'k'));
    await waitFor('the write proposed', () => leader.proposed.length === 1, 10_000);
    leader.proposed[0]?.commit(1);
    await waitFor('its answer', () => replies.length === 1, 10_000);
    leader.stop();
    expect(await ended).toBeNull();
  });

  it('ends once the caller has ended and every write in flight is answered', async () => {
    const leader = new StandInLeader();
    const { stream, replies, ended } = await openStream(leader);
    stream.write(put(1, 'k'));
    await waitFor('the write proposed', () => leader.proposed.length === 1, 10_000);
    stream.end();
    await expectEndsOnlyOnceAnswered(leader, ended);
    expect(replies.map((r) => r.id)).toEqual([1]);
  });
});
