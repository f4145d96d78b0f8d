/**
 * Bad input against real node processes: every malformed or over-limit
 * request gets a status code and a message, changes nothing, and leaves the
 * node serving. Limits (client.proto): keys 1..4096 bytes, values, expected
 * values and records up to 1 MiB. test/node/cluster.test.ts covers Put and Get
 * with an empty key; this covers the rest of the API.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../../src/api/client-api.js';
import type { CompareAndSwapReply, StatusReply, WriteReply } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { sendRawBytes } from '../support/raw-unary-call.js';

const CALL_MS = 10_000;
const b = (s: string) => Buffer.from(s);
const OVERSIZE_KEY = Buffer.alloc(MAX_KEY_BYTES + 1, 0x6b);
const OVERSIZE_VALUE = Buffer.alloc(MAX_VALUE_BYTES + 1, 0x76);

let cluster: ProcessCluster | null = null;
let raw: grpc.Client[] = [];

afterEach(async () => {
  for (const client of raw) client.close();
  raw = [];
  await cluster?.destroy();
  cluster = null;
});

async function failure(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

describe('bad input to a node of a 3-node cluster', () => {
  it('over-limit or empty keys, values, expected values and records are INVALID_ARGUMENT with a message, on the leader and on a follower, and change nothing', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const key = `key of ${OVERSIZE_KEY.length} bytes exceeds the limit of ${MAX_KEY_BYTES} bytes`;
    const over = (what: string) => new RegExp(`${what} of ${OVERSIZE_VALUE.length} bytes exceeds the limit of ${MAX_VALUE_BYTES} bytes`);
    const cases: [method: string, request: object, message: RegExp][] = [
      ['get', { key: OVERSIZE_KEY }, new RegExp(key)],
      ['delete', { key: b('') }, /key must not be empty/],
      ['delete', { key: OVERSIZE_KEY }, new RegExp(key)],
      ['compareAndSwap', { key: b(''), expected: b('a'), value: b('b') }, /key must not be empty/],
      ['compareAndSwap', { key: b(''), expectAbsent: true, value: b('b') }, /key must not be empty/],
      ['compareAndSwap', { key: OVERSIZE_KEY, expected: b('a'), value: b('b') }, new RegExp(key)],
      ['compareAndSwap', { key: b('k'), expected: OVERSIZE_VALUE, value: b('b') }, over('expected')],
      ['compareAndSwap', { key: b('k'), expected: b('a'), value: OVERSIZE_VALUE }, over('value')],
      ['compareAndSwap', { key: b('k'), expectAbsent: true, value: OVERSIZE_VALUE }, over('value')],
      ['append', { record: OVERSIZE_VALUE }, over('record')],
    ];
    const before = await c.status(leader);
    for (const id of [leader, follower]) {
      for (const [method, request, message] of cases) {
        const error = await failure(c.call(id, method, request, CALL_MS));
        expect(error.code, `${method} on ${id}: ${error.code} ${error.details}`).toBe(grpc.status.INVALID_ARGUMENT);
        expect(error.details).toMatch(message);
      }
    }
    // Nothing was proposed: the leader's log did not grow.
    expect((await c.status(leader)).lastLogIndex).toBe(before.lastLogIndex);

    // At the limits exactly, and below: accepted. An empty record or value is within the limits (no minimum is documented).
    const atLimits: [string, object][] = [
      ['put', { key: Buffer.alloc(MAX_KEY_BYTES, 0x6b), value: Buffer.alloc(MAX_VALUE_BYTES, 0x76) }],
      ['compareAndSwap', { key: b('k'), expected: Buffer.alloc(MAX_VALUE_BYTES), value: b('small') }],
      ['compareAndSwap', { key: b('k'), expected: b('small'), value: Buffer.alloc(MAX_VALUE_BYTES) }],
      ['append', { record: Buffer.alloc(MAX_VALUE_BYTES) }],
      ['append', { record: b('') }],
      ['put', { key: b('empty-value'), value: b('') }],
    ];
    for (const [method, request] of atLimits) {
      const reply = await c.call<WriteReply>(follower, method, request, CALL_MS);
      expect(reply.leader, method).toBe(leader);
    }
  });

  it('a CompareAndSwap whose key, expected value and new value are each at its limit is accepted, as the documented limits say', async () => {
    // Each part is within client.proto's limits (key 4096 bytes, values up to 1 MiB each), so the
    // request is valid; the node must not reject it for the size of the log entry it makes.
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const key = Buffer.alloc(MAX_KEY_BYTES, 0x6b);
    const full = Buffer.alloc(MAX_VALUE_BYTES, 0x61);
    await c.call<WriteReply>(leader, 'put', { key, value: full }, CALL_MS);
    const swap = await c.call<CompareAndSwapReply>(
      leader,
      'compareAndSwap',
      { key, expected: full, value: Buffer.alloc(MAX_VALUE_BYTES, 0x62) },
      CALL_MS,
    );
    expect(swap.succeeded).toBe(true);
  });

  it('a request that is not valid protobuf gets INVALID_ARGUMENT saying it is malformed, and the node keeps serving', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const garbage: [what: string, bytes: Buffer][] = [
      ['invalid varint tag', Buffer.from([0xff, 0xff, 0xff])],
      ['a length past the end', Buffer.from([0x0a, 0x64, 0x61, 0x62])],
      ['wire type 7', Buffer.from([0x0f])],
      ['a varint where bytes belong', Buffer.from([0x08, 0x05])],
      ['text', b('this is not a protobuf message')],
      // Lenient decoders skip these and hand over an empty message: to Append that was an empty record, committed.
      ['field number 0', Buffer.from([0x00, 0x01])],
      ['a start-group', Buffer.from([0x0b, 0x0c])],
    ];
    const before = await c.status(leader);
    for (const id of [leader, follower]) {
      const client = new grpc.Client(c.address(id), grpc.credentials.createInsecure());
      raw.push(client);
      for (const method of ['Put', 'Get', 'Delete', 'CompareAndSwap', 'Append']) {
        for (const [what, bytes] of garbage) {
          const outcome = await sendRawBytes(client, `/raftlog.v1.RaftLog/${method}`, bytes, CALL_MS);
          if (outcome === null) throw new Error(`${method} with ${what} on ${id} was accepted`);
          expect(outcome.code, `${method} with ${what} on ${id}: ${outcome.code} ${outcome.details}`).toBe(grpc.status.INVALID_ARGUMENT);
          expect(outcome.details).toMatch(/^malformed request: /);
        }
      }
    }

    // A message larger than any legitimate one (peer batches included) is refused before it is read whole.
    const huge = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6b, 0x12, 0x80, 0x80, 0x80, 0x03]), Buffer.alloc(6 * 1024 * 1024)]);
    const tooLarge = await sendRawBytes(raw[0] as grpc.Client, '/raftlog.v1.RaftLog/Put', huge, CALL_MS);
    if (tooLarge === null) throw new Error('a 6 MiB Put was accepted');
    expect(tooLarge.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Nothing was written: the log ends where it ended before the garbage.
    expect((await c.status(leader)).lastLogIndex).toBe(before.lastLogIndex);
    // No node crashed or stopped serving: every process runs, every node answers, and a write commits.
    for (const id of c.ids) expect(c.processes.get(id)?.exitCode, `${id} exited`).toBeNull();
    const statuses = await Promise.all(c.ids.map((id) => c.status(id)));
    expect(statuses.map((s: StatusReply) => s.leader)).toEqual(c.ids.map(() => leader));
    const put = await c.call<WriteReply>(follower, 'put', { key: b('after-garbage'), value: b('fine') }, CALL_MS);
    expect(put.leader).toBe(leader);
  });
});
