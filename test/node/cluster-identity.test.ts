/**
 * Cluster and member identity on the wire (issue 10): every batch, snapshot
 * offer and chunk carries the sender's cluster id and member incarnation; a
 * node refuses another cluster, a sender it does not know as a member, and a
 * second process claiming a member id that is still talking — and both sides
 * say so once, not once per message.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { deriveClusterId, PeerAdmission, type PeerIdentity } from '../../src/node/cluster-identity.js';
import { PeerClients } from '../../src/node/peer-clients.js';
import { bindPeerServer, createPeerService } from '../../src/node/peer-service.js';
import { PEER_CHANNEL_OPTIONS, PEER_SERVER_OPTIONS } from '../../src/node/peer-transport.js';
import { deliverMethod, raftPeerServiceDefinition } from '../../src/node/raft-proto.js';
import { createSnapshotReceiver, type ReceivedSnapshot, SnapshotSender, SnapshotTransferError } from '../../src/node/snapshot-transfer.js';
import { toWire, type WireMessageBatch } from '../../src/node/wire-codec.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { capturingLogger, type LogLine } from '../support/capturing-logger.js';
import { waitFor } from '../support/wait-for.js';

const CLUSTER = 'alpha';
const ALPHA = deriveClusterId(CLUSTER, ['n1', 'n2', 'n3']);
const WARN = 40;

const warnings = (lines: readonly LogLine[], msg: string) => lines.filter((line) => line.level === WARN && line.msg === msg);
const incarnation = () => randomBytes(8).toString('hex');

const heartbeat = (from: NodeId, to: NodeId, leaderCommit: number): Message => ({
  from,
  to,
  term: 1,
  type: 'Heartbeat',
  leaderCommit,
  readContext: null,
});

describe('deriveClusterId: what founding members agree on without talking', () => {
  it('is 16 hex digits, the same for any order of the founding ids, and differs with the name or the members', () => {
    expect(ALPHA).toMatch(/^[0-9a-f]{16}$/);
    expect(deriveClusterId(CLUSTER, ['n3', 'n1', 'n2', 'n1'])).toBe(ALPHA);
    expect(deriveClusterId('beta', ['n1', 'n2', 'n3'])).not.toBe(ALPHA);
    expect(deriveClusterId(CLUSTER, ['n1', 'n2', 'n3', 'n4'])).not.toBe(ALPHA);
    // Fields cannot run into each other: "a" + ["b,c"] is not "a,b" + ["c"].
    expect(deriveClusterId('a', ['b,c'])).not.toBe(deriveClusterId('a,b', ['c']));
    expect(() => deriveClusterId('', ['n1'])).toThrow(/cluster name is empty/);
    expect(() => deriveClusterId(CLUSTER, [])).toThrow(/no founding members/);
  });
});

describe('PeerAdmission: who may talk to node n2', () => {
  function admission(options: { members?: Set<NodeId>; quietMs?: number } = {}) {
    const { logger, lines } = capturingLogger();
    let clock = 0;
    const members = options.members ?? new Set(['n1', 'n2', 'n3']);
    const gate = new PeerAdmission({
      self: 'n2',
      cluster: CLUSTER,
      clusterId: ALPHA,
      isKnownMember: (id) => members.has(id),
      quietMs: options.quietMs ?? 1_000,
      now: () => clock,
      logger,
    });
    return { gate, lines, members, advance: (ms: number) => void (clock += ms) };
  }
  const claim = (from: NodeId, memberIncarnation: string, clusterId = ALPHA, cluster = CLUSTER) => ({ from, cluster, clusterId, memberIncarnation });

  it('takes a member of its cluster', () => {
    const { gate } = admission();
    expect(gate.check(claim('n1', incarnation()), 'batch')).toBeNull();
  });

  it("refuses another cluster's id or name with FAILED_PRECONDITION, naming what the sender claimed and never its own cluster", () => {
    const { gate } = admission();
    const beta = deriveClusterId('beta', ['n1', 'n2', 'n3']);
    const otherId = gate.check(claim('n3', incarnation(), beta), 'batch');
    expect(otherId?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(otherId?.details).toBe(
      `n3 sent a batch for cluster "alpha" (cluster id ${beta}), which is not node n2's: ` +
        `n3's data directory or flags belong to another cluster, or its peer list points at the wrong one`,
    );
    const otherName = gate.check(claim('n3', incarnation(), beta, 'beta'), 'snapshot offer');
    expect(otherName?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(otherName?.details).toMatch(/^n3 sent a snapshot offer for cluster "beta" \(cluster id [0-9a-f]{16}\), which is not node n2's/);
    // What an outsider would need to forge a message that passes: the cluster's real name and id.
    expect(otherId?.details).not.toContain(ALPHA);
    expect(otherName?.details).not.toContain(ALPHA);
    expect(otherName?.details).not.toContain('"alpha"');
  });

  it('refuses a message without a cluster id or incarnation (INVALID_ARGUMENT)', () => {
    const { gate } = admission();
    const noId = gate.check({ from: 'n1', cluster: CLUSTER, memberIncarnation: incarnation() }, 'batch');
    expect(noId?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(noId?.details).toMatch(/batch from n1 carries no valid cluster id/);
    const noIncarnation = gate.check({ from: 'n1', cluster: CLUSTER, clusterId: ALPHA, memberIncarnation: '' }, 'batch');
    expect(noIncarnation?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(noIncarnation?.details).toMatch(/carries no valid member incarnation/);
  });

  it('refuses a sender that is not a member as it knows them now, and takes it once it is one', () => {
    const { gate, members } = admission();
    const unknown = gate.check(claim('n4', incarnation()), 'batch');
    expect(unknown?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(unknown?.details).toMatch(/^n4 is not a member of the cluster as node n2 knows it/);
    expect(unknown?.details).not.toContain(ALPHA);
    members.add('n4');
    expect(gate.check(claim('n4', incarnation()), 'batch')).toBeNull();
  });

  it('two incarnations of n3 talking at once: the newcomer is refused with the same details each time, logged once', () => {
    const { gate, lines, advance } = admission({ quietMs: 1_000 });
    const original = incarnation();
    const duplicate = incarnation();
    expect(gate.check(claim('n3', original), 'batch')).toBeNull();
    const refusals = [];
    for (let i = 0; i < 5; i++) {
      advance(300);
      refusals.push(gate.check(claim('n3', duplicate), 'batch'));
      // The original keeps talking, so the newcomer never gets in.
      expect(gate.check(claim('n3', original), 'batch')).toBeNull();
    }
    expect(refusals.every((refusal) => refusal?.code === grpc.status.FAILED_PRECONDITION)).toBe(true);
    expect(new Set(refusals.map((refusal) => refusal?.details)).size).toBe(1);
    expect(refusals[0]?.details).toMatch(
      new RegExp(`^two processes claim to be n3: node n2 hears from n3 with another member incarnation than ${duplicate}`),
    );
    // The incarnation n2 knows the real n3 by is what a forger would need: it stays in n2's log.
    expect(refusals[0]?.details).not.toContain(original);
    const logged = warnings(lines, 'two processes claim to be n3');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ event: 'duplicate-member', member: 'n3', heard: original, refused: duplicate });
  });

  it('n3 back on a wiped data dir (a new incarnation after the old one went silent) is taken, with a warning', () => {
    const { gate, lines, advance } = admission({ quietMs: 1_000 });
    const before = incarnation();
    const after = incarnation();
    expect(gate.check(claim('n3', before), 'batch')).toBeNull();
    advance(999);
    expect(gate.check(claim('n3', after), 'batch')?.code).toBe(grpc.status.FAILED_PRECONDITION);
    advance(1);
    expect(gate.check(claim('n3', after), 'batch')).toBeNull();
    expect(
      warnings(lines, `n3 is back with another data directory (incarnation ${before} -> ${after}): its data was wiped or replaced`),
    ).toHaveLength(1);
    // Now the old incarnation is the newcomer.
    expect(gate.check(claim('n3', before), 'batch')?.details).toMatch(/^two processes claim to be n3/);
  });
});

// ---------------------------------------------------------------------------
// Over gRPC, with the peer service and the snapshot receiver as a node composes them

const servers: grpc.Server[] = [];
const closers: (() => Promise<void>)[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  for (const server of servers.splice(0)) server.forceShutdown();
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-identity-'));
  dirs.push(dir);
  return dir;
}

/** Node n2 of cluster alpha (members n1..n3, or `members`), receiving Raft batches and snapshots. */
async function startN2(members: readonly NodeId[] = ['n1', 'n2', 'n3']) {
  const { logger, lines } = capturingLogger();
  const admission = new PeerAdmission({ self: 'n2', cluster: CLUSTER, clusterId: ALPHA, isKnownMember: (id) => members.includes(id), logger });
  const received: Message[] = [];
  const snapshots: ReceivedSnapshot[] = [];
  const incomingDir = join(await tempDir(), 'incoming');
  const server = new grpc.Server(PEER_SERVER_OPTIONS);
  server.addService(raftPeerServiceDefinition, {
    ...createPeerService({ self: 'n2', cluster: CLUSTER, admission, logger, onMessages: (_from, messages) => void received.push(...messages) }),
    ...createSnapshotReceiver({
      self: 'n2',
      cluster: CLUSTER,
      admission,
      incomingDir,
      logger,
      onReceived: (snapshot) => void snapshots.push(snapshot),
    }),
  });
  servers.push(server);
  const port = await bindPeerServer(server, '127.0.0.1:0');
  return { address: `127.0.0.1:${port}`, lines, received, snapshots, incomingDir };
}

function sender(self: NodeId, address: string, identity: PeerIdentity) {
  const { logger, lines } = capturingLogger();
  const transport = new PeerClients({ self, cluster: CLUSTER, identity, peers: new Map([['n2', address]]), logger });
  closers.push(() => transport.close());
  return { transport, lines, refusedCalls: () => transport.stats()[0]?.failedCalls ?? 0 };
}

/** Sends heartbeats from `from` until `count` streams were refused, as Raft would keep sending. */
async function untilRefused(
  link: ReturnType<typeof sender>,
  from: NodeId,
  count: number,
  send: () => Message = () => heartbeat(from, 'n2', 1),
): Promise<void> {
  await waitFor(`${count} refused calls from ${from}`, () => {
    link.transport.send([send()]);
    return link.refusedCalls() >= count ? true : undefined;
  });
}

/** What a node the cluster does not know sends first: it campaigns. */
const preVote = (from: NodeId, to: NodeId): Message => ({
  from,
  to,
  term: 2,
  type: 'VoteRequest',
  preVote: true,
  lastLogIndex: 0,
  lastLogTerm: 0,
  leadershipTransfer: false,
});

describe('the peer service of a node with an identity', () => {
  it('takes batches of its own cluster, carrying the id and incarnation', async () => {
    const n2 = await startN2();
    const n1 = sender('n1', n2.address, { clusterId: ALPHA, incarnation: incarnation() });
    n1.transport.send([heartbeat('n1', 'n2', 7)]);
    await waitFor('the heartbeat', () => (n2.received.length === 1 ? true : undefined));
    expect(n2.received[0]).toMatchObject({ from: 'n1', type: 'Heartbeat', leaderCommit: 7 });
  });

  it("a node with another cluster's data: refused on every retry, and each side logs it once", async () => {
    const n2 = await startN2();
    const beta = deriveClusterId('beta', ['n1', 'n2', 'n3']);
    const intruder = sender('n3', n2.address, { clusterId: beta, incarnation: incarnation() });
    await untilRefused(intruder, 'n3', 3);

    expect(n2.received).toEqual([]);
    const refused = warnings(intruder.lines, 'peer refused messages');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ event: 'peer-refused', peer: 'n2', code: 'FAILED_PRECONDITION' });
    expect(String(refused[0]?.error)).toContain(`n3 sent a batch for cluster "alpha" (cluster id ${beta}), which is not node n2's`);
    const refusing = warnings(n2.lines, 'refused a batch from a peer');
    expect(refusing).toHaveLength(1);
    expect(refusing[0]).toMatchObject({ event: 'peer-refused', from: 'n3', code: 'FAILED_PRECONDITION' });
  });

  it('a node the cluster does not know (n4): its campaign is refused and logged once by both sides, not silently dropped', async () => {
    const n2 = await startN2();
    const n4 = sender('n4', n2.address, { clusterId: ALPHA, incarnation: incarnation() });
    await untilRefused(n4, 'n4', 3, () => preVote('n4', 'n2'));
    expect(n2.received).toEqual([]);
    expect(warnings(n4.lines, 'peer refused messages')).toHaveLength(1);
    expect(String(warnings(n4.lines, 'peer refused messages')[0]?.error)).toMatch(/^n4 is not a member of the cluster as node n2 knows it/);
    expect(warnings(n2.lines, 'refused a batch from a peer')).toHaveLength(1);
  });

  it("a leader's traffic from a node this one's configuration does not list yet is taken (the core judges it by its term)", async () => {
    const n2 = await startN2();
    const newer = sender('n4', n2.address, { clusterId: ALPHA, incarnation: incarnation() });
    newer.transport.send([heartbeat('n4', 'n2', 3)]);
    await waitFor("n4's heartbeat delivered", () => (n2.received.length > 0 ? true : undefined));
    expect(n2.received[0]).toMatchObject({ from: 'n4', type: 'Heartbeat', leaderCommit: 3 });
    expect(newer.refusedCalls()).toBe(0);
  });

  it('two processes claiming n1: the one that keeps talking is served, the other is refused, both sides log it once', async () => {
    const n2 = await startN2();
    const original = sender('n1', n2.address, { clusterId: ALPHA, incarnation: incarnation() });
    original.transport.send([heartbeat('n1', 'n2', 1)]);
    await waitFor('the original n1 heard', () => (n2.received.length > 0 ? true : undefined));

    const duplicate = sender('n1', n2.address, { clusterId: ALPHA, incarnation: incarnation() });
    let commit = 1;
    await waitFor('3 refused calls from the duplicate', () => {
      original.transport.send([heartbeat('n1', 'n2', ++commit)]);
      duplicate.transport.send([heartbeat('n1', 'n2', 1_000_000 + commit)]);
      return duplicate.refusedCalls() >= 3 ? true : undefined;
    });

    // Only the original's heartbeats got through.
    expect(n2.received.every((message) => message.type === 'Heartbeat' && message.leaderCommit < 1_000_000)).toBe(true);
    expect(original.transport.stats()[0]?.state).toBe('ok');
    expect(warnings(duplicate.lines, 'peer refused messages')).toHaveLength(1);
    expect(String(warnings(duplicate.lines, 'peer refused messages')[0]?.error)).toMatch(/two processes claim to be n1/);
    expect(warnings(n2.lines, 'two processes claim to be n1')).toHaveLength(1);
  });

  it('a batch without a cluster id (a tool, or a node from before cluster ids) is refused with INVALID_ARGUMENT', async () => {
    const n2 = await startN2();
    const client = new grpc.Client(n2.address, grpc.credentials.createInsecure(), PEER_CHANNEL_OPTIONS);
    closers.push(async () => client.close());
    const batch: WireMessageBatch = { from: 'n1', to: 'n2', cluster: CLUSTER, messages: [toWire(heartbeat('n1', 'n2', 0))] };
    const error = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest(
        deliverMethod.path,
        deliverMethod.requestSerialize,
        deliverMethod.responseDeserialize,
        batch,
        { deadline: Date.now() + 10_000 },
        (e) => resolve(e),
      ),
    );
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/batch from n1 carries no valid cluster id/);
    expect(n2.received).toEqual([]);
  });
});

describe('snapshot transfers between nodes with identities', () => {
  async function snapshotFile() {
    const content = randomBytes(300 * 1024);
    const path = join(await tempDir(), 'snapshot.snap');
    await writeFile(path, content);
    const sha256 = createHash('sha256').update(content).digest('hex');
    return { to: 'n2', term: 4, meta: { index: 50, term: 3, config: { voters: ['n1', 'n2', 'n3'] } }, path, bytes: content.byteLength, sha256 };
  }

  function snapshotSender(address: string, identity: PeerIdentity) {
    const { logger, lines } = capturingLogger();
    const made = new SnapshotSender({ self: 'n1', cluster: CLUSTER, identity, logger, addressOf: () => address, chunkBytes: 64 * 1024 });
    closers.push(() => made.close());
    return { sender: made, lines };
  }

  it('of the same cluster: the offer and every chunk carry the identity, and the file arrives', async () => {
    const n2 = await startN2();
    const { sender: n1 } = snapshotSender(n2.address, { clusterId: ALPHA, incarnation: incarnation() });
    const sent = await n1.send(await snapshotFile());
    expect(sent.chunks).toBe(5);
    expect(n2.snapshots).toHaveLength(1);
  });

  it('from a node of another cluster: the offer is refused, nothing is staged, and a retry is logged at most once on each side', async () => {
    const n2 = await startN2();
    const beta = deriveClusterId('beta', ['n1', 'n2', 'n3']);
    const { sender: intruder, lines } = snapshotSender(n2.address, { clusterId: beta, incarnation: incarnation() });
    const snapshot = await snapshotFile();
    for (let attempt = 0; attempt < 2; attempt++) {
      const error = await intruder.send(snapshot).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SnapshotTransferError);
      expect((error as SnapshotTransferError).code).toBe(grpc.status.FAILED_PRECONDITION);
      expect((error as Error).message).toContain(`n1 sent a snapshot offer for cluster "alpha" (cluster id ${beta}), which is not node n2's`);
      expect((error as Error).message).not.toContain(ALPHA);
    }
    expect(warnings(lines, 'snapshot transfer refused')).toHaveLength(1);
    expect(warnings(n2.lines, 'refused a snapshot transfer')).toHaveLength(1);
    expect(n2.snapshots).toEqual([]);
    expect(await readdir(n2.incomingDir).catch(() => [])).toEqual([]);
  });
});
