import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { bindPeerServer, createPeerService } from '../../src/node/peer-service.js';
import { PEER_CHANNEL_OPTIONS, PEER_SERVER_OPTIONS } from '../../src/node/peer-transport.js';
import { deliverMethod, raftPeerServiceDefinition } from '../../src/node/raft-proto.js';
import {
  createSnapshotReceiver,
  type OutgoingSnapshot,
  type ReceivedSnapshot,
  SnapshotSender,
  type SnapshotSenderOptions,
  SnapshotTransferError,
  snapshotChunksMethod,
  snapshotOfferMethod,
  type WireSnapshotChunk,
  type WireSnapshotOffer,
  type WireSnapshotReceived,
} from '../../src/node/snapshot-transfer.js';
import { toWire } from '../../src/node/wire-codec.js';
import type { Message, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { waitFor } from '../support/wait-for.js';

const CLUSTER = 'test-cluster';
const KiB = 1024;
const MiB = 1024 * KiB;

// Everything a test opens, closed after it whatever happened.
const dirs: string[] = [];
const servers: grpc.Server[] = [];
const shutdowns: AbortController[] = [];
const senders: SnapshotSender[] = [];
const rawClients: grpc.Client[] = [];

afterEach(async () => {
  const closing = senders.splice(0).map((sender) => sender.close());
  for (const client of rawClients.splice(0)) client.close();
  for (const controller of shutdowns.splice(0)) controller.abort();
  for (const server of servers.splice(0)) server.forceShutdown();
  await Promise.all(closing);
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-snapshot-transfer-'));
  dirs.push(dir);
  return dir;
}

/** A node's peer server with both the Raft message service and the snapshot receiver, as the node composes them. */
async function startReceiver(options: { id?: NodeId; cluster?: string; incomingDir: string; maxSnapshotBytes?: number }) {
  const id = options.id ?? 'n2';
  const { logger, lines } = capturingLogger();
  const received: ReceivedSnapshot[] = [];
  const messages: Message[] = [];
  const shutdown = new AbortController();
  shutdowns.push(shutdown);
  const server = new grpc.Server(PEER_SERVER_OPTIONS);
  const cluster = options.cluster ?? CLUSTER;
  server.addService(raftPeerServiceDefinition, {
    ...createPeerService({ self: id, cluster, logger, onMessages: (_from, batch) => void messages.push(...batch), shutdown: shutdown.signal }),
    ...createSnapshotReceiver({
      self: id,
      cluster,
      incomingDir: options.incomingDir,
      logger,
      onReceived: (snapshot) => void received.push(snapshot),
      shutdown: shutdown.signal,
      ...(options.maxSnapshotBytes === undefined ? {} : { maxSnapshotBytes: options.maxSnapshotBytes }),
    }),
  });
  servers.push(server);
  const port = await bindPeerServer(server, '127.0.0.1:0');
  return { id, server, shutdown, address: `127.0.0.1:${port}`, received, messages, lines };
}

function snapshotSender(addresses: Map<NodeId, string>, extra: Partial<SnapshotSenderOptions> = {}) {
  const { logger, lines } = capturingLogger();
  const sender = new SnapshotSender({ self: 'n1', cluster: CLUSTER, logger, addressOf: (id) => addresses.get(id), ...extra });
  senders.push(sender);
  return { sender, lines };
}

const META: SnapshotMeta = { index: 1200, term: 3, config: { voters: ['n1', 'n2', 'n3'] } };

/** A snapshot file of random bytes, as the leader's node would hand it to the sender. */
async function snapshotFile(bytes: number, meta: SnapshotMeta = META): Promise<{ snapshot: OutgoingSnapshot; content: Buffer }> {
  const dir = await tempDir();
  const content = randomBytes(bytes);
  const path = join(dir, `snapshot-${meta.index}-${meta.term}.snap`);
  await writeFile(path, content);
  const sha256 = createHash('sha256').update(content).digest('hex');
  return { snapshot: { to: 'n2', term: 4, meta, path, bytes, sha256 }, content };
}

async function filesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Bytes staged in the one `.part` file of `dir` (0 when there is none). */
async function stagedBytes(dir: string): Promise<number> {
  const part = (await filesIn(dir)).find((name) => name.endsWith('.part'));
  return part === undefined ? 0 : (await stat(join(dir, part))).size;
}

async function rejection(promise: Promise<unknown>): Promise<SnapshotTransferError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SnapshotTransferError) return error;
    throw new Error(`expected a SnapshotTransferError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected the transfer to fail, but it succeeded');
}

function rawClient(address: string): grpc.Client {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), PEER_CHANNEL_OPTIONS);
  rawClients.push(client);
  return client;
}

function rawOffer(address: string, offer: WireSnapshotOffer): Promise<{ error: grpc.ServiceError | null; offset?: number }> {
  return new Promise((resolve) => {
    rawClient(address).makeUnaryRequest(
      snapshotOfferMethod.path,
      snapshotOfferMethod.requestSerialize,
      snapshotOfferMethod.responseDeserialize,
      offer,
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (error, reply) => resolve({ error, ...(reply === undefined ? {} : { offset: reply.offset }) }),
    );
  });
}

function rawChunks(address: string, chunks: WireSnapshotChunk[]): Promise<{ error: grpc.ServiceError | null; reply?: WireSnapshotReceived }> {
  return new Promise((resolve) => {
    const call = rawClient(address).makeClientStreamRequest(
      snapshotChunksMethod.path,
      snapshotChunksMethod.requestSerialize,
      snapshotChunksMethod.responseDeserialize,
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (error, reply) => resolve({ error, ...(reply === undefined ? {} : { reply }) }),
    );
    for (const chunk of chunks) call.write(chunk);
    call.end();
  });
}

const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && a.equals(b);

describe('snapshot transfer over the peer service', () => {
  it('a 5 MiB snapshot arrives byte-identical, durable under its final name, and is handed over once with its meta', async () => {
    const incomingDir = join(await tempDir(), 'incoming');
    const n2 = await startReceiver({ incomingDir });
    const { snapshot, content } = await snapshotFile(5 * MiB + 123);
    const { sender } = snapshotSender(new Map([['n2', n2.address]]));

    const sent = await sender.send(snapshot);

    expect(sent).toMatchObject({ to: 'n2', resumedFrom: 0, sentBytes: snapshot.bytes, chunks: Math.ceil(snapshot.bytes / (256 * KiB)) });
    expect(n2.received).toHaveLength(1);
    const [received] = n2.received as [ReceivedSnapshot];
    expect(received).toMatchObject({ from: 'n1', term: 4, meta: META, bytes: snapshot.bytes, sha256: snapshot.sha256 });
    expect(received.path).toBe(join(incomingDir, `n1-1200-3-${snapshot.sha256.slice(0, 16)}.snap`));
    expect(sameBytes(await readFile(received.path), content)).toBe(true);
    expect(await filesIn(incomingDir)).toEqual([`n1-1200-3-${snapshot.sha256.slice(0, 16)}.snap`]);

    // The same server still carries Raft messages: the snapshot methods sit beside Deliver and Stream.
    const batch = { from: 'n1', to: 'n2', cluster: CLUSTER, messages: [toWire({ from: 'n1', to: 'n2', term: 4, type: 'TimeoutNow' })] };
    const delivered = await new Promise<grpc.ServiceError | null>((resolve) =>
      rawClient(n2.address).makeUnaryRequest(deliverMethod.path, deliverMethod.requestSerialize, deliverMethod.responseDeserialize, batch, (error) =>
        resolve(error),
      ),
    );
    expect(delivered).toBeNull();
    expect(n2.messages.map((message) => message.type)).toEqual(['TimeoutNow']);
  });

  it('asking again for the same snapshot while it is in flight joins that transfer; asking after it finished sends nothing and hands it over again', async () => {
    const incomingDir = await tempDir();
    const n2 = await startReceiver({ incomingDir });
    const { snapshot } = await snapshotFile(2 * MiB);
    const { sender } = snapshotSender(new Map([['n2', n2.address]]));

    const first = sender.send(snapshot);
    const again = sender.send({ ...snapshot });
    expect(again).toBe(first);
    await first;
    expect(n2.received).toHaveLength(1);

    // The reply to the first transfer could have been lost: the receiver still has the file, verified.
    const later = await sender.send(snapshot);
    expect(later).toMatchObject({ resumedFrom: snapshot.bytes, sentBytes: 0, chunks: 0 });
    expect(n2.received).toHaveLength(2);
    expect(n2.received[1]?.path).toBe(n2.received[0]?.path);
  });

  it("carries the leader's learner mark to the receiver, on a transfer and on a file handed over again", async () => {
    const n2 = await startReceiver({ incomingDir: await tempDir() });
    const { snapshot } = await snapshotFile(64 * KiB);
    const { sender } = snapshotSender(new Map([['n2', n2.address]]));
    await sender.send(snapshot);
    await sender.send({ ...snapshot, toLearner: true });
    expect(n2.received.map((received) => received.toLearner)).toEqual([undefined, true]);
  });

  it('a sender closed mid-transfer: the transfer rejects, and the next sender resumes from the staged bytes, not from zero', async () => {
    const incomingDir = await tempDir();
    const n2 = await startReceiver({ incomingDir });
    const chunkBytes = 64 * KiB;
    const { snapshot, content } = await snapshotFile(4 * MiB);
    const addresses = new Map([['n2', n2.address]]);
    let closed = false;
    const { sender: first } = snapshotSender(addresses, {
      chunkBytes,
      chunkHook: async ({ offset }) => {
        if (closed || offset < 16 * chunkBytes) return;
        // Let the receiver write a few chunks before the connection goes away.
        await waitFor('the receiver to stage 8 chunks', async () => (await stagedBytes(incomingDir)) >= 8 * chunkBytes);
        closed = true;
        void first.close();
      },
    });

    const interrupted = await rejection(first.send(snapshot));
    expect(interrupted.code).toBe(grpc.status.CANCELLED);
    expect(interrupted.message).toMatch(/snapshot 1200\/3 .* from n1 to n2: snapshot sender of n1 closed/);
    expect((await rejection(first.send(snapshot))).message).toMatch(/closed/);
    expect(n2.received).toEqual([]);

    const { sender: second } = snapshotSender(addresses, { chunkBytes });
    const resumed = await second.send(snapshot);
    expect(resumed.resumedFrom).toBeGreaterThanOrEqual(8 * chunkBytes);
    expect(resumed.sentBytes).toBeLessThan(snapshot.bytes);
    expect(resumed.resumedFrom + resumed.sentBytes).toBe(snapshot.bytes);
    expect(n2.received).toHaveLength(1);
    expect(sameBytes(await readFile(n2.received[0]?.path ?? ''), content)).toBe(true);
    expect(n2.lines.some((line) => line.msg === 'snapshot offer: resuming from the staged bytes')).toBe(true);
  });

  it('the receiving node goes down mid-transfer: a new receiver over the same directory resumes from what is on disk', async () => {
    const incomingDir = await tempDir();
    const before = await startReceiver({ incomingDir });
    const chunkBytes = 64 * KiB;
    const { snapshot, content } = await snapshotFile(4 * MiB + 7);
    const addresses = new Map([['n2', before.address]]);
    let crashed = false;
    const { sender } = snapshotSender(addresses, {
      chunkBytes,
      chunkHook: async ({ offset }) => {
        if (crashed || offset < 16 * chunkBytes) return;
        await waitFor('the receiver to stage 8 chunks', async () => (await stagedBytes(incomingDir)) >= 8 * chunkBytes);
        crashed = true;
        before.shutdown.abort();
        before.server.forceShutdown();
      },
    });

    const interrupted = await rejection(sender.send(snapshot));
    expect(interrupted.code).not.toBeNull();
    expect(before.received).toEqual([]);

    // The node starts again: a new process knows nothing but the files in its incoming directory.
    const after = await startReceiver({ incomingDir });
    addresses.set('n2', after.address);
    const resumed = await sender.send(snapshot);
    expect(resumed.resumedFrom).toBeGreaterThanOrEqual(8 * chunkBytes);
    expect(resumed.sentBytes).toBeLessThan(snapshot.bytes);
    expect(after.received).toHaveLength(1);
    expect(after.received[0]).toMatchObject({ from: 'n1', meta: META, sha256: snapshot.sha256 });
    expect(sameBytes(await readFile(after.received[0]?.path ?? ''), content)).toBe(true);
    expect(before.received).toEqual([]);
  });

  it('a chunk corrupted on the way is refused with DATA_LOSS, the staged bytes are discarded, and nothing is handed over', async () => {
    const incomingDir = await tempDir();
    const n2 = await startReceiver({ incomingDir });
    const chunkBytes = 64 * KiB;
    const { snapshot, content } = await snapshotFile(1 * MiB);
    const { sender: corrupting } = snapshotSender(new Map([['n2', n2.address]]), {
      chunkBytes,
      chunkHook: ({ offset, data }) => {
        if (offset !== 3 * chunkBytes) return;
        const flipped = Buffer.from(data);
        flipped[100] = (flipped[100] ?? 0) ^ 0x01;
        return flipped;
      },
    });

    const error = await rejection(corrupting.send(snapshot));
    expect(error.code).toBe(grpc.status.DATA_LOSS);
    expect(error.message).toMatch(/chunk at offset 196608 of snapshot 1200\/3 from n1 fails its CRC-32/);
    expect(error.message).toMatch(/discarded the 196608 bytes it had staged/);
    expect(n2.received).toEqual([]);
    expect(await filesIn(incomingDir)).toEqual([]);

    // A clean link starts over from zero and delivers the right bytes.
    const { sender: clean } = snapshotSender(new Map([['n2', n2.address]]), { chunkBytes });
    expect(await clean.send(snapshot)).toMatchObject({ resumedFrom: 0, sentBytes: snapshot.bytes });
    expect(n2.received).toHaveLength(1);
    expect(sameBytes(await readFile(n2.received[0]?.path ?? ''), content)).toBe(true);
  });

  it('an offer whose sha256 does not match the file: DATA_LOSS after the last byte, nothing kept, nothing handed over', async () => {
    const incomingDir = await tempDir();
    const n2 = await startReceiver({ incomingDir });
    const { snapshot } = await snapshotFile(1 * MiB);
    const wrong = createHash('sha256').update('something else').digest('hex');
    const { sender } = snapshotSender(new Map([['n2', n2.address]]));

    const error = await rejection(sender.send({ ...snapshot, sha256: wrong }));
    expect(error.code).toBe(grpc.status.DATA_LOSS);
    expect(error.message).toContain(`hash to sha256 ${snapshot.sha256}, but the offer said ${wrong}`);
    expect(n2.received).toEqual([]);
    expect(await filesIn(incomingDir)).toEqual([]);
  });

  it('a node of another cluster refuses the offer with FAILED_PRECONDITION and stages nothing', async () => {
    const incomingDir = join(await tempDir(), 'incoming');
    const n2 = await startReceiver({ incomingDir, cluster: 'other-cluster' });
    const { snapshot } = await snapshotFile(64 * KiB);
    const { sender } = snapshotSender(new Map([['n2', n2.address]]));

    const error = await rejection(sender.send(snapshot));
    expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(error.message).toMatch(/belongs to cluster "other-cluster", but n1 sent a snapshot offer for cluster "test-cluster"/);
    expect(n2.received).toEqual([]);
    expect(await filesIn(incomingDir)).toEqual([]);
  });

  it('a newer snapshot for the same peer supersedes the one in flight, whose partial file is removed', async () => {
    const incomingDir = await tempDir();
    const n2 = await startReceiver({ incomingDir });
    const chunkBytes = 64 * KiB;
    const older = await snapshotFile(2 * MiB, META);
    const newerMeta: SnapshotMeta = { index: 2400, term: 4, config: { voters: ['n1', 'n2', 'n3'] } };
    const newer = await snapshotFile(1 * MiB, newerMeta);
    let superseding: Promise<unknown> | null = null;
    const { sender } = snapshotSender(new Map([['n2', n2.address]]), {
      chunkBytes,
      chunkHook: async ({ offset }) => {
        if (superseding !== null || offset < 8 * chunkBytes) return;
        await waitFor('the receiver to stage 4 chunks', async () => (await stagedBytes(incomingDir)) >= 4 * chunkBytes);
        superseding = sender.send(newer.snapshot);
      },
    });

    const error = await rejection(sender.send(older.snapshot));
    expect(error.code).toBe(grpc.status.CANCELLED);
    expect(error.message).toMatch(/superseded by snapshot 2400\/4 in term 4 \(was snapshot 1200\/3 in term 4\)/);
    expect(superseding).not.toBeNull();
    await superseding;
    expect(n2.received.map((snapshot) => snapshot.meta)).toEqual([newerMeta]);
    expect(sameBytes(await readFile(n2.received[0]?.path ?? ''), newer.content)).toBe(true);
    expect(await filesIn(incomingDir)).toEqual([`n1-2400-4-${newer.snapshot.sha256.slice(0, 16)}.snap`]);
  });

  it('a receiver that stops reading: the sender gives up after its idle timeout instead of hanging', async () => {
    let chunkCalls = 0;
    const hung = new grpc.Server(PEER_SERVER_OPTIONS);
    hung.addService(raftPeerServiceDefinition, {
      SnapshotOffer: (_call: unknown, callback: grpc.sendUnaryData<{ offset: number }>) => callback(null, { offset: 0 }),
      SnapshotChunks: () => {
        chunkCalls += 1;
      },
    });
    servers.push(hung);
    const port = await bindPeerServer(hung, '127.0.0.1:0');
    const { snapshot } = await snapshotFile(16 * MiB);
    const { sender, lines } = snapshotSender(new Map([['n2', `127.0.0.1:${port}`]]), { idleTimeoutMs: 300 });

    const error = await rejection(sender.send(snapshot));
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(error.message).toMatch(/no progress for 300 ms after \d+ bytes: is n2 stuck\?/);
    expect(chunkCalls).toBe(1);
    expect(lines.some((line) => line.msg === 'snapshot transfer failed' && line.peer === 'n2')).toBe(true);
  });

  describe('requests the receiver must refuse, each with nothing staged or handed over', () => {
    const sha256 = createHash('sha256').update('x').digest();
    const offer = (overrides: Partial<WireSnapshotOffer> = {}): WireSnapshotOffer => ({
      from: 'n1',
      to: 'n2',
      cluster: CLUSTER,
      term: 4,
      index: 10,
      snapshotTerm: 2,
      voters: ['n1', 'n2', 'n3'],
      totalBytes: 1,
      sha256,
      ...overrides,
    });
    const chunk = (overrides: Partial<WireSnapshotChunk> = {}): WireSnapshotChunk => ({
      from: 'n1',
      to: 'n2',
      cluster: CLUSTER,
      index: 10,
      snapshotTerm: 2,
      offset: 0,
      data: Buffer.from('x'),
      crc32: crc32(Buffer.from('x')),
      ...overrides,
    });

    it('offers addressed wrongly, from an id that is not a node id, or too large', async () => {
      const incomingDir = await tempDir();
      const n2 = await startReceiver({ incomingDir, maxSnapshotBytes: 1 * MiB });

      const elsewhere = await rawOffer(n2.address, offer({ to: 'n3' }));
      expect(elsewhere.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(elsewhere.error?.details).toMatch(/this is node n2, but n1 sent a snapshot offer meant for n3/);

      const itself = await rawOffer(n2.address, offer({ from: 'n2' }));
      expect(itself.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(itself.error?.details).toMatch(/claims to come from itself/);

      const traversal = await rawOffer(n2.address, offer({ from: '../../etc' }));
      expect(traversal.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(traversal.error?.details).toMatch(/"\.\.\/\.\.\/etc" is not a node id/);

      const huge = await rawOffer(n2.address, offer({ totalBytes: 2 * MiB }));
      expect(huge.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(huge.error?.details).toMatch(/2097152 bytes is more than node n2 accepts \(1048576\)/);

      const badHash = await rawOffer(n2.address, offer({ sha256: Buffer.alloc(5) }));
      expect(badHash.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(badHash.error?.details).toMatch(/sha256 has 5 bytes, not 32/);

      expect(n2.received).toEqual([]);
      expect(await filesIn(incomingDir)).toEqual([]);
    });

    it('chunks without an offer, or that do not start where the staged bytes end', async () => {
      const incomingDir = await tempDir();
      const n2 = await startReceiver({ incomingDir });

      const unoffered = await rawChunks(n2.address, [chunk()]);
      expect(unoffered.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(unoffered.error?.details).toMatch(/has no open offer from them: send SnapshotOffer first/);

      const accepted = await rawOffer(n2.address, offer({ totalBytes: 3 }));
      expect(accepted).toEqual({ error: null, offset: 0 });
      const gap = await rawChunks(n2.address, [chunk({ offset: 2 })]);
      expect(gap.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(gap.error?.details).toMatch(
        /chunk at offset 2 of snapshot 10\/2 from n1, but holds 0 bytes of it: the next chunk must start at offset 0/,
      );

      const otherSnapshot = await rawChunks(n2.address, [chunk({ index: 11 })]);
      expect(otherSnapshot.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(otherSnapshot.error?.details).toMatch(/their open offer is snapshot 10\/2/);

      // One good byte, then the sender stops: the receiver keeps it and says so.
      const partial = await rawChunks(n2.address, [chunk()]);
      expect(partial).toEqual({ error: null, reply: { stagedBytes: 1, complete: false } });
      expect(await rawOffer(n2.address, offer({ totalBytes: 3 }))).toEqual({ error: null, offset: 1 });

      expect(n2.received).toEqual([]);
    });
  });
});
