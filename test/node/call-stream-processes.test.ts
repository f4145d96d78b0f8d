import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftLogClient } from '../../src/client/index.js';
import { type CallReply, type CallRequest, RaftLogGrpcClient } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';

let cluster: ProcessCluster | null = null;
const clients: grpc.Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await cluster?.destroy();
  cluster = null;
});

type Duplex = grpc.ClientDuplexStream<CallRequest, CallReply>;

/** Sends every request on one Calls stream to `endpoint` and collects the answers (all of them, or the stream's end). */
async function callAll(endpoint: string, requests: readonly CallRequest[]): Promise<CallReply[]> {
  const client = new RaftLogGrpcClient(endpoint, grpc.credentials.createInsecure());
  clients.push(client);
  const stream = (client as unknown as { calls: () => Duplex }).calls();
  const replies: CallReply[] = [];
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (reply: CallReply) => replies.push(reply));
    stream.on('error', reject);
    stream.on('end', resolve);
  });
  for (const request of requests) stream.write(request);
  stream.end();
  await done;
  return replies;
}

describe('Calls streams on a 3-node cluster of real processes', () => {
  it('commit writes sent to the leader and to a follower (which forwards them), each answered once', async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const puts = (node: string): CallRequest[] =>
      Array.from({ length: 20 }, (_, i) => ({
        id: i + 1,
        timeoutMs: 10_000,
        call: 'put',
        put: { key: Buffer.from(`${node}-${i}`), value: Buffer.from(`v${i}`) },
      }));
    for (const node of [leader, follower]) {
      const replies = await callAll(c.addresses.get(node) as string, puts(node));
      expect(replies.map((r) => r.id).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      for (const reply of replies) {
        expect(reply.result).toBe('put');
        expect(reply.put?.leader).toBe(leader);
      }
      // Twenty different entries.
      expect(new Set(replies.map((r) => r.put?.position?.index)).size).toBe(20);
    }
    for (const node of [leader, follower]) {
      for (let i = 0; i < 20; i += 7) {
        const read = await waitFor(`${node}-${i} readable`, () =>
          c.call<{ found: boolean; value: Buffer }>(follower, 'get', { key: Buffer.from(`${node}-${i}`) }),
        );
        expect(read.found).toBe(true);
        expect(Buffer.from(read.value).toString()).toBe(`v${i}`);
      }
    }
  });

  it("carry the client library's writes (writeTransport 'calls', exactly-once) across a leader's SIGKILL", async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    // The follower first: its Calls stream forwards to the leader.
    const endpoints = [follower, ...c.ids.filter((id) => id !== follower)].map((id) => c.addresses.get(id) as string);
    const client = new RaftLogClient({ endpoints, writeTransport: 'calls', exactlyOnce: true, deadlineMs: 15_000 });
    try {
      const before = await Promise.all(Array.from({ length: 30 }, (_, i) => client.append(`before-${i}`)));
      expect(new Set(before.map((r) => r.index)).size).toBe(30);
      const swapped = await client.compareAndSwap('k', null, 'v1');
      expect(swapped.succeeded).toBe(true);

      await c.kill(leader);
      // Exactly-once writes retry across the failover until a new leader takes them: each is applied once.
      const after = await Promise.all(Array.from({ length: 30 }, (_, i) => client.append(`after-${i}`)));
      expect(new Set(after.map((r) => r.index)).size).toBe(30);
      expect(Math.min(...after.map((r) => r.index))).toBeGreaterThan(Math.max(...before.map((r) => r.index)));
      const survivor = c.ids.find((id) => id !== leader) as string;
      const log = await waitFor('the log readable on a survivor', () =>
        c.call<{ entries: { index: number; record: Buffer }[] }>(survivor, 'readLog', { fromIndex: 1, maxEntries: 1000 }),
      );
      const records = log.entries.filter((e) => e.record.length > 0).map((e) => Buffer.from(e.record).toString());
      for (const prefix of ['before', 'after']) {
        for (let i = 0; i < 30; i++) expect(records.filter((r) => r === `${prefix}-${i}`)).toHaveLength(1);
      }
    } finally {
      client.close();
    }
  });
});
