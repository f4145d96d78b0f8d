import type { ServiceError } from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftLogClient } from '../../src/client/index.js';
import type { ReadLogReply, StatusReply, WriteReply } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';

const b = (s: string) => Buffer.from(s);
let cluster: ProcessCluster | null = null;

afterEach(async () => {
  await cluster?.destroy();
  cluster = null;
});

describe('a 3-node cluster of real processes', () => {
  it('elects a leader, serves writes through any node, and survives SIGKILL of the leader', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;

    const first = await c.call<WriteReply>(follower, 'put', { key: b('k'), value: b('v1') });
    expect(first.leader).toBe(leader);
    const read = await c.call<{ found: boolean; value: Buffer }>(follower, 'get', { key: b('k') });
    expect(read.found).toBe(true);
    expect(Buffer.from(read.value).toString()).toBe('v1');

    await c.kill(leader);
    const survivors = c.ids.filter((id) => id !== leader);
    const next = await c.waitForLeader(survivors);
    expect(next).not.toBe(leader);
    const after = await waitFor('a write after failover', () => c.call<WriteReply>(survivors[0] as string, 'put', { key: b('k'), value: b('v2') }));
    expect(after.position.index).toBeGreaterThan(first.position.index);

    // The killed node restarts from its data directory and catches up: equal digests at equal applied index.
    c.startNode(leader);
    await waitFor('all three nodes at the same applied index with equal digests', async () => {
      const statuses = await Promise.all(c.ids.map((id) => c.status(id)));
      const [s0] = statuses as [StatusReply];
      return statuses.every((s) => s.appliedIndex === s0.appliedIndex && s.digest === s0.digest) && s0.appliedIndex >= after.position.index;
    });
  });

  it('with two of three down, a write is never acknowledged: UNAVAILABLE or DEADLINE_EXCEEDED', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const others = c.ids.filter((id) => id !== leader);
    await c.kill(others[0] as string);
    await c.kill(others[1] as string);
    const error = (await c.call(leader, 'put', { key: b('x'), value: b('y') }, 2_000).catch((e: unknown) => e)) as ServiceError;
    expect([grpcStatus.UNAVAILABLE, grpcStatus.DEADLINE_EXCEEDED]).toContain(error.code);
  });

  it('rejects bad input with INVALID_ARGUMENT and a message', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const cases: [string, object, RegExp][] = [
      ['put', { key: b(''), value: b('v') }, /key must not be empty/],
      ['put', { key: Buffer.alloc(5000), value: b('v') }, /key of 5000 bytes exceeds the limit of 4096/],
      ['put', { key: b('k'), value: Buffer.alloc(1024 * 1024 + 1) }, /value of 1048577 bytes exceeds/],
      ['get', { key: b('') }, /key must not be empty/],
    ];
    for (const [method, request, message] of cases) {
      const error = (await c.call(leader, method, request).catch((e: unknown) => e)) as ServiceError;
      expect(error.code).toBe(grpcStatus.INVALID_ARGUMENT);
      expect(error.details).toMatch(message);
    }
  });

  it("ReadLog gives each node's committed log: the same entries everywhere, each append at its acknowledged index, in pages", async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const put = await c.call<WriteReply>(leader, 'put', { key: b('k'), value: b('v') });
    const appends: WriteReply[] = [];
    for (const record of ['r1', 'r2', 'r3']) appends.push(await c.call<WriteReply>(follower, 'append', { record: b(record) }));
    const cas = await c.call<WriteReply>(leader, 'compareAndSwap', { key: b('k'), expected: b('v'), value: b('w') });
    const del = await c.call<WriteReply>(leader, 'delete', { key: b('k') });

    await waitFor('every node to have committed the delete', async () =>
      (await Promise.all(c.ids.map((id) => c.status(id)))).every((s) => s.commitIndex >= del.position.index),
    );
    const logs = await Promise.all(c.ids.map((id) => c.call<ReadLogReply>(id, 'readLog', { fromIndex: 0, maxEntries: 0 })));
    for (const log of logs) {
      expect(log.entries.map((e) => e.index)).toEqual(Array.from({ length: log.commitIndex }, (_, i) => i + 1));
      expect(log.entries.slice(0, del.position.index)).toEqual((logs[0] as ReadLogReply).entries.slice(0, del.position.index));
    }
    const byIndex = new Map((logs[0] as ReadLogReply).entries.map((e) => [e.index, e]));
    expect(byIndex.get(put.position.index)).toMatchObject({ kind: 'LOG_ENTRY_KIND_PUT', key: b('k') });
    appends.forEach((reply, i) => {
      const entry = byIndex.get(reply.position.index);
      expect(entry?.kind).toBe('LOG_ENTRY_KIND_APPEND');
      expect(Buffer.from(entry?.record ?? []).toString()).toBe(`r${i + 1}`);
      expect(entry?.term).toBe(reply.position.term);
    });
    expect(byIndex.get(cas.position.index)?.kind).toBe('LOG_ENTRY_KIND_COMPARE_AND_SWAP');
    expect(byIndex.get(del.position.index)?.kind).toBe('LOG_ENTRY_KIND_DELETE');
    expect(byIndex.get(1)?.kind).toBe('LOG_ENTRY_KIND_NO_COMMAND');

    // Pages: two entries at a time from index 2, and nothing past the commit index.
    const page = await c.call<ReadLogReply>(follower, 'readLog', { fromIndex: 2, maxEntries: 2 });
    expect(page.entries.map((e) => e.index)).toEqual([2, 3]);
    expect(page.node).toBe(follower);
    const past = await c.call<ReadLogReply>(follower, 'readLog', { fromIndex: page.commitIndex + 1, maxEntries: 10 });
    expect(past.entries).toEqual([]);

    // The client library reads the same log, from the node it is asked to.
    const client = new RaftLogClient({ endpoints: c.ids.map((id) => c.address(id)) });
    try {
      const viaClient = await client.readLog(appends[0]!.position.index, { endpoint: c.address(follower), maxEntries: 3 });
      expect(viaClient.node).toBe(follower);
      expect(viaClient.entries.map((e) => [e.kind, Buffer.from(e.record ?? []).toString()])).toEqual([
        ['append', 'r1'],
        ['append', 'r2'],
        ['append', 'r3'],
      ]);
    } finally {
      client.close();
    }
  });
});
