import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FIRST_INDEX_METADATA_KEY,
  RaftLogClient,
  type RaftLogClientOptions,
  RaftLogCompactedError,
  RaftLogDeadlineExceededError,
  RaftLogError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  RaftLogUnavailableError,
} from '../../src/client/index.js';
import { FakeCluster, FakeRaftLogServer, startFakeCluster } from '../support/fake-raftlog-server.js';
import { rejection } from '../support/rejection.js';
import { waitFor } from '../support/wait-for.js';

const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));

let clients: RaftLogClient[] = [];
let fakes: FakeRaftLogServer[] = [];

afterEach(async () => {
  for (const client of clients) client.close();
  await Promise.all(fakes.map((fake) => fake.stop()));
  clients = [];
  fakes = [];
});

async function cluster(count: number, leader = 'n1'): Promise<FakeRaftLogServer[]> {
  const started = await startFakeCluster(count, leader);
  fakes.push(...started);
  return started;
}

function client(endpoints: readonly string[], options: Partial<RaftLogClientOptions> = {}): RaftLogClient {
  const made = new RaftLogClient({ endpoints, deadlineMs: 2000, ...options });
  clients.push(made);
  return made;
}

/** A port on 127.0.0.1 that nothing listens on (connections are refused). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const total = (method: keyof FakeRaftLogServer['calls']) => fakes.reduce((sum, fake) => sum + fake.calls[method], 0);

describe('RaftLogClient against a healthy node', () => {
  it('puts, gets, deletes, compares-and-swaps, appends and reads status, with typed results', async () => {
    const [n1] = await cluster(1);
    const c = client([n1!.endpoint]);

    const put = await c.put('k', 'v1');
    expect(put).toEqual({ index: 1, term: 1, leader: 'n1', endpoint: n1!.endpoint, duplicate: false });

    const got = await c.get('k');
    expect(got).toMatchObject({ found: true, readIndex: 1, leader: 'n1', consistency: 'linearizable' });
    expect(text(got.value)).toBe('v1');
    expect(got.value).toBeInstanceOf(Uint8Array);

    const local = await c.get(new TextEncoder().encode('k'), { consistency: 'local' });
    expect(local).toMatchObject({ found: true, leader: null, consistency: 'local' });
    expect(n1!.received.at(-1)).toMatchObject({ method: 'Get', request: { consistency: 'READ_CONSISTENCY_LOCAL' } });

    const missing = await c.get('nope');
    expect(missing).toMatchObject({ found: false, value: null });

    const failedCas = await c.compareAndSwap('k', 'other', 'v2');
    expect(failedCas).toMatchObject({ succeeded: false, found: true, index: 2 });
    expect(text(failedCas.current)).toBe('v1');
    const cas = await c.compareAndSwap('k', 'v1', 'v2');
    expect(cas).toMatchObject({ succeeded: true, found: true, leader: 'n1' });
    expect(text(cas.current)).toBe('v2');
    const absentCas = await c.compareAndSwap('fresh', null, 'x');
    expect(absentCas.succeeded).toBe(true);
    expect(n1!.received.at(-1)).toMatchObject({ request: { expectAbsent: true } });
    expect((await c.compareAndSwap('fresh', null, 'y')).succeeded).toBe(false);

    expect(await c.delete('k')).toMatchObject({ existed: true });
    expect(await c.delete('k')).toMatchObject({ existed: false });

    const appended = await c.append(new Uint8Array([0, 1, 2]));
    expect(appended.index).toBe(n1!.cluster.lastIndex);

    const status = await c.status();
    expect(status).toEqual({
      endpoint: n1!.endpoint,
      node: 'n1',
      role: 'leader',
      term: 1,
      leader: 'n1',
      commitIndex: appended.index,
      appliedIndex: appended.index,
      lastLogIndex: appended.index,
      firstLogIndex: 1,
      snapshotIndex: 0,
      members: ['n1'],
      digest: n1!.cluster.digest(),
      memberStatus: [{ id: 'n1', address: n1!.endpoint, role: 'voter', matchIndex: appended.index }],
      progress: [],
    });
  });

  it('status tells where a compacted log starts and where the latest snapshot is; readLog from that first index works', async () => {
    const [n1] = await cluster(1);
    const c = client([n1!.endpoint]);
    for (let i = 1; i <= 10; i++) await c.append(`record ${i}`);
    // A snapshot at 9 that keeps 7..9 as a window for trailing readers.
    n1!.cluster.compact(7, 9);

    const status = await c.status();
    expect(status).toMatchObject({ firstLogIndex: 7, snapshotIndex: 9, lastLogIndex: 10, appliedIndex: 10 });
    const page = await c.readLog(status.firstLogIndex);
    expect(page.entries.map((entry) => entry.index)).toEqual([7, 8, 9, 10]);
    expect(await rejection(c.readLog(status.firstLogIndex - 1))).toBeInstanceOf(RaftLogCompactedError);
  });

  it('statusAll reports every endpoint, and an unreachable one as an error', async () => {
    const [n1, n2] = await cluster(2);
    const down = `127.0.0.1:${await closedPort()}`;
    const c = client([n1!.endpoint, down, n2!.endpoint]);
    const all = await c.statusAll();
    expect(all.map((entry) => [entry.endpoint, entry.ok])).toEqual([
      [n1!.endpoint, true],
      [down, false],
      [n2!.endpoint, true],
    ]);
    const failed = all[1]!;
    if (failed.ok) throw new Error('expected a failure');
    expect(failed.error).toBeInstanceOf(RaftLogUnavailableError);
    expect(failed.error.endpoint).toBe(down);
    expect(failed.error.code).toBe(grpc.status.UNAVAILABLE);
    expect(failed.error.message).toContain(down);
  });
});

describe('RaftLogClient failover', () => {
  it('retries on UNAVAILABLE and succeeds on the next endpoint', async () => {
    const [n1, n2, n3] = await cluster(3);
    n1!.unavailable('Put', 1);
    const c = client([n1!.endpoint, n2!.endpoint, n3!.endpoint], { discoverLeader: false });
    const put = await c.put('k', 'v');
    expect(put.endpoint).toBe(n2!.endpoint);
    expect([n1!.calls.Put, n2!.calls.Put, n3!.calls.Put]).toEqual([1, 1, 0]);
    // The write happened once.
    expect(n1!.cluster.lastIndex).toBe(1);
  });

  it('a leader with too much waiting to commit (RESOURCE_EXHAUSTED): certainly not written, retried after a pause, done once it takes it', async () => {
    const [n1] = await cluster(1);
    n1!.script(
      'Put',
      { kind: 'fail', code: grpc.status.RESOURCE_EXHAUSTED, details: 'node n1 (term 2): 67108864 bytes of proposals await commit' },
      2,
    );
    const c = client([n1!.endpoint], { discoverLeader: false });
    const put = await c.put('k', 'v');
    expect(put.endpoint).toBe(n1!.endpoint);
    expect(n1!.calls.Put).toBe(3);
    expect(n1!.cluster.lastIndex).toBe(1);
  });

  it('a leader that stays overloaded: the write ends as unavailable (nothing written), not indeterminate', async () => {
    const [n1] = await cluster(1);
    n1!.script('Put', { kind: 'fail', code: grpc.status.RESOURCE_EXHAUSTED, details: 'backlog full' }, 1_000_000);
    const c = client([n1!.endpoint], { discoverLeader: false, deadlineMs: 800 });
    const error = await rejection(c.put('k', 'v'));
    expect(error).toBeInstanceOf(RaftLogUnavailableError);
    expect(n1!.calls.Put).toBeGreaterThan(1);
    expect(n1!.cluster.lastIndex).toBe(0);
  });

  it('moves on from an endpoint that refuses connections, for writes too (nothing was sent)', async () => {
    const [n1] = await cluster(1);
    const c = client([`127.0.0.1:${await closedPort()}`, n1!.endpoint]);
    expect((await c.compareAndSwap('k', null, 'v')).succeeded).toBe(true);
    expect(n1!.calls.CompareAndSwap).toBe(1);
  });

  it('gives up with UNAVAILABLE within the deadline when every endpoint is unavailable', async () => {
    const nodes = await cluster(3);
    for (const node of nodes) node.alwaysUnavailable();
    const down = `127.0.0.1:${await closedPort()}`;
    const c = client([...nodes.map((node) => node.endpoint), down], { deadlineMs: 1000 });
    const started = Date.now();
    const error = await rejection(c.put('k', 'v'));
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(RaftLogUnavailableError);
    const unavailable = error as RaftLogUnavailableError;
    expect(unavailable.code).toBe(grpc.status.UNAVAILABLE);
    expect(unavailable.codeName).toBe('UNAVAILABLE');
    // It stops short of the deadline rather than start an attempt that could
    // not finish in time (a write cut off by the deadline is indeterminate).
    expect(elapsed).toBeLessThan(1000);
    // It went round the endpoints, more than once, backing off in between.
    for (const node of nodes) expect(node.calls.Put).toBeGreaterThanOrEqual(1);
    expect(unavailable.attempts.length).toBeGreaterThan(4);
    expect(new Set(unavailable.attempts.map((attempt) => attempt.endpoint))).toEqual(new Set([...nodes.map((node) => node.endpoint), down]));
    expect(unavailable.message).toMatch(/^put: no node could take the request/);
    expect(unavailable.message).toContain('no leader is known');
    expect(unavailable.message).toContain(down);
    expect(nodes[0]!.cluster.lastIndex).toBe(0);
  });

  it('does not retry INVALID_ARGUMENT', async () => {
    const [n1, n2] = await cluster(2);
    n1!.script('Put', { kind: 'fail', code: grpc.status.INVALID_ARGUMENT, details: 'value is over 1 MiB' });
    const c = client([n1!.endpoint, n2!.endpoint]);
    const error = await rejection(c.put('k', 'v'));
    expect(error).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, endpoint: n1!.endpoint, operation: 'put' });
    expect((error as Error).message).toBe(`put rejected by ${n1!.endpoint}: value is over 1 MiB (INVALID_ARGUMENT)`);
    expect(total('Put')).toBe(1);
  });

  it('does not retry other definite errors either', async () => {
    const [n1, n2] = await cluster(2);
    n1!.script('Get', { kind: 'fail', code: grpc.status.FAILED_PRECONDITION, details: 'not ready' });
    const c = client([n1!.endpoint, n2!.endpoint]);
    const error = await rejection(c.get('k'));
    expect(error).toBeInstanceOf(RaftLogError);
    expect(error).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, codeName: 'FAILED_PRECONDITION' });
    expect(total('Get')).toBe(1);
  });

  it('reports a compare-and-swap that timed out as indeterminate and does not retry it', async () => {
    const [n1, n2] = await cluster(2);
    n1!.script('CompareAndSwap', { kind: 'delay', ms: 1500 });
    const c = client([n1!.endpoint, n2!.endpoint], { deadlineMs: 600 });
    const error = await rejection(c.compareAndSwap('k', null, 'v'));
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED, endpoint: n1!.endpoint, operation: 'compareAndSwap' });
    expect((error as Error).message).toContain('may or may not have been committed');
    expect([n1!.calls.CompareAndSwap, n2!.calls.CompareAndSwap]).toEqual([1, 0]);
    // And indeed it was committed after the client gave up.
    await waitFor('the late compare-and-swap to commit', () => n1!.cluster.data.size === 1);
    expect(total('CompareAndSwap')).toBe(1);
  });

  it('reports a put that timed out as indeterminate too, and does not retry it', async () => {
    const [n1, n2] = await cluster(2);
    n1!.script('Put', { kind: 'hang' });
    const c = client([n1!.endpoint, n2!.endpoint], { deadlineMs: 600 });
    expect(await rejection(c.put('k', 'v'))).toBeInstanceOf(RaftLogIndeterminateError);
    expect(total('Put')).toBe(1);
  });

  it('reports an append whose node crashed mid-call as indeterminate and does not retry it', async () => {
    const [n1, n2] = await cluster(2);
    n1!.script('Append', { kind: 'crash', applied: true });
    const c = client([n1!.endpoint, n2!.endpoint]);
    const error = await rejection(c.append('record'));
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error).toMatchObject({ endpoint: n1!.endpoint, operation: 'append' });
    expect([n1!.calls.Append, n2!.calls.Append]).toEqual([1, 0]);
    expect(n1!.cluster.records).toHaveLength(1);
  });

  it('retries a read whose node crashed mid-call on the next endpoint', async () => {
    const [n1, n2] = await cluster(2);
    await client([n2!.endpoint]).put('k', 'v');
    n1!.script('Get', { kind: 'crash', applied: false });
    const c = client([n1!.endpoint, n2!.endpoint]);
    const got = await c.get('k');
    expect(text(got.value)).toBe('v');
    expect(got.endpoint).toBe(n2!.endpoint);
  });

  it('reports a read that got no answer in time as a deadline error', async () => {
    const [n1, n2] = await cluster(2);
    n1!.script('Get', { kind: 'hang' });
    const c = client([n1!.endpoint, n2!.endpoint], { deadlineMs: 600 });
    const error = await rejection(c.get('k'));
    expect(error).toBeInstanceOf(RaftLogDeadlineExceededError);
    expect(error).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED, endpoint: n1!.endpoint });
  });

  it('uses the per-call deadline over the client default', async () => {
    const [n1] = await cluster(1);
    n1!.script('Get', { kind: 'hang' });
    const c = client([n1!.endpoint], { deadlineMs: 60_000 });
    const started = Date.now();
    expect(await rejection(c.get('k', { deadlineMs: 200 }))).toBeInstanceOf(RaftLogDeadlineExceededError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('uses a node again once it is back', async () => {
    const cluster = new FakeCluster();
    const first = await FakeRaftLogServer.start({ node: 'n1', cluster });
    fakes.push(first);
    const c = client([first.endpoint], { deadlineMs: 3000 });
    await c.put('a', '1');
    await first.stop();
    await expect(c.get('a', { deadlineMs: 300 })).rejects.toBeInstanceOf(RaftLogUnavailableError);
    const again = await FakeRaftLogServer.start({ node: 'n1', cluster, port: first.port });
    fakes.push(again);
    expect((await c.put('b', '2')).index).toBe(2);
  });
});

describe('RaftLogClient and the leader', () => {
  it('goes to the leader once it knows where the leader listens (node ids given with the endpoints)', async () => {
    const [n1, n2, n3] = await cluster(3, 'n3');
    const c = client([`n1=${n1!.endpoint}`, `n2=${n2!.endpoint}`, `n3=${n3!.endpoint}`], { discoverLeader: false });
    expect((await c.put('a', '1')).endpoint).toBe(n1!.endpoint);
    expect(c.knownLeader).toEqual({ node: 'n3', endpoint: n3!.endpoint });
    expect((await c.put('b', '2')).endpoint).toBe(n3!.endpoint);
    expect((await c.get('b')).endpoint).toBe(n3!.endpoint);
    expect(total('Status')).toBe(0);
  });

  it('learns which endpoint the leader is from the nodes’ status', async () => {
    const [n1, n2, n3] = await cluster(3, 'n2');
    const c = client([n1!.endpoint, n2!.endpoint, n3!.endpoint]);
    expect((await c.put('a', '1')).endpoint).toBe(n1!.endpoint);
    await waitFor('the client to find the leader', () => c.knownLeader?.endpoint === n2!.endpoint);
    expect((await c.put('b', '2')).endpoint).toBe(n2!.endpoint);
  });

  it('follows a new leader', async () => {
    const [n1, n2, n3] = await cluster(3, 'n1');
    const c = client([n1!.endpoint, n2!.endpoint, n3!.endpoint]);
    await c.statusAll();
    expect((await c.put('a', '1')).endpoint).toBe(n1!.endpoint);
    n1!.cluster.leader = 'n3';
    n1!.alwaysUnavailable();
    expect((await c.put('b', '2')).endpoint).toBe(n2!.endpoint);
    expect((await c.put('c', '3')).endpoint).toBe(n3!.endpoint);
  });
});

describe('RaftLogClient.readLog at compacted positions', () => {
  it('throws RaftLogCompactedError with the first index held, from the trailing metadata; reading from it works', async () => {
    const [n1, n2] = await cluster(2);
    const c = client([n1!.endpoint, n2!.endpoint], { discoverLeader: false });
    for (let i = 1; i <= 10; i++) await c.append(`record ${i}`);
    n1!.cluster.compact(7);

    const error = await rejection(c.readLog(3));
    expect(error).toBeInstanceOf(RaftLogCompactedError);
    expect(error).toBeInstanceOf(RaftLogError);
    expect(error).toMatchObject({
      code: grpc.status.OUT_OF_RANGE,
      codeName: 'OUT_OF_RANGE',
      operation: 'readLog',
      endpoint: n1!.endpoint,
      fromIndex: 3,
      firstIndex: 7,
    });
    expect((error as Error).message).toBe(
      `readLog on ${n1!.endpoint}: node n1: cannot read from index 3: entries before 7 were compacted into a snapshot; the log starts at 7 (OUT_OF_RANGE)`,
    );
    // The answer is definite: no other node is asked.
    expect(total('ReadLog')).toBe(1);

    const page = await c.readLog((error as RaftLogCompactedError).firstIndex);
    expect(page.entries.map((entry) => [entry.index, text(entry.record)])).toEqual([
      [7, 'record 7'],
      [8, 'record 8'],
      [9, 'record 9'],
      [10, 'record 10'],
    ]);
  });

  it('takes the first index from the metadata, not from the message', async () => {
    const [n1] = await cluster(1);
    n1!.script('ReadLog', {
      kind: 'fail',
      code: grpc.status.OUT_OF_RANGE,
      details: 'compacted (a message worded differently)',
      trailers: { [FIRST_INDEX_METADATA_KEY]: '123456' },
    });
    const error = await rejection(client([n1!.endpoint]).readLog(1));
    expect(error).toBeInstanceOf(RaftLogCompactedError);
    expect(error).toMatchObject({ firstIndex: 123456, fromIndex: 1, details: 'compacted (a message worded differently)' });
  });

  it('reports OUT_OF_RANGE without a usable first index as a plain RaftLogError, not a compaction', async () => {
    const [n1] = await cluster(1);
    n1!.script('ReadLog', { kind: 'fail', code: grpc.status.OUT_OF_RANGE, details: 'out of range' });
    n1!.script('ReadLog', {
      kind: 'fail',
      code: grpc.status.OUT_OF_RANGE,
      details: 'out of range',
      trailers: { [FIRST_INDEX_METADATA_KEY]: 'soon' },
    });
    const c = client([n1!.endpoint]);
    for (let i = 0; i < 2; i++) {
      const error = await rejection(c.readLog(1));
      expect(error).toBeInstanceOf(RaftLogError);
      expect(error).not.toBeInstanceOf(RaftLogCompactedError);
      expect(error).toMatchObject({
        code: grpc.status.OUT_OF_RANGE,
        message: `readLog on ${n1!.endpoint} failed: the node answered OUT_OF_RANGE: out of range`,
      });
    }
  });
});

describe('RaftLogClient input checks', () => {
  it('rejects bad keys, values and records before sending anything', async () => {
    const [n1] = await cluster(1);
    const c = client([n1!.endpoint]);
    const cases: [Promise<unknown>, RegExp][] = [
      [c.put('', 'v'), /^put: the key is empty \(keys are 1 to 4096 bytes\)/],
      [c.get(new Uint8Array(0)), /^get: the key is empty/],
      [c.delete('k'.repeat(4097)), /^delete: the key is 4097 bytes, over the limit of 4096 bytes/],
      [c.put('k', new Uint8Array(1024 * 1024 + 1)), /^put: the value is 1048577 bytes, over the limit of 1 MiB/],
      [c.compareAndSwap('k', new Uint8Array(1024 * 1024 + 1), 'v'), /^compareAndSwap: the expected value is 1048577 bytes/],
      [c.append('é'.repeat(512 * 1024 + 1)), /^append: the record is 1048578 bytes/],
      [c.put(42 as unknown as string, 'v'), /^put: the key must be a string or a Uint8Array, got number/],
      [c.get('k', { consistency: 'strong' as 'local' }), /^get: consistency must be 'linearizable' or 'local'/],
      [c.get('k', { deadlineMs: 0 }), /^get: deadlineMs must be a positive number/],
      [c.status('not an endpoint'), /^status: endpoint "not an endpoint" is not host:port/],
    ];
    for (const [promise, message] of cases) {
      const error = await rejection(Promise.resolve().then(() => promise));
      expect(error).toBeInstanceOf(RaftLogInvalidArgumentError);
      expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, endpoint: null });
      expect((error as Error).message).toMatch(message);
    }
    expect(n1!.totalCalls).toBe(0);
  });

  it('accepts a key of 4096 bytes and a value of exactly 1 MiB', async () => {
    const [n1] = await cluster(1);
    const c = client([n1!.endpoint]);
    const key = 'k'.repeat(4096);
    const value = new Uint8Array(1024 * 1024).fill(7);
    await c.put(key, value);
    const got = await c.get(key);
    expect(got.value?.length).toBe(value.length);
    expect(Buffer.compare(got.value!, value)).toBe(0);
  });

  it('rejects bad options when constructed', () => {
    expect(() => new RaftLogClient({ endpoints: [] })).toThrow(/no endpoints given/);
    expect(() => new RaftLogClient({ endpoints: ['localhost'] })).toThrow(/"localhost" is not host:port/);
    expect(() => new RaftLogClient({ endpoints: ['h:70000'] })).toThrow(/port 70000 is not in 1\.\.65535/);
    expect(() => new RaftLogClient({ endpoints: ['h:1'], deadlineMs: -1 })).toThrow(/deadlineMs must be a positive number/);
  });
});

describe('RaftLogClient.close', () => {
  it('rejects the calls under way and any later call', async () => {
    const [n1] = await cluster(1);
    n1!.script('Get', { kind: 'hang' });
    n1!.script('Put', { kind: 'hang' });
    const c = client([n1!.endpoint]);
    const get = c.get('k');
    const put = c.put('k', 'v');
    await waitFor('both calls to arrive', () => n1!.totalCalls === 2);
    c.close();
    const getError = await rejection(get);
    expect(getError).toBeInstanceOf(RaftLogError);
    expect(getError).toMatchObject({ code: grpc.status.CANCELLED, message: 'get: the client is closed' });
    // The put had been sent: its outcome is unknown.
    expect(await rejection(put)).toBeInstanceOf(RaftLogIndeterminateError);
    await expect(c.status()).rejects.toMatchObject({ code: grpc.status.CANCELLED });
  });
});
