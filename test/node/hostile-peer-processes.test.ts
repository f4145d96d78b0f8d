import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessCluster } from '../support/process-cluster.js';
import { sendRawBytes } from '../support/raw-unary-call.js';
import { waitFor } from '../support/wait-for.js';

// The peer contract as any gRPC tool would load it from the proto file: the forger needs nothing of ours.
const raftProto = loadSync(fileURLToPath(new URL('../../proto/raftlog/v1/raft.proto', import.meta.url)), {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const PeerClient = grpc.makeGenericClientConstructor(raftProto['raftlog.v1.RaftPeer'] as grpc.ServiceDefinition, 'RaftPeer');

interface BoundIdentity {
  readonly clusterId: string;
  readonly incarnation: string;
}

/** What a node wrote about its data dir's identity at first start (the forger read it from a log file it should not see). */
async function identityOf(cluster: ProcessCluster, id: string): Promise<BoundIdentity> {
  const lines = (await readFile(join(cluster.dir, `${id}.log`), 'utf8')).split('\n');
  for (const line of lines) {
    if (!line.includes('"identity-bound"')) continue;
    const { clusterId, incarnation } = JSON.parse(line) as BoundIdentity;
    return { clusterId, incarnation };
  }
  throw new Error(`no identity-bound line in ${id}'s log`);
}

const deliverMethod = (raftProto['raftlog.v1.RaftPeer'] as unknown as Record<string, { requestSerialize: (value: object) => Buffer }>).Deliver;

/** Sends one batch to a node's peer service, as a forger with the proto file would; resolves with the error, if any. */
function deliver(address: string, batch: object): Promise<grpc.ServiceError | null> {
  if (deliverMethod === undefined) throw new Error('raft.proto has no RaftPeer.Deliver');
  const client = new PeerClient(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/raftlog.v1.RaftPeer/Deliver',
      (value: object) => deliverMethod.requestSerialize(value),
      (bytes: Buffer) => bytes,
      batch,
      { deadline: Date.now() + 10_000 },
      (error) => {
        client.close();
        resolve(error ?? null);
      },
    );
  });
}

describe('a process that impersonates the leader on the peer port (no TLS)', () => {
  let cluster: ProcessCluster | undefined;
  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
  });

  it('a heartbeat with term 2^53 - 1 is refused as invalid input: the term stays, the cluster keeps its leader', { timeout: 180_000 }, async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const before = await c.status(follower);
    const { clusterId, incarnation } = await identityOf(c, leader);

    const error = await deliver(c.address(follower), {
      from: leader,
      to: follower,
      cluster: 'raftlog',
      clusterId,
      memberIncarnation: incarnation,
      messages: [{ term: 2 ** 53 - 1, heartbeat: { leaderCommit: 0, readContext: 0 } }],
    });

    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/term is 9007199254740991, above 281474976710656/);
    const after = await c.status(follower);
    expect(after.term).toBe(before.term);
    expect(await c.waitForLeader()).toBe(leader);
  });

  it('garbage on the peer service is INVALID_ARGUMENT saying what is wrong, not INTERNAL, and changes nothing', { timeout: 180_000 }, async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const before = await c.status(follower);
    for (const [method, bytes] of [
      ['Deliver', Buffer.from([0x00, 0x01])],
      ['Deliver', Buffer.from('not a protobuf message at all')],
      ['SnapshotOffer', Buffer.from([0x0b, 0x0c])],
    ] as const) {
      const client = new grpc.Client(c.address(follower), grpc.credentials.createInsecure());
      const error = await sendRawBytes(client, `/raftlog.v1.RaftPeer/${method}`, bytes).finally(() => client.close());
      expect(error?.code, `${method}: ${error?.details}`).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error?.details).toMatch(/cannot read a (batch|snapshot offer) from .*: /);
    }
    const after = await c.status(follower);
    expect({ term: after.term, lastLogIndex: after.lastLogIndex }).toEqual({ term: before.term, lastLogIndex: before.lastLogIndex });
    expect(c.processes.get(follower)?.exitCode).toBeNull();
  });

  it('a heartbeat telling a follower to commit past the end of its log stops the follower (fail-stop), naming the lost log', {
    timeout: 180_000,
  }, async () => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const status = await c.status(follower);
    const { clusterId, incarnation } = await identityOf(c, leader);

    // What a follower sees when its log lost acknowledged entries: the leader only commits on it what it acknowledged.
    await deliver(c.address(follower), {
      from: leader,
      to: follower,
      cluster: 'raftlog',
      clusterId,
      memberIncarnation: incarnation,
      messages: [{ term: status.term, heartbeat: { leaderCommit: status.lastLogIndex + 1000, readContext: 0 } }],
    });

    const child = c.processes.get(follower);
    expect(await c.waitForExit(follower, 60_000)).toBe(true);
    expect(child?.exitCode).toBe(1);
    const log = await readFile(join(c.dir, `${follower}.log`), 'utf8');
    const fatal = log.split('\n').find((line) => line.includes('"event":"fatal"'));
    expect(fatal).toMatch(/was the log corrupted, truncated, or lost\?/);
    expect(fatal).toMatch(new RegExp(`stepping Heartbeat from ${leader} in term ${status.term}`));
    // The other two keep serving.
    await waitFor('a leader among the two that are left', async () => ((await c.status(leader)).leader !== '' ? true : undefined), 60_000);
  });
});
