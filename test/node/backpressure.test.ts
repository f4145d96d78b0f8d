/**
 * The leader's bounds on writes waiting to commit, with real processes: past
 * --max-uncommitted-bytes, or once the oldest waiting write has waited
 * --max-write-wait-ms, it answers RESOURCE_EXHAUSTED (nothing written), and
 * the client library retries after a pause until the backlog drains.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftLogClient } from '../../src/client/index.js';
import type { WriteReply } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';

let cluster: ProcessCluster | null = null;
let client: RaftLogClient | null = null;

afterEach(async () => {
  client?.close();
  client = null;
  await cluster?.destroy();
  cluster = null;
});

describe('backpressure', () => {
  it('a leader whose followers stopped answering takes writes up to the bound, refuses more with RESOURCE_EXHAUSTED, and a retrying client gets through once they are back', {
    timeout: 180_000,
  }, async () => {
    // Long election timeouts (4–8 s): the leader must not step down (check-quorum) while its followers are frozen.
    cluster = await ProcessCluster.start(3, ['--max-uncommitted-bytes', '1000', '--election-ticks', '200']);
    const c = cluster;
    const leader = await c.waitForLeader(c.ids, 90_000);
    const followers = c.ids.filter((id) => id !== leader);
    // The fault: both followers frozen, so nothing the leader appends can commit.
    for (const id of followers) expect(c.pause(id)).toBe(true);

    const put = (i: number) =>
      c.call<WriteReply>(leader, 'put', { key: Buffer.from(`k${i}`), value: Buffer.alloc(400, 0x61) }, 30_000).then(
        () => 'ok' as const,
        (error: grpc.ServiceError) => error.code,
      );
    // Two 400-byte writes fit under 1000 bytes; they wait, since nothing can commit.
    const admitted = [0, 1].map(put);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Expected: the ones after are refused at once, certainly not written.
    const refused = await Promise.all([2, 3, 4].map(put));
    expect(refused).toEqual([grpc.status.RESOURCE_EXHAUSTED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.RESOURCE_EXHAUSTED]);

    // A client retries after a pause; once the followers are back the backlog commits and its write gets through.
    client = new RaftLogClient({ endpoints: [c.address(leader)], deadlineMs: 60_000, discoverLeader: false });
    const retried = client.put('retried', 'through the backlog');
    retried.catch(() => {}); // awaited below; a failure before then must not go unhandled
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const id of followers) c.resume(id);
    expect(await Promise.all(admitted)).toEqual(['ok', 'ok']);
    const written = await retried;
    expect(Buffer.from((await client.get('retried')).value ?? new Uint8Array()).toString()).toBe('through the backlog');
    expect(written.index).toBeGreaterThan(0);
  });

  it('a leader whose oldest waiting write has waited past --max-write-wait-ms refuses new writes until the backlog drains', {
    timeout: 180_000,
  }, async () => {
    cluster = await ProcessCluster.start(3, ['--max-write-wait-ms', '300', '--election-ticks', '200']);
    const c = cluster;
    const leader = await c.waitForLeader(c.ids, 90_000);
    const followers = c.ids.filter((id) => id !== leader);
    const put = (key: string) =>
      c.call<WriteReply>(leader, 'put', { key: Buffer.from(key), value: Buffer.from('v') }, 30_000).then(
        () => 'ok' as const,
        (error: grpc.ServiceError) => `${grpc.status[error.code]}: ${error.details}`,
      );
    // The fault: both followers frozen, so the first write waits, far below the byte bound.
    for (const id of followers) expect(c.pause(id)).toBe(true);
    const waiting = put('first');
    await new Promise((resolve) => setTimeout(resolve, 800));
    // Expected: refused at once, saying why, certainly not written.
    expect(await put('second')).toMatch(/^RESOURCE_EXHAUSTED: .*oldest of 1 waiting writes has waited \d+ ms to commit \(limit 300 ms/);

    for (const id of followers) c.resume(id);
    expect(await waiting).toBe('ok');
    // The backlog drained: writes are admitted again.
    expect(await put('third')).toBe('ok');
  });
});
