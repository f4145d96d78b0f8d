import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Failpoints } from '../../src/node/failpoints.js';
import { PeerClients, type PeerClientsOptions } from '../../src/node/peer-clients.js';
import { bindPeerServer, startPeerServer } from '../../src/node/peer-service.js';
import { PEER_CHANNEL_OPTIONS } from '../../src/node/peer-transport.js';
import { deliverMethod, raftPeerServiceDefinition } from '../../src/node/raft-proto.js';
import { toWire, type WireMessageBatch, type WireRaftMessage } from '../../src/node/wire-codec.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { waitFor } from '../support/wait-for.js';

const CLUSTER = 'test-cluster';

const INFO = 30;
const WARN = 40;

/** A port nothing listens on right now (the OS picks it; freed before returning). */
function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      probe.close(() => resolve(address.port));
    });
  });
}

const ack = (from: NodeId, to: NodeId, matchIndex: number): Message => ({
  from,
  to,
  term: 1,
  type: 'AppendResponse',
  success: true,
  matchIndex,
  rejectedIndex: 0,
  hintIndex: 0,
  hintTerm: 0,
});

const heartbeat = (from: NodeId, to: NodeId, leaderCommit: number): Message => ({
  from,
  to,
  term: 1,
  type: 'Heartbeat',
  leaderCommit,
  readContext: null,
});

/** What a node received, per sender, and the size of each batch. */
class Inbox {
  readonly bySender = new Map<NodeId, Message[]>();
  readonly batchSizes: number[] = [];

  take = (from: NodeId, messages: Message[]): void => {
    this.batchSizes.push(messages.length);
    const list = this.bySender.get(from) ?? [];
    list.push(...messages);
    this.bySender.set(from, list);
  };

  from(sender: NodeId): Message[] {
    return this.bySender.get(sender) ?? [];
  }
}

// Everything a test opens, closed after it whatever happened.
const servers: grpc.Server[] = [];
const clients: PeerClients[] = [];
const rawClients: grpc.Client[] = [];

afterEach(async () => {
  const closing = clients.splice(0).map((client) => client.close());
  for (const client of rawClients.splice(0)) client.close();
  for (const server of servers.splice(0)) server.forceShutdown();
  await Promise.all(closing);
});

async function startNode(id: NodeId, options: { port?: number; cluster?: string; failpoints?: Failpoints } = {}) {
  const { logger, lines } = capturingLogger();
  const inbox = new Inbox();
  const { server, port } = await startPeerServer(`127.0.0.1:${options.port ?? 0}`, {
    self: id,
    cluster: options.cluster ?? CLUSTER,
    onMessages: inbox.take,
    logger,
    failpoints: options.failpoints ?? null,
  });
  servers.push(server);
  return { id, server, port, address: `127.0.0.1:${port}`, inbox, lines };
}

function peerClients(self: NodeId, peers: Record<NodeId, string>, extra: Partial<PeerClientsOptions> = {}) {
  const { logger, lines } = capturingLogger();
  const transport = new PeerClients({
    self,
    cluster: CLUSTER,
    peers: new Map(Object.entries(peers)),
    logger,
    ...extra,
  });
  clients.push(transport);
  return { transport, lines };
}

function rawDeliver(address: string, batch: WireMessageBatch): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), PEER_CHANNEL_OPTIONS);
  rawClients.push(client);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      deliverMethod.path,
      deliverMethod.requestSerialize,
      deliverMethod.responseDeserialize,
      batch,
      { deadline: Date.now() + 10_000 },
      (error) => resolve(error),
    );
  });
}

const matchIndexes = (messages: Message[]) => messages.map((message) => (message.type === 'AppendResponse' ? message.matchIndex : -1));

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

describe('peer transport over gRPC on loopback', () => {
  it('three nodes exchange messages both ways, each link in order', async () => {
    const nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => startNode(id)));
    const addresses = Object.fromEntries(nodes.map((node) => [node.id, node.address]));
    const transports = new Map(nodes.map((node) => [node.id, peerClients(node.id, addresses).transport]));

    // Interleaved sends from every node to every other, spread over several turns of the event loop.
    const perLink = 600;
    for (let round = 0; round < 6; round += 1) {
      for (const [from, transport] of transports) {
        const messages: Message[] = [];
        for (const to of transports.keys()) {
          if (to === from) continue;
          for (const i of range(round * 100 + 1, 100)) messages.push(ack(from, to, i));
        }
        transport.send(messages);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }

    for (const receiver of nodes) {
      for (const sender of transports.keys()) {
        if (sender === receiver.id) continue;
        await waitFor(`${perLink} messages ${sender} -> ${receiver.id}`, () => (receiver.inbox.from(sender).length >= perLink ? true : undefined));
        const received = receiver.inbox.from(sender);
        expect(matchIndexes(received)).toEqual(range(1, perLink));
        expect(received.every((message) => message.from === sender && message.to === receiver.id)).toBe(true);
      }
    }
    for (const transport of transports.values()) {
      // The receiver takes a batch before it replies: the sender's counters catch up a moment later.
      await waitFor('senders to count every reply', () => (transport.stats().every((link) => link.sentMessages === perLink) ? true : undefined));
      for (const link of transport.stats()) {
        expect(link).toMatchObject({ state: 'ok', sentMessages: perLink, failedCalls: 0, droppedFailed: 0 });
        // 6 send() calls per link, each written as one batch.
        expect(link.sentBatches).toBeLessThanOrEqual(6);
      }
    }
  });

  it('batches what queued in one turn, up to maxBatchMessages', async () => {
    const n2 = await startNode('n2');
    const { transport } = peerClients('n1', { n2: n2.address }, { maxBatchMessages: 50 });
    const total = 2_000;
    for (let i = 1; i <= total; i += 1) {
      transport.send([ack('n1', 'n2', i)]);
      if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor('all messages', () => (n2.inbox.from('n1').length === total ? true : undefined));
    expect(matchIndexes(n2.inbox.from('n1'))).toEqual(range(1, total));
    expect(Math.max(...n2.inbox.batchSizes)).toBeLessThanOrEqual(50);
    expect(n2.inbox.batchSizes.length).toBeLessThan(total / 10);
  });

  it('failpoints in the transport: peer-send loses or holds what a node sends, peer-receive loses what it gets', async () => {
    const quiet = pino({ level: 'silent' });
    const sending = new Failpoints(quiet);
    const receiving = new Failpoints(quiet);
    const n2 = await startNode('n2', { failpoints: receiving });
    const { transport } = peerClients('n1', { n2: n2.address }, { failpoints: sending });
    const heard = () => matchIndexes(n2.inbox.from('n1'));

    // A node that cannot send (a one-way cut): its messages are lost, not delivered late.
    sending.set('peer-send', 'error(cut)');
    for (let i = 1; i <= 5; i += 1) transport.send([ack('n1', 'n2', i)]);
    sending.set('peer-send', 'off');
    transport.send([ack('n1', 'n2', 6)]);
    await waitFor('the message sent after the cut healed', () => (heard().includes(6) ? true : undefined));
    expect(heard()).toEqual([6]);

    // A slow link: held for the delay, then delivered in the order sent.
    sending.set('peer-send', 'delay(300)');
    const sentAt = Date.now();
    for (let i = 7; i <= 12; i += 1) transport.send([ack('n1', 'n2', i)]);
    await waitFor('the delayed messages', () => (heard().includes(12) ? true : undefined));
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(290);
    expect(heard()).toEqual([6, ...range(7, 6)]);
    sending.set('peer-send', 'off');

    // A node that cannot hear (the other one-way cut): batches reach it and are lost there.
    receiving.set('peer-receive', 'error(cut)');
    transport.send([ack('n1', 'n2', 13)]);
    await waitFor('n2 to lose the batch', () => n2.lines.some((line) => line.event === 'failpoint-lost'));
    receiving.set('peer-receive', 'off');
    transport.send([ack('n1', 'n2', 14)]);
    await waitFor('the batch after the heal', () => (heard().includes(14) ? true : undefined));
    expect(heard()).toEqual([6, ...range(7, 6), 14]);
  });

  it('a failpoint with a chance acts on about that share of hits (a lossy link)', () => {
    let draws = 0;
    // Draws 0.00, 0.01, ... 0.99 in turn: exactly 25 of 100 hits fall under 25%.
    const failpoints = new Failpoints(pino({ level: 'silent' }), undefined, false, false, () => (draws++ % 100) / 100);
    failpoints.set('peer-receive', '25%error(lost)');
    let lost = 0;
    for (let i = 0; i < 100; i += 1) {
      try {
        failpoints.hitNow('peer-receive');
      } catch {
        lost += 1;
      }
    }
    expect(lost).toBe(25);
  });

  it('carries appends with entries, data intact', async () => {
    const n2 = await startNode('n2');
    const { transport } = peerClients('n1', { n2: n2.address });
    const big = new Uint8Array(512 * 1024).map((_, i) => i % 251);
    const append: Message = {
      from: 'n1',
      to: 'n2',
      term: 3,
      type: 'AppendRequest',
      prevLogIndex: 0,
      prevLogTerm: 0,
      entries: [
        { index: 1, term: 3, kind: 'noop', data: new Uint8Array() },
        { index: 2, term: 3, kind: 'command', data: big },
      ],
      leaderCommit: 0,
    };
    transport.send([append, append, append, append, append, append, append, append]);
    await waitFor('8 appends', () => (n2.inbox.from('n1').length === 8 ? true : undefined));
    // Compared as Buffers: a deep equality over half a million array elements takes seconds.
    const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
    const withoutData = (message: Message) =>
      message.type === 'AppendRequest' ? { ...message, entries: message.entries.map(({ data: _data, ...entry }) => entry) } : message;
    for (const message of n2.inbox.from('n1')) {
      expect(withoutData(message)).toEqual(withoutData(append));
      if (message.type !== 'AppendRequest') throw new Error('expected an append');
      expect(message.entries.map((entry) => entry.data.byteLength)).toEqual([0, big.byteLength]);
      expect(sameBytes(message.entries[1]?.data ?? new Uint8Array(), big)).toBe(true);
    }
  });

  describe('commit notices (appends without entries) wait for the next append to the same follower', () => {
    const append = (prevLogIndex: number, entries: number, leaderCommit: number, commitOnly = false): Message => ({
      from: 'n1',
      to: 'n2',
      term: 2,
      type: 'AppendRequest',
      prevLogIndex,
      prevLogTerm: 2,
      entries: Array.from({ length: entries }, (_, i) => ({
        index: prevLogIndex + 1 + i,
        term: 2,
        kind: 'command' as const,
        data: new Uint8Array([i]),
      })),
      leaderCommit,
      ...(commitOnly ? { commitOnly: true as const } : {}),
    });
    /** What n2 heard from n1, as (prevLogIndex, entries, commit) for appends and the type for the rest. */
    const heard = (inbox: Inbox) =>
      inbox.from('n1').map((m) => (m.type === 'AppendRequest' ? `append ${m.prevLogIndex}+${m.entries.length} commit ${m.leaderCommit}` : m.type));

    it("the next write's append carries the commit index, so the notice is never sent", async () => {
      const n2 = await startNode('n2');
      const { transport } = peerClients('n1', { n2: n2.address }, { commitNoticeDelayMs: 60_000 });
      transport.send([append(0, 1, 0)]);
      transport.send([append(1, 0, 1, true)]); // entry 1 committed
      transport.send([append(1, 1, 1)]); // the next write
      transport.send([append(2, 0, 2, true)]);
      transport.send([append(2, 0, 2, true)]); // a newer notice takes the waiting one's place
      transport.send([append(2, 1, 2)]);
      await waitFor('three appends', () => (n2.inbox.from('n1').length >= 3 ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(heard(n2.inbox)).toEqual(['append 0+1 commit 0', 'append 1+1 commit 1', 'append 2+1 commit 2']);
      // Three notices saved: two folded into the next write's append, one replaced by a newer notice.
      expect(transport.stats()[0]?.foldedCommitNotices).toBe(3);
    });

    it('an empty append the follower would answer (appends in flight) is folded the same way: the next append is answered instead', async () => {
      const n2 = await startNode('n2');
      const { transport } = peerClients('n1', { n2: n2.address }, { commitNoticeDelayMs: 60_000 });
      transport.send([append(0, 2, 0)]);
      transport.send([append(2, 0, 1)]); // entry 1 committed while 1..2 are in flight: not commit-only
      transport.send([append(2, 1, 1)]);
      await waitFor('two appends', () => (n2.inbox.from('n1').length >= 2 ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(heard(n2.inbox)).toEqual(['append 0+2 commit 0', 'append 2+1 commit 1']);
      expect(transport.stats()[0]?.foldedCommitNotices).toBe(1);
    });

    it('a notice with nothing after it goes once the delay has passed; a newer one sent meanwhile takes its place', async () => {
      const n2 = await startNode('n2');
      const { transport } = peerClients('n1', { n2: n2.address }, { commitNoticeDelayMs: 50 });
      transport.send([append(0, 1, 0), append(1, 0, 0, true)]);
      transport.send([append(1, 0, 1, true)]);
      await waitFor('the notice', () => (n2.inbox.from('n1').length === 2 ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(heard(n2.inbox)).toEqual(['append 0+1 commit 0', 'append 1+0 commit 1']);
      expect(transport.stats()[0]?.foldedCommitNotices).toBe(1);
    });

    it('any other message, or an append that does not reach as far, goes after the notice, in order', async () => {
      const n2 = await startNode('n2');
      const { transport } = peerClients('n1', { n2: n2.address }, { commitNoticeDelayMs: 60_000 });
      transport.send([append(4, 0, 4, true)]);
      transport.send([heartbeat('n1', 'n2', 4)]);
      transport.send([append(4, 0, 5, true)]);
      transport.send([append(2, 1, 5)]); // a resend from further back: the follower could commit only to 3 with it
      await waitFor('four messages', () => (n2.inbox.from('n1').length === 4 ? true : undefined));
      expect(heard(n2.inbox)).toEqual(['append 4+0 commit 4', 'Heartbeat', 'append 4+0 commit 5', 'append 2+1 commit 5']);
      expect(transport.stats()[0]?.foldedCommitNotices).toBe(0);
    });

    it('with no delay (commitNoticeDelayMs 0) every notice is sent at once', async () => {
      const n2 = await startNode('n2');
      const { transport } = peerClients('n1', { n2: n2.address });
      transport.send([append(0, 1, 0), append(1, 0, 1, true)]);
      transport.send([append(1, 1, 1)]);
      await waitFor('three appends', () => (n2.inbox.from('n1').length === 3 ? true : undefined));
      expect(heard(n2.inbox)).toEqual(['append 0+1 commit 0', 'append 1+0 commit 1', 'append 1+1 commit 1']);
    });
  });

  describe('a batch the receiver must refuse', () => {
    const batch = (overrides: Partial<WireMessageBatch>): WireMessageBatch => ({
      from: 'n1',
      to: 'n2',
      cluster: CLUSTER,
      messages: [toWire(heartbeat('n1', 'n2', 0))],
      ...overrides,
    });

    it('addressed to another node id: FAILED_PRECONDITION, nothing delivered', async () => {
      const n2 = await startNode('n2');
      const error = await rawDeliver(n2.address, batch({ to: 'n3' }));
      expect(error?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(error?.details).toMatch(/this is node n2, but n1 sent a batch meant for n3/);
      expect(n2.inbox.batchSizes).toEqual([]);
      expect(n2.lines.some((line) => line.level === WARN && line.msg === 'refused a batch from a peer')).toBe(true);
    });

    it('from another cluster: FAILED_PRECONDITION', async () => {
      const n2 = await startNode('n2');
      const error = await rawDeliver(n2.address, batch({ cluster: 'other-cluster' }));
      expect(error?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(error?.details).toMatch(/belongs to cluster "test-cluster", but n1 sent a batch for cluster "other-cluster"/);
      expect(n2.inbox.batchSizes).toEqual([]);
    });

    it('without a sender, or claiming to come from the receiver itself', async () => {
      const n2 = await startNode('n2');
      const anonymous = await rawDeliver(n2.address, batch({ from: '' }));
      expect(anonymous?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(anonymous?.details).toMatch(/does not say which node sent it/);
      const itself = await rawDeliver(n2.address, batch({ from: 'n2' }));
      expect(itself?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(n2.inbox.batchSizes).toEqual([]);
    });

    it('with a malformed message: INVALID_ARGUMENT naming it, and none of the batch delivered', async () => {
      const n2 = await startNode('n2');
      const gap: WireRaftMessage = {
        term: 2,
        appendRequest: {
          prevLogIndex: 3,
          prevLogTerm: 1,
          entries: [{ index: 5, term: 2, kind: 'ENTRY_KIND_COMMAND', data: new Uint8Array([1]) }],
          leaderCommit: 0,
        },
      };
      const error = await rawDeliver(n2.address, batch({ messages: [toWire(heartbeat('n1', 'n2', 0)), gap] }));
      expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error?.details).toMatch(/message 2 of 2 in the batch from n1: .*entries\[0\]\.index is 5.*expected 4/);
      const empty = await rawDeliver(n2.address, batch({ messages: [{ term: 2 }] }));
      expect(empty?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(empty?.details).toMatch(/body is missing/);
      expect(n2.inbox.batchSizes).toEqual([]);
    });

    it('PeerClients of a node in the wrong cluster logs the refusal once, as a warning', async () => {
      const n2 = await startNode('n2', { cluster: 'other-cluster' });
      const { transport, lines } = peerClients('n1', { n2: n2.address });
      await waitFor('three refused calls', () => {
        transport.send([heartbeat('n1', 'n2', 0)]);
        return (transport.stats()[0]?.failedCalls ?? 0) >= 3 ? true : undefined;
      });
      const refusals = lines.filter((line) => line.msg === 'peer refused messages');
      expect(refusals).toHaveLength(1);
      expect(refusals[0]).toMatchObject({ level: WARN, peer: 'n2', code: 'FAILED_PRECONDITION' });
      expect(transport.stats()[0]?.state).toBe('refused');
      expect(n2.inbox.batchSizes).toEqual([]);
    });
  });

  it('a peer that is down: send() does not throw, one "unreachable" line, and messages flow once it starts', async () => {
    const port = await unusedPort();
    const address = `127.0.0.1:${port}`;
    const { transport, lines } = peerClients('n1', { n2: address });
    let commit = 0;
    const sendNext = () => transport.send([heartbeat('n1', 'n2', ++commit)]);

    await waitFor('several failed calls to the down peer', () => {
      expect(sendNext).not.toThrow();
      return (transport.stats()[0]?.failedCalls ?? 0) >= 4 ? true : undefined;
    });
    const unreachable = lines.filter((line) => line.msg === 'peer unreachable');
    expect(unreachable).toHaveLength(1);
    expect(unreachable[0]).toMatchObject({ level: INFO, peer: 'n2', address, code: 'UNAVAILABLE' });
    expect(String(unreachable[0]?.error)).not.toBe('');
    expect(transport.stats()[0]).toMatchObject({ state: 'unreachable', sentMessages: 0 });
    expect(transport.stats()[0]?.droppedFailed).toBeGreaterThan(0);

    const n2 = await startNode('n2', { port });
    // Raft would keep sending heartbeats; so does the test, until they get through.
    await waitFor('messages reaching the restarted peer', () => {
      sendNext();
      return n2.inbox.from('n1').length > 0 ? true : undefined;
    });
    await waitFor('"peer reachable again" logged', () => lines.some((line) => line.msg === 'peer reachable again'));
    expect(lines.filter((line) => line.msg === 'peer reachable again')).toHaveLength(1);
    expect(lines.filter((line) => line.msg === 'peer unreachable')).toHaveLength(1);
    expect(lines.find((line) => line.msg === 'peer reachable again')).toMatchObject({ level: INFO, peer: 'n2', address });

    // Whatever got through arrived in order, and the link is healthy again.
    const commits = n2.inbox.from('n1').map((message) => (message.type === 'Heartbeat' ? message.leaderCommit : -1));
    expect(commits).toEqual([...commits].sort((a, b) => a - b));
    const last = commit + 50;
    transport.send(range(1, 50).map((i) => heartbeat('n1', 'n2', commit + i)));
    await waitFor('50 more', () => n2.inbox.from('n1').some((message) => message.type === 'Heartbeat' && message.leaderCommit === last));
    const after = n2.inbox.from('n1').map((message) => (message.type === 'Heartbeat' ? message.leaderCommit : -1));
    expect(after.slice(-50)).toEqual(range(commit + 1, 50));
    expect(transport.stats()[0]?.state).toBe('ok');
  });

  it('bounds the queue of a peer, dropping the oldest, and counts the drops', async () => {
    const n2 = await startNode('n2');
    const { transport, lines } = peerClients('n1', { n2: n2.address }, { maxQueuedMessages: 10 });
    transport.send(range(1, 100).map((i) => ack('n1', 'n2', i)));
    expect(transport.stats()[0]).toMatchObject({ queued: 10, droppedOverflow: 90 });
    expect(lines.filter((line) => line.msg === 'peer queue full: dropping the oldest messages')).toHaveLength(1);
    await waitFor('the newest ten', () => (n2.inbox.from('n1').length === 10 ? true : undefined));
    expect(matchIndexes(n2.inbox.from('n1'))).toEqual(range(91, 10));
  });

  it('drops messages for a node it has no address for, with one warning', async () => {
    const { transport, lines } = peerClients('n1', {});
    transport.send([heartbeat('n1', 'n7', 0), heartbeat('n1', 'n7', 1)]);
    expect(lines.filter((line) => line.msg === 'no address for peer: dropping its messages')).toHaveLength(1);
    expect(() => transport.send([heartbeat('n2', 'n7', 0)])).toThrow(/from n2/);
  });

  /** A peer that accepts connections and streams but never reads or answers (a hung process). */
  async function startHungPeer(): Promise<{ address: string; streams: () => number }> {
    let streams = 0;
    const server = new grpc.Server();
    server.addService(raftPeerServiceDefinition, {
      Stream: () => {
        streams += 1;
      },
    });
    servers.push(server);
    const port = await bindPeerServer(server, '127.0.0.1:0');
    return { address: `127.0.0.1:${port}`, streams: () => streams };
  }

  it('a peer that never reads: send() never blocks, one stream, and the queue stays bounded', async () => {
    const hung = await startHungPeer();
    const { transport } = peerClients('n1', { n2: hung.address }, { maxQueuedMessages: 100 });
    const big = (i: number): Message => ({
      from: 'n1',
      to: 'n2',
      term: 1,
      type: 'AppendRequest',
      prevLogIndex: i - 1,
      prevLogTerm: 1,
      entries: [{ index: i, term: 1, kind: 'command', data: new Uint8Array(64 * 1024) }],
      leaderCommit: 0,
    });
    // HTTP/2 flow control stops the writes once the peer's window is full; the rest waits, bounded.
    let i = 0;
    await waitFor('the queue to overflow', async () => {
      for (let k = 0; k < 20; k += 1) transport.send([big(++i)]);
      await new Promise((resolve) => setImmediate(resolve));
      return (transport.stats()[0]?.droppedOverflow ?? 0) > 0 ? true : undefined;
    });
    expect(transport.stats()[0]?.queued).toBeLessThanOrEqual(100);
    expect(transport.stats()[0]?.sentMessages).toBeLessThan(i);
    expect(transport.stats()[0]?.streaming).toBe(true);
    expect(hung.streams()).toBe(1);
  });

  it('close() cancels the open stream, and later sends are ignored', async () => {
    const hung = await startHungPeer();
    const { transport, lines } = peerClients('n1', { n2: hung.address });
    transport.send([heartbeat('n1', 'n2', 1)]);
    await waitFor('the stream open at the peer', () => (hung.streams() === 1 ? true : undefined));
    expect(transport.stats()[0]?.streaming).toBe(true);
    await transport.close();
    expect(transport.stats()[0]).toMatchObject({ streaming: false, queued: 0 });
    transport.send([heartbeat('n1', 'n2', 2)]);
    expect(transport.stats()[0]).toMatchObject({ streaming: false, queued: 0 });
    expect(lines.filter((line) => line.msg === 'peer unreachable')).toEqual([]);
    await transport.close();
  });
});
