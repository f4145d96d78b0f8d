/**
 * InstallSnapshot's file transfer between node processes, over the peer
 * service (raftlog.v1.RaftPeer SnapshotOffer + SnapshotChunks).
 *
 * The core emits an InstallSnapshot message; the node does not put it in a
 * batch but hands it, with the snapshot file, to `SnapshotSender.send`. The
 * receiving node's `createSnapshotReceiver` stages the file in its incoming
 * directory and calls `onReceived` once the whole file has arrived, is
 * durable and matches the offer's SHA-256; only then does the node step the
 * InstallSnapshot message into its core.
 *
 * The transfer survives what breaks it:
 * - Resumable: the staged file is named after the snapshot
 *   (`<from>-<index>-<term>-<sha256 first 16 hex>.part`), so an offer of the
 *   same snapshot, after a lost connection or a restart of either side, is
 *   answered with the bytes already held, and the sender goes on from there.
 * - Checksummed end to end: every chunk carries the CRC-32 of its bytes,
 *   checked before they are written; after the last byte the receiver fsyncs
 *   the file and checks the SHA-256 of what is on its disk against the offer.
 * - Flow control: the receiver reads the next chunk only once the previous
 *   one is written (gRPC then stops reading the HTTP/2 stream, whose window
 *   stops the sender); the sender reads its file a chunk at a time and waits
 *   for 'drain' when the call's buffer is full. Neither side ever holds more
 *   than a few chunks in memory.
 * - Atomic: the verified file is renamed from `.part` to `.snap` (and the
 *   directory fsync'd) before anyone is told; a crash leaves either a partial
 *   `.part` to resume or a complete `.snap`, never a half-file under the
 *   final name.
 */
import { createHash } from 'node:crypto';
import { createReadStream, constants as fsConstants } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, stat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import type { PeerAdmission, PeerIdentity } from './cluster-identity.js';
import { malformedReason } from './malformed-requests.js';
import { PEER_CHANNEL_OPTIONS, PEER_MAX_BATCH_BYTES } from './peer-transport.js';
import { raftPeerServiceDefinition } from './raft-proto.js';
import { RefusalLog } from './refusal-log.js';
import { learnerMark, MAX_WIRE_TERM } from './wire-codec.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Default size of the chunks a sender cuts its file into. */
export const SNAPSHOT_CHUNK_BYTES = 256 * KiB;
/** Largest chunk a receiver accepts (within PEER_MAX_MESSAGE_BYTES with its header). */
export const MAX_SNAPSHOT_CHUNK_BYTES = PEER_MAX_BATCH_BYTES;
/** Largest snapshot a receiver accepts unless told otherwise: a bound on what a confused or hostile peer can make it stage. */
export const DEFAULT_MAX_SNAPSHOT_BYTES = 64 * GiB;

// ---------------------------------------------------------------------------
// Wire shapes (as @grpc/proto-loader produces them with RAFT_PROTO_LOADER_OPTIONS)

export interface WireSnapshotOffer {
  from: string;
  to: string;
  cluster: string;
  term: number;
  index: number;
  snapshotTerm: number;
  voters: string[];
  totalBytes: number;
  /** 32 bytes. */
  sha256: Uint8Array;
  /** The sender's cluster id and member incarnation ('' or absent for a sender without them). */
  clusterId?: string;
  memberIncarnation?: string;
  /** The InstallSnapshot message's toLearner (raft.proto); absent is false. */
  toLearner?: boolean;
}

export interface WireSnapshotOfferReply {
  offset: number;
}

export interface WireSnapshotChunk {
  from: string;
  to: string;
  cluster: string;
  index: number;
  snapshotTerm: number;
  offset: number;
  data: Uint8Array;
  crc32: number;
  /** The sender's cluster id and member incarnation ('' or absent for a sender without them). */
  clusterId?: string;
  memberIncarnation?: string;
}

export interface WireSnapshotReceived {
  stagedBytes: number;
  complete: boolean;
}

/** raftlog.v1.RaftPeer/SnapshotOffer. */
export const snapshotOfferMethod = raftPeerServiceDefinition['SnapshotOffer'] as grpc.MethodDefinition<WireSnapshotOffer, WireSnapshotOfferReply>;

/** raftlog.v1.RaftPeer/SnapshotChunks. */
export const snapshotChunksMethod = raftPeerServiceDefinition['SnapshotChunks'] as grpc.MethodDefinition<WireSnapshotChunk, WireSnapshotReceived>;

/** A snapshot transfer failed; `code` is the gRPC status the receiver (or the channel) answered with, null for a local failure. */
export class SnapshotTransferError extends Error {
  override readonly name = 'SnapshotTransferError';
  constructor(
    message: string,
    readonly code: grpc.status | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const describeSnapshot = (meta: SnapshotMeta): string => `snapshot ${meta.index}/${meta.term}`;

// ---------------------------------------------------------------------------
// Sending

export interface OutgoingSnapshot {
  readonly to: NodeId;
  /** The sender's current term: the InstallSnapshot message's term. */
  readonly term: number;
  readonly meta: SnapshotMeta;
  /** The snapshot file; it must not change while it is sent. */
  readonly path: string;
  readonly bytes: number;
  /** SHA-256 of the whole file, 64 lowercase hex digits. */
  readonly sha256: string;
  /** The InstallSnapshot message's toLearner, handed to the receiver's core with the file. */
  readonly toLearner?: true;
}

/** What a finished transfer did. */
export interface SnapshotSent {
  readonly to: NodeId;
  readonly meta: SnapshotMeta;
  /** Bytes the receiver already held when the transfer started (0 for a fresh one; `bytes` when it had the whole file). */
  readonly resumedFrom: number;
  /** Bytes of the file this transfer sent. */
  readonly sentBytes: number;
  readonly chunks: number;
}

/** For tests: a chunk about to be written, after its CRC-32 was computed from the file. */
export interface OutgoingChunk {
  readonly to: NodeId;
  readonly offset: number;
  readonly data: Buffer;
}

export interface SnapshotSenderOptions {
  readonly self: NodeId;
  readonly cluster: string;
  /** The cluster id and incarnation every offer and chunk carries; a node always has one (peers refuse transfers without). */
  readonly identity?: PeerIdentity;
  readonly logger: Logger;
  /** "host:port" of a peer's peer service, looked up at the start of each transfer. */
  readonly addressOf: (id: NodeId) => string | undefined;
  /** Default SNAPSHOT_CHUNK_BYTES. */
  readonly chunkBytes?: number;
  /** A transfer fails when no chunk could be handed to the transport for this long (default 30 s): a stuck receiver. */
  readonly idleTimeoutMs?: number;
  /**
   * The slowest rate a transfer is allowed: its deadline is
   * idleTimeoutMs + bytes / minBytesPerSecond (default 1 MiB/s, far below a
   * LAN, so only a transfer that is stuck or crawling runs out of time).
   */
  readonly minBytesPerSecond?: number;
  /**
   * For tests only: sees every chunk before it is written. It may return
   * other bytes to send in its place (the CRC-32 stays the file's: a link
   * that corrupts data), throw to break the transfer, or wait.
   */
  readonly chunkHook?: (chunk: OutgoingChunk) => Buffer | void | Promise<Buffer | void>;
  /** How the connections to peers are secured (tls-config.ts); default plaintext. */
  readonly channelCredentials?: grpc.ChannelCredentials;
}

interface RunningTransfer {
  readonly key: string;
  readonly snapshot: OutgoingSnapshot;
  readonly controller: AbortController;
  readonly promise: Promise<SnapshotSent>;
}

/**
 * Sends snapshot files to peers, one transfer per peer at a time. Asking
 * again for the same peer, term and snapshot while a transfer runs returns
 * the running transfer's promise. Asking for anything else for that peer (a
 * newer snapshot, or the same one in a new term) supersedes it: the running
 * transfer is cancelled (its promise rejects with CANCELLED) and the new one
 * starts once it has stopped. The older snapshot is of no use to the
 * follower once a newer one exists, and the receiver keeps what it staged
 * of the same file, so a supersede for a new term costs no bytes.
 *
 * Each SnapshotSender has its own connection to each peer (PEER_CHANNEL_OPTIONS
 * keeps subchannels local), so a transfer never shares an HTTP/2 connection,
 * nor its flow-control window, with the Raft messages of PeerClients.
 */
export class SnapshotSender {
  private readonly self: NodeId;
  private readonly cluster: string;
  /** What offers and chunks say about the sender: its cluster id and incarnation, when it has them. */
  private readonly credentials: { clusterId?: string; memberIncarnation?: string };
  private readonly log: Logger;
  private readonly refusals: RefusalLog;
  private readonly addressOf: (id: NodeId) => string | undefined;
  private readonly chunkBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly minBytesPerSecond: number;
  private readonly chunkHook: SnapshotSenderOptions['chunkHook'];
  private readonly channelCredentials: grpc.ChannelCredentials;
  private readonly running = new Map<NodeId, RunningTransfer>();
  private readonly clients = new Map<NodeId, { readonly address: string; readonly client: grpc.Client }>();
  private closing: Promise<void> | null = null;

  constructor(options: SnapshotSenderOptions) {
    this.self = options.self;
    this.cluster = options.cluster;
    this.credentials =
      options.identity === undefined ? {} : { clusterId: options.identity.clusterId, memberIncarnation: options.identity.incarnation };
    this.log = options.logger.child({ component: 'snapshot-sender' });
    this.refusals = new RefusalLog(this.log);
    this.addressOf = options.addressOf;
    this.chunkBytes = options.chunkBytes ?? SNAPSHOT_CHUNK_BYTES;
    if (!Number.isInteger(this.chunkBytes) || this.chunkBytes < 1 || this.chunkBytes > MAX_SNAPSHOT_CHUNK_BYTES) {
      throw new RangeError(`SnapshotSender: chunkBytes must be an integer in 1..${MAX_SNAPSHOT_CHUNK_BYTES}, got ${this.chunkBytes}`);
    }
    this.idleTimeoutMs = positive(options.idleTimeoutMs ?? 30_000, 'idleTimeoutMs');
    this.minBytesPerSecond = positive(options.minBytesPerSecond ?? MiB, 'minBytesPerSecond');
    this.chunkHook = options.chunkHook;
    this.channelCredentials = options.channelCredentials ?? grpc.credentials.createInsecure();
  }

  /**
   * Resolves once the receiver holds the whole file, verified, and has
   * handed it to its node; rejects with a SnapshotTransferError naming the
   * peer, the snapshot and the cause otherwise. Never retries by itself: Raft
   * asks again when the follower still needs the snapshot, and that resumes.
   */
  send(snapshot: OutgoingSnapshot): Promise<SnapshotSent> {
    if (this.closing !== null) {
      return Promise.reject(
        new SnapshotTransferError(
          `snapshot sender of ${this.self} is closed: not sending ${describeSnapshot(snapshot.meta)} to ${snapshot.to}`,
          grpc.status.CANCELLED,
        ),
      );
    }
    const key = [snapshot.term, snapshot.meta.index, snapshot.meta.term, snapshot.sha256, snapshot.path].join('/');
    const current = this.running.get(snapshot.to);
    if (current?.key === key) return current.promise;
    current?.controller.abort(
      new SnapshotTransferError(
        `superseded by ${describeSnapshot(snapshot.meta)} in term ${snapshot.term} (was ${describeSnapshot(current.snapshot.meta)} in term ${current.snapshot.term})`,
        grpc.status.CANCELLED,
      ),
    );
    // The new transfer starts once the old one has stopped, so the receiver never sees both at once.
    const previous = current?.promise.then(
      () => undefined,
      () => undefined,
    );
    const controller = new AbortController();
    const promise: Promise<SnapshotSent> = (async () => {
      await previous;
      return this.transfer(snapshot, controller.signal);
    })().finally(() => {
      if (this.running.get(snapshot.to)?.promise === promise) this.running.delete(snapshot.to);
    });
    this.running.set(snapshot.to, { key, snapshot, controller, promise });
    return promise;
  }

  /** Cancels every transfer in flight (their promises reject) and closes the connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const transfers = [...this.running.values()];
      for (const transfer of transfers) {
        transfer.controller.abort(new SnapshotTransferError(`snapshot sender of ${this.self} closed`, grpc.status.CANCELLED));
      }
      await Promise.allSettled(transfers.map((transfer) => transfer.promise));
      for (const { client } of this.clients.values()) client.close();
      this.clients.clear();
    })();
    return this.closing;
  }

  private async transfer(snapshot: OutgoingSnapshot, signal: AbortSignal): Promise<SnapshotSent> {
    const { to, meta } = snapshot;
    const what = `${describeSnapshot(meta)} (${snapshot.path}, ${snapshot.bytes} bytes) from ${this.self} to ${to}`;
    const started = performance.now();
    try {
      if (signal.aborted) throw signal.reason;
      checkOutgoing(snapshot, this.self);
      const onDisk = await stat(snapshot.path);
      if (onDisk.size !== snapshot.bytes) {
        throw new SnapshotTransferError(`the file holds ${onDisk.size} bytes, not the ${snapshot.bytes} the snapshot says`, null);
      }
      const client = this.clientFor(to);
      const deadline = new Date(Date.now() + this.idleTimeoutMs + (snapshot.bytes / this.minBytesPerSecond) * 1000);
      const reply = await this.offer(client, snapshot, deadline, signal);
      if (!Number.isSafeInteger(reply.offset) || reply.offset < 0 || reply.offset > snapshot.bytes) {
        throw new SnapshotTransferError(`${to} answered the offer with offset ${reply.offset}, outside 0..${snapshot.bytes}`, grpc.status.INTERNAL);
      }
      let sent: SnapshotSent;
      if (reply.offset === snapshot.bytes) {
        sent = { to, meta, resumedFrom: reply.offset, sentBytes: 0, chunks: 0 };
      } else {
        this.log.info(
          { peer: to, index: meta.index, term: meta.term, bytes: snapshot.bytes, offset: reply.offset },
          reply.offset > 0 ? 'resuming snapshot transfer' : 'sending snapshot',
        );
        sent = await this.stream(client, snapshot, reply.offset, deadline, signal);
      }
      this.log.info(
        {
          peer: to,
          index: meta.index,
          term: meta.term,
          bytes: snapshot.bytes,
          resumedFrom: sent.resumedFrom,
          sentBytes: sent.sentBytes,
          ms: Math.round(performance.now() - started),
        },
        'snapshot sent',
      );
      this.refusals.clear(to);
      return sent;
    } catch (error) {
      const failure = asTransferError(error, what);
      const fields = {
        peer: to,
        index: meta.index,
        term: meta.term,
        code: failure.code === null ? null : grpc.status[failure.code],
        error: failure.message,
      };
      if (signal.aborted) this.log.info(fields, 'snapshot transfer cancelled');
      // A refusal repeats identically each time Raft asks again: one warning says it.
      else if (failure.code === grpc.status.FAILED_PRECONDITION || failure.code === grpc.status.INVALID_ARGUMENT) {
        this.refusals.warn(to, failure.message, { event: 'snapshot-refused', ...fields }, 'snapshot transfer refused');
      } else this.log.warn(fields, 'snapshot transfer failed');
      throw failure;
    }
  }

  private clientFor(to: NodeId): grpc.Client {
    const address = this.addressOf(to);
    if (address === undefined) throw new SnapshotTransferError(`no address for peer ${to}`, null);
    const cached = this.clients.get(to);
    if (cached?.address === address) return cached.client;
    cached?.client.close();
    const client = new grpc.Client(address, this.channelCredentials, PEER_CHANNEL_OPTIONS);
    this.clients.set(to, { address, client });
    return client;
  }

  private offer(client: grpc.Client, snapshot: OutgoingSnapshot, deadline: Date, signal: AbortSignal): Promise<WireSnapshotOfferReply> {
    const request: WireSnapshotOffer = {
      from: this.self,
      to: snapshot.to,
      cluster: this.cluster,
      term: snapshot.term,
      index: snapshot.meta.index,
      snapshotTerm: snapshot.meta.term,
      voters: [...snapshot.meta.config.voters],
      totalBytes: snapshot.bytes,
      sha256: Buffer.from(snapshot.sha256, 'hex'),
      ...learnerMark(snapshot.toLearner),
      ...this.credentials,
    };
    return new Promise((resolve, reject) => {
      const cancel = () => call.cancel();
      const call = client.makeUnaryRequest(
        snapshotOfferMethod.path,
        snapshotOfferMethod.requestSerialize,
        snapshotOfferMethod.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline },
        (error, reply) => {
          signal.removeEventListener('abort', cancel);
          if (signal.aborted) reject(signal.reason);
          else if (error)
            reject(new SnapshotTransferError(`offer refused: ${grpc.status[error.code]}: ${error.details}`, error.code, { cause: error }));
          else if (reply === undefined) reject(new SnapshotTransferError('the offer got an empty reply', grpc.status.INTERNAL));
          else resolve(reply);
        },
      );
      signal.addEventListener('abort', cancel, { once: true });
    });
  }

  /** Streams the file from `offset`, a chunk at a time, waiting for 'drain' whenever the call's buffer is full. */
  private stream(client: grpc.Client, snapshot: OutgoingSnapshot, offset: number, deadline: Date, signal: AbortSignal): Promise<SnapshotSent> {
    const { to, meta } = snapshot;
    return new Promise((resolve, reject) => {
      let failure: unknown = null;
      let done = false;
      let sentBytes = 0;
      let chunks = 0;
      let wake: (() => void) | null = null;
      let idleTimer: NodeJS.Timeout | null = null;
      const reader = createReadStream(snapshot.path, { start: offset, end: snapshot.bytes - 1, highWaterMark: this.chunkBytes });

      const call = client.makeClientStreamRequest(
        snapshotChunksMethod.path,
        snapshotChunksMethod.requestSerialize,
        snapshotChunksMethod.responseDeserialize,
        new grpc.Metadata(),
        { deadline },
        (error, reply) => {
          done = true;
          stopWaiting();
          if (failure !== null) reject(failure);
          else if (error)
            reject(
              new SnapshotTransferError(
                `after ${sentBytes} bytes sent from offset ${offset}: ${grpc.status[error.code]}: ${error.details}`,
                error.code,
                { cause: error },
              ),
            );
          else if (reply === undefined || !reply.complete) {
            reject(
              new SnapshotTransferError(
                `${to} answered that it holds ${reply?.stagedBytes ?? '?'} of ${snapshot.bytes} bytes, not the whole file`,
                grpc.status.INTERNAL,
              ),
            );
          } else resolve({ to, meta, resumedFrom: offset, sentBytes, chunks });
        },
      );

      const fail = (error: unknown): void => {
        if (done || failure !== null) return;
        failure = error;
        call.cancel();
        reader.destroy();
        wake?.();
      };
      const onAbort = () => fail(signal.reason);
      const touch = (): void => {
        if (idleTimer !== null) clearTimeout(idleTimer);
        idleTimer = setTimeout(
          () =>
            fail(
              new SnapshotTransferError(
                `no progress for ${this.idleTimeoutMs} ms after ${sentBytes} bytes: is ${to} stuck?`,
                grpc.status.DEADLINE_EXCEEDED,
              ),
            ),
          this.idleTimeoutMs,
        );
      };
      const stopWaiting = (): void => {
        signal.removeEventListener('abort', onAbort);
        if (idleTimer !== null) clearTimeout(idleTimer);
        idleTimer = null;
        wake?.();
      };
      const drained = (): Promise<void> =>
        new Promise((resume) => {
          const onDrain = () => {
            wake = null;
            resume();
          };
          wake = () => {
            call.removeListener('drain', onDrain);
            wake = null;
            resume();
          };
          call.once('drain', onDrain);
        });

      const pump = async (): Promise<void> => {
        let position = offset;
        touch();
        for await (const buffer of reader as AsyncIterable<Buffer>) {
          if (done || failure !== null) return;
          const checksum = crc32(buffer);
          let data = buffer;
          if (this.chunkHook !== undefined) data = (await this.chunkHook({ to, offset: position, data: buffer })) ?? buffer;
          if (done || failure !== null) return;
          const request: WireSnapshotChunk = {
            from: this.self,
            to,
            cluster: this.cluster,
            index: meta.index,
            snapshotTerm: meta.term,
            offset: position,
            data,
            crc32: checksum,
            ...this.credentials,
          };
          const accepted = call.write(request);
          position += buffer.byteLength;
          sentBytes += buffer.byteLength;
          chunks += 1;
          touch();
          if (!accepted) {
            await drained();
            if (done || failure !== null) return;
            touch();
          }
        }
        if (done || failure !== null) return;
        if (position !== snapshot.bytes) {
          throw new SnapshotTransferError(`the file ended at byte ${position}, expected ${snapshot.bytes}: did it change during the transfer?`, null);
        }
        // From here the receiver fsyncs and hashes the file: only the transfer's deadline applies.
        if (idleTimer !== null) clearTimeout(idleTimer);
        idleTimer = null;
        call.end();
      };

      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      pump().catch(fail);
    });
  }
}

function checkOutgoing(snapshot: OutgoingSnapshot, self: NodeId): void {
  const problems: string[] = [];
  if (snapshot.to === self) problems.push('it is addressed to this node itself');
  if (!Number.isSafeInteger(snapshot.bytes) || snapshot.bytes < 1) problems.push(`bytes is ${snapshot.bytes}, not a positive integer`);
  if (!/^[0-9a-f]{64}$/.test(snapshot.sha256)) problems.push(`sha256 "${snapshot.sha256}" is not 64 lowercase hex digits`);
  if (!(snapshot.meta.index >= 1) || !(snapshot.meta.term >= 1) || !(snapshot.term >= 1))
    problems.push('index, term and snapshot term must be at least 1');
  if (snapshot.meta.config.voters.length === 0) problems.push('its configuration has no voters');
  if (problems.length > 0) throw new SnapshotTransferError(`cannot send: ${problems.join('; ')}`, null);
}

function asTransferError(error: unknown, what: string): SnapshotTransferError {
  if (error instanceof SnapshotTransferError)
    return new SnapshotTransferError(`${what}: ${error.message}`, error.code, { cause: error.cause ?? error });
  const message = error instanceof Error ? error.message : String(error);
  return new SnapshotTransferError(`${what}: ${message}`, null, { cause: error });
}

function positive(value: number, name: string): number {
  if (!(value > 0)) throw new RangeError(`SnapshotSender: ${name} must be positive, got ${value}`);
  return value;
}

// ---------------------------------------------------------------------------
// Receiving

export interface ReceivedSnapshot {
  readonly from: NodeId;
  /** The sender's term when it offered the snapshot: the InstallSnapshot message's term. */
  readonly term: number;
  readonly meta: SnapshotMeta;
  /** The verified, durable `.snap` file in incomingDir. The node owns it from now on (move it or delete it). */
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  /** From the offer that started (or resumed) the transfer to the verified file; absent for a file that arrived earlier, handed over again. */
  readonly receiveSeconds?: number;
  /** The offer's toLearner: the InstallSnapshot message's. */
  readonly toLearner?: true;
}

export interface SnapshotReceiverOptions {
  readonly self: NodeId;
  readonly cluster: string;
  /**
   * Checks each offer's and chunk's cluster id, sender membership and
   * incarnation, as the peer service does with batches (share the node's one
   * instance). Without it (tools, tests) only the cluster name is checked.
   */
  readonly admission?: PeerAdmission;
  /** Where snapshots are staged (`.part`) and land (`.snap`); created if missing. */
  readonly incomingDir: string;
  readonly logger: Logger;
  /**
   * Called with each snapshot file that arrived whole and verified, after it
   * is durable under its final name. It must not wait for Raft. It may be
   * called again for the same file when the sender offers a snapshot that is
   * still in incomingDir (its earlier reply was lost): the core ignores an
   * InstallSnapshot it already has.
   */
  readonly onReceived: (snapshot: ReceivedSnapshot) => void;
  /** Aborted when the node shuts down: transfers in flight are ended (UNAVAILABLE) and what they staged made durable. */
  readonly shutdown?: AbortSignal;
  /** Offers of larger files are refused with RESOURCE_EXHAUSTED (default DEFAULT_MAX_SNAPSHOT_BYTES). */
  readonly maxSnapshotBytes?: number;
}

export interface SnapshotReceiverService {
  readonly SnapshotOffer: grpc.handleUnaryCall<WireSnapshotOffer, WireSnapshotOfferReply>;
  readonly SnapshotChunks: grpc.handleClientStreamingCall<WireSnapshotChunk, WireSnapshotReceived>;
}

/**
 * The snapshot half of raftlog.v1.RaftPeer, for
 * `server.addService(raftPeerServerDefinition, { ...createPeerService(...), ...createSnapshotReceiver(...) })`.
 */
export function createSnapshotReceiver(options: SnapshotReceiverOptions): SnapshotReceiverService {
  const receiver = new SnapshotReceiver(options);
  return { SnapshotOffer: receiver.SnapshotOffer, SnapshotChunks: receiver.SnapshotChunks };
}

/** A refusal to send back as the call's status; `message` is its details. */
class Refused extends Error {
  constructor(
    readonly code: grpc.status,
    details: string,
    /** Set for refusals of who the sender is: logged once per sender and reason, as they repeat on every retry. */
    readonly sender: NodeId | null = null,
  ) {
    super(details);
  }
}

/** The sender's latest offer and what has been staged of it. */
interface Staging {
  readonly from: NodeId;
  readonly term: number;
  readonly meta: SnapshotMeta;
  readonly bytes: number;
  readonly sha256: string;
  readonly name: string;
  readonly partPath: string;
  readonly snapPath: string;
  /** Bytes of the file staged so far: the offset the next chunk must start at. */
  size: number;
  file: FileHandle | null;
  /** The SnapshotChunks call writing to it, if any. */
  writer: ChunkCall | null;
  /** performance.now() at the offer that started or resumed this transfer (metrics). */
  readonly offeredAt?: number;
  /** The latest offer's toLearner. */
  readonly toLearner?: true;
}

/** One SnapshotChunks call: it answers exactly once. */
class ChunkCall {
  staging: Staging | null = null;
  private answered = false;

  constructor(
    readonly call: grpc.ServerReadableStream<WireSnapshotChunk, WireSnapshotReceived>,
    private readonly callback: grpc.sendUnaryData<WireSnapshotReceived>,
  ) {}

  get ended(): boolean {
    return this.answered;
  }

  end(refusal: Refused | null, reply?: WireSnapshotReceived): void {
    if (this.answered) return;
    this.answered = true;
    if (refusal !== null) {
      this.callback({ code: refusal.code, details: refusal.message });
      // Stops the loop reading this call's chunks.
      this.call.destroy();
    } else {
      this.callback(null, reply ?? { stagedBytes: 0, complete: false });
    }
  }
}

const SAFE_NODE_ID = /^[A-Za-z0-9_.-]+$/;
const PART_NAME = /^(.+)-(\d+)-(\d+)-([0-9a-f]{16})\.part$/;

class SnapshotReceiver {
  private readonly self: NodeId;
  private readonly cluster: string;
  private readonly admission: PeerAdmission | null;
  private readonly dir: string;
  private readonly log: Logger;
  private readonly refusals: RefusalLog;
  private readonly onReceived: (snapshot: ReceivedSnapshot) => void;
  private readonly maxSnapshotBytes: number;
  private readonly shutdown: AbortSignal | undefined;
  /** Each sender's latest offer. */
  private readonly staged = new Map<NodeId, Staging>();
  private readonly calls = new Set<ChunkCall>();
  /** Offers, chunk writes and cleanups run one at a time, so offsets and files never race. */
  private queue: Promise<void> = Promise.resolve();

  constructor(options: SnapshotReceiverOptions) {
    this.self = options.self;
    this.cluster = options.cluster;
    this.admission = options.admission ?? null;
    if (this.admission !== null && (this.admission.self !== this.self || this.admission.cluster !== this.cluster)) {
      throw new Error(
        `createSnapshotReceiver: the admission check is for ${this.admission.self} of "${this.admission.cluster}", the receiver for ${this.self} of "${this.cluster}"`,
      );
    }
    this.dir = options.incomingDir;
    this.log = options.logger.child({ component: 'snapshot-receiver' });
    this.refusals = new RefusalLog(this.log);
    this.onReceived = options.onReceived;
    this.maxSnapshotBytes = options.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES;
    this.shutdown = options.shutdown;
    this.shutdown?.addEventListener('abort', () => {
      for (const call of [...this.calls]) call.end(new Refused(grpc.status.UNAVAILABLE, `node ${this.self} is shutting down`));
    });
  }

  readonly SnapshotOffer: grpc.handleUnaryCall<WireSnapshotOffer, WireSnapshotOfferReply> = (call, callback) => {
    const offer = call.request;
    const malformed = malformedReason(offer);
    if (malformed !== null) {
      callback({
        code: grpc.status.INVALID_ARGUMENT,
        details: `node ${this.self} cannot read a snapshot offer from ${call.getPeer()}: ${malformed}`,
      });
      return;
    }
    this.serially(() => this.takeOffer(offer)).then(
      (offset) => callback(null, { offset }),
      (error: unknown) => callback(this.toStatus(error, `snapshot offer ${offer.index}/${offer.snapshotTerm} from ${offer.from}`, call.getPeer())),
    );
  };

  readonly SnapshotChunks: grpc.handleClientStreamingCall<WireSnapshotChunk, WireSnapshotReceived> = (call, callback) => {
    const chunkCall = new ChunkCall(call, callback);
    this.calls.add(chunkCall);
    if (this.shutdown?.aborted) chunkCall.end(new Refused(grpc.status.UNAVAILABLE, `node ${this.self} is shutting down`));
    void this.receiveChunks(chunkCall).finally(() => this.calls.delete(chunkCall));
  };

  private serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private toStatus(error: unknown, what: string, peer: string): Partial<grpc.StatusObject> {
    if (error instanceof Refused) {
      const fields = { peerAddress: peer, code: grpc.status[error.code], reason: error.message };
      if (error.sender !== null)
        this.refusals.warn(error.sender, error.message, { event: 'peer-refused', from: error.sender, ...fields }, 'refused a snapshot transfer');
      else this.log.warn(fields, 'refused a snapshot transfer');
      return { code: error.code, details: error.message };
    }
    this.log.error({ peerAddress: peer, err: error }, `failed to take ${what}`);
    const message = error instanceof Error ? error.message : String(error);
    return { code: grpc.status.INTERNAL, details: `node ${this.self} failed to take ${what}: ${message}` };
  }

  private checkOpen(): void {
    if (this.shutdown?.aborted) throw new Refused(grpc.status.UNAVAILABLE, `node ${this.self} is shutting down`);
  }

  private async receiveChunks(chunkCall: ChunkCall): Promise<void> {
    const { call } = chunkCall;
    try {
      for await (const chunk of call as AsyncIterable<WireSnapshotChunk>) {
        if (chunkCall.ended) break;
        const complete = await this.serially(() => this.takeChunk(chunkCall, chunk));
        if (complete !== null) {
          chunkCall.end(null, complete);
          break;
        }
      }
      if (!chunkCall.ended) {
        // The sender ended the call before the last byte: keep what arrived, durably, for the next offer.
        const stagedBytes = await this.serially(() => this.release(chunkCall));
        chunkCall.end(null, { stagedBytes, complete: false });
      }
    } catch (error) {
      // A cancelled call (the sender went away) or one we ended ourselves needs no answer.
      if (!chunkCall.ended && !call.cancelled) {
        const staging = chunkCall.staging;
        const what = staging === null ? 'a snapshot chunk' : `a chunk of ${describeSnapshot(staging.meta)} from ${staging.from}`;
        const status = this.toStatus(error, what, call.getPeer());
        chunkCall.end(new Refused(status.code ?? grpc.status.INTERNAL, status.details ?? 'failed'));
      }
    } finally {
      await this.serially(() => this.release(chunkCall)).catch((error: unknown) =>
        this.log.error({ err: error }, 'failed to close a staged snapshot file'),
      );
    }
  }

  private async takeOffer(offer: WireSnapshotOffer): Promise<number> {
    this.checkOpen();
    checkAddressing(offer, this.self, this.cluster, this.admission, 'snapshot offer');
    const target = this.parseOffer(offer);
    this.refusals.clear(target.from);
    await mkdir(this.dir, { recursive: true });
    const previous = this.staged.get(target.from);
    if (previous !== undefined) {
      this.staged.delete(target.from);
      await this.detach(
        previous,
        new Refused(grpc.status.ABORTED, `node ${this.self}: superseded by a new offer from ${target.from} (${describeSnapshot(target.meta)})`),
      );
    }
    await this.removeStalePartials(target);
    if (await this.redeliverIfComplete(target)) return target.bytes;

    let size = await sizeOf(target.partPath);
    if (size > target.bytes) {
      this.log.warn(
        { from: target.from, path: target.partPath, size, bytes: target.bytes },
        'staged snapshot file is longer than the offered one: discarding it',
      );
      await unlinkIfPresent(target.partPath);
      size = 0;
    }
    if (size === target.bytes) {
      // Every byte arrived, but verifying or renaming did not finish (a crash, a full disk): finish it now.
      try {
        await this.complete({ ...target, size, file: null, writer: null });
        return target.bytes;
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        this.log.warn(
          { from: target.from, path: target.partPath, reason: error.message },
          'a fully staged snapshot failed verification: receiving it again',
        );
        size = 0;
      }
    }
    await this.checkSpace(target, size);
    this.staged.set(target.from, { ...target, size, file: null, writer: null, offeredAt: performance.now() });
    this.log.info(
      { from: target.from, index: target.meta.index, term: target.meta.term, bytes: target.bytes, offset: size },
      size > 0 ? 'snapshot offer: resuming from the staged bytes' : 'snapshot offer: starting a new transfer',
    );
    return size;
  }

  private parseOffer(offer: WireSnapshotOffer): Omit<Staging, 'size' | 'file' | 'writer'> {
    const what = `snapshot offer from ${offer.from}`;
    const invalid = (problem: string) => new Refused(grpc.status.INVALID_ARGUMENT, `${what}: ${problem}`);
    if (!SAFE_NODE_ID.test(offer.from)) throw invalid(`the sender's id "${offer.from}" is not a node id (letters, digits, '_', '.', '-')`);
    if (!(offer.term >= 1 && offer.term <= MAX_WIRE_TERM)) throw invalid(`term is ${offer.term}, not between 1 and ${MAX_WIRE_TERM}`);
    if (!(Number.isSafeInteger(offer.index) && offer.index >= 1) || !(offer.snapshotTerm >= 1 && offer.snapshotTerm <= offer.term)) {
      throw invalid(
        `snapshot index ${offer.index} must be at least 1, and its term ${offer.snapshotTerm} between 1 and the offer's term ${offer.term}`,
      );
    }
    if (!Array.isArray(offer.voters) || offer.voters.length === 0) throw invalid('the configuration has no voters');
    if (offer.voters.some((voter) => typeof voter !== 'string' || voter === '')) throw invalid('a voter id is empty');
    if (!Number.isSafeInteger(offer.totalBytes) || offer.totalBytes < 1) throw invalid(`total_bytes is ${offer.totalBytes}`);
    if (offer.totalBytes > this.maxSnapshotBytes) {
      throw new Refused(
        grpc.status.RESOURCE_EXHAUSTED,
        `${what}: ${offer.totalBytes} bytes is more than node ${this.self} accepts (${this.maxSnapshotBytes})`,
      );
    }
    if (offer.sha256.byteLength !== 32) throw invalid(`sha256 has ${offer.sha256.byteLength} bytes, not 32`);
    const sha256 = Buffer.from(offer.sha256).toString('hex');
    const name = `${offer.from}-${offer.index}-${offer.snapshotTerm}-${sha256.slice(0, 16)}`;
    return {
      from: offer.from,
      term: offer.term,
      meta: { index: offer.index, term: offer.snapshotTerm, config: { voters: [...offer.voters] } },
      bytes: offer.totalBytes,
      sha256,
      name,
      ...learnerMark(offer.toLearner),
      partPath: join(this.dir, `${name}.part`),
      snapPath: join(this.dir, `${name}.snap`),
    };
  }

  /**
   * Deletes partial files no offer will resume: the sender's own other
   * snapshots, and anyone's snapshot older than this one that no current
   * offer stages (a deposed leader's).
   */
  private async removeStalePartials(target: Omit<Staging, 'size' | 'file' | 'writer'>): Promise<void> {
    const inUse = new Set([...this.staged.values()].map((staging) => `${staging.name}.part`));
    for (const file of await readdir(this.dir)) {
      const match = PART_NAME.exec(file);
      if (match === null || file === `${target.name}.part` || inUse.has(file)) continue;
      const [, from, index] = match as unknown as [string, string, string];
      if (from !== target.from && Number(index) >= target.meta.index) continue;
      await unlinkIfPresent(join(this.dir, file));
      this.log.info({ path: join(this.dir, file), offeredBy: target.from, index: target.meta.index }, 'removed a stale partial snapshot');
    }
  }

  /** The whole file is already here (our earlier reply was lost): hand it over again rather than send it again. */
  private async redeliverIfComplete(target: Omit<Staging, 'size' | 'file' | 'writer'>): Promise<boolean> {
    const size = await sizeOf(target.snapPath, -1);
    if (size < 0) return false;
    const actual = size === target.bytes ? await sha256OfFile(target.snapPath) : null;
    if (actual !== target.sha256) {
      this.log.warn(
        { path: target.snapPath, size, bytes: target.bytes, sha256: actual, expected: target.sha256 },
        'a received snapshot file does not match a new offer of the same snapshot: discarding it and receiving it again',
      );
      await unlinkIfPresent(target.snapPath);
      return false;
    }
    this.deliver({
      from: target.from,
      term: target.term,
      meta: target.meta,
      path: target.snapPath,
      bytes: target.bytes,
      sha256: target.sha256,
      ...learnerMark(target.toLearner),
    });
    return true;
  }

  private async checkSpace(target: Omit<Staging, 'size' | 'file' | 'writer'>, staged: number): Promise<void> {
    const fs = await statfs(this.dir);
    const available = fs.bavail * fs.bsize;
    const needed = target.bytes - staged;
    if (needed > available) {
      throw new Refused(
        grpc.status.RESOURCE_EXHAUSTED,
        `node ${this.self} has ${available} bytes free in ${this.dir}, but ${describeSnapshot(target.meta)} from ${target.from} needs ${needed} more`,
      );
    }
  }

  /** Checks and writes one chunk; returns the final answer once the file is complete, null while more is expected. */
  private async takeChunk(chunkCall: ChunkCall, chunk: WireSnapshotChunk): Promise<WireSnapshotReceived | null> {
    this.checkOpen();
    const malformed = malformedReason(chunk);
    if (malformed !== null) throw new Refused(grpc.status.INVALID_ARGUMENT, `node ${this.self} cannot read a snapshot chunk: ${malformed}`);
    checkAddressing(chunk, this.self, this.cluster, this.admission, 'snapshot chunk');
    const what = `chunk at offset ${chunk.offset} of snapshot ${chunk.index}/${chunk.snapshotTerm} from ${chunk.from}`;
    const staging = this.staged.get(chunk.from);
    if (staging === undefined || staging.meta.index !== chunk.index || staging.meta.term !== chunk.snapshotTerm) {
      const latest = staging === undefined ? 'it has no open offer from them' : `their open offer is ${describeSnapshot(staging.meta)}`;
      throw new Refused(grpc.status.FAILED_PRECONDITION, `node ${this.self} got a ${what}, but ${latest}: send SnapshotOffer first`);
    }
    if (chunkCall.staging === null) {
      if (staging.writer !== null) {
        await this.detach(
          staging,
          new Refused(grpc.status.ABORTED, `node ${this.self}: superseded by a newer SnapshotChunks call from ${chunk.from}`),
        );
      }
      staging.writer = chunkCall;
      chunkCall.staging = staging;
    } else if (chunkCall.staging !== staging || staging.writer !== chunkCall) {
      throw new Refused(grpc.status.ABORTED, `node ${this.self} got a ${what} on a call superseded by a newer offer or call`);
    }
    if (chunk.offset !== staging.size) {
      throw new Refused(
        grpc.status.FAILED_PRECONDITION,
        `node ${this.self} got a ${what}, but holds ${staging.size} bytes of it: the next chunk must start at offset ${staging.size}`,
      );
    }
    const length = chunk.data.byteLength;
    if (length === 0 || length > MAX_SNAPSHOT_CHUNK_BYTES) {
      throw new Refused(grpc.status.INVALID_ARGUMENT, `${what} has ${length} bytes; chunks carry 1..${MAX_SNAPSHOT_CHUNK_BYTES}`);
    }
    if (chunk.offset + length > staging.bytes) {
      throw new Refused(grpc.status.OUT_OF_RANGE, `${what} ends at byte ${chunk.offset + length}, past the offered file's ${staging.bytes} bytes`);
    }
    const actual = crc32(chunk.data);
    if (actual !== chunk.crc32) {
      const discarded = staging.size;
      await this.discard(staging);
      throw new Refused(
        grpc.status.DATA_LOSS,
        `${what} fails its CRC-32 (computed ${hex32(actual)}, the sender's is ${hex32(chunk.crc32)}): ` +
          `node ${this.self} discarded the ${discarded} bytes it had staged in ${staging.partPath}`,
      );
    }
    try {
      staging.file ??= await open(staging.partPath, fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600);
      await writeAt(staging.file, chunk.data, chunk.offset);
    } catch (error) {
      // What was written is right where it belongs; the next offer measures the file again.
      this.staged.delete(staging.from);
      await this.detach(staging, null);
      const message = error instanceof Error ? error.message : String(error);
      const code = (error as NodeJS.ErrnoException).code === 'ENOSPC' ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INTERNAL;
      throw new Refused(code, `node ${this.self} failed to write the ${what} to ${staging.partPath}: ${message}`);
    }
    staging.size += length;
    return staging.size === staging.bytes ? await this.complete(staging) : null;
  }

  /** The last byte is in: make the file durable, verify it whole, and only then give it its final name and hand it over. */
  private async complete(staging: Staging): Promise<WireSnapshotReceived> {
    this.staged.delete(staging.from);
    staging.writer = null;
    const file = staging.file;
    staging.file = null;
    if (file !== null) {
      try {
        await file.sync();
      } finally {
        await file.close();
      }
    }
    const actual = await sha256OfFile(staging.partPath);
    if (actual !== staging.sha256) {
      await unlinkIfPresent(staging.partPath);
      throw new Refused(
        grpc.status.DATA_LOSS,
        `${describeSnapshot(staging.meta)} from ${staging.from}: the ${staging.bytes} bytes received hash to sha256 ${actual}, ` +
          `but the offer said ${staging.sha256}: node ${this.self} discarded ${staging.partPath}`,
      );
    }
    await rename(staging.partPath, staging.snapPath);
    await fsyncDirectory(this.dir);
    this.log.info(
      { from: staging.from, index: staging.meta.index, term: staging.meta.term, bytes: staging.bytes, path: staging.snapPath },
      'snapshot received',
    );
    const receiveSeconds = staging.offeredAt === undefined ? {} : { receiveSeconds: (performance.now() - staging.offeredAt) / 1000 };
    this.deliver({
      from: staging.from,
      term: staging.term,
      meta: staging.meta,
      path: staging.snapPath,
      bytes: staging.bytes,
      sha256: staging.sha256,
      ...receiveSeconds,
      ...learnerMark(staging.toLearner),
    });
    return { stagedBytes: staging.bytes, complete: true };
  }

  private deliver(snapshot: ReceivedSnapshot): void {
    try {
      this.onReceived(snapshot);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`the node failed to take ${describeSnapshot(snapshot.meta)} from ${snapshot.from} (${snapshot.path}): ${message}`, {
        cause: error,
      });
    }
  }

  /** Ends a call's hold on its staging file (if it still has it), leaving what it wrote durable; returns the bytes staged. */
  private async release(chunkCall: ChunkCall): Promise<number> {
    const staging = chunkCall.staging;
    if (staging === null) return 0;
    if (staging.writer === chunkCall) {
      await this.detach(staging, null);
      this.log.info({ from: staging.from, index: staging.meta.index, staged: staging.size, bytes: staging.bytes }, 'snapshot transfer paused');
    }
    return staging.size;
  }

  /** Ends the call writing to `staging` (with `refusal`, if any) and closes its file, fsync'd, so a resume can rely on its size. */
  private async detach(staging: Staging, refusal: Refused | null): Promise<void> {
    const writer = staging.writer;
    staging.writer = null;
    if (writer !== null && refusal !== null) writer.end(refusal);
    const file = staging.file;
    staging.file = null;
    if (file !== null) {
      try {
        await file.sync();
      } finally {
        await file.close();
      }
    }
  }

  private async discard(staging: Staging): Promise<void> {
    this.staged.delete(staging.from);
    await this.detach(staging, null);
    await unlinkIfPresent(staging.partPath);
    staging.size = 0;
  }
}

interface Addressed {
  readonly from: string;
  readonly to: string;
  readonly cluster: string;
  readonly clusterId?: string | undefined;
  readonly memberIncarnation?: string | undefined;
}

/** The same checks as a Raft batch gets: the right cluster (and, with `admission`, a member of it), the right node, not from itself. */
function checkAddressing(request: Addressed, self: NodeId, cluster: string, admission: PeerAdmission | null, what: string): void {
  const invalid = (details: string) => new Refused(grpc.status.INVALID_ARGUMENT, details);
  const mismatch = (details: string) => new Refused(grpc.status.FAILED_PRECONDITION, details);
  if (request.from === '') throw invalid(`${what} to ${self} does not say which node sent it (field "from" is empty)`);
  if (request.cluster === '') throw invalid(`${what} from ${request.from} does not name its cluster (field "cluster" is empty)`);
  if (admission !== null) {
    // Only a leader sends snapshots: taken from a node this one's configuration does not list yet (see PeerAdmission.check).
    const refused = admission.check(request, what, offeredByLeader);
    if (refused !== null) throw new Refused(refused.code, refused.details, request.from);
  } else if (request.cluster !== cluster) {
    throw mismatch(
      `node ${self} belongs to cluster "${cluster}", but ${request.from} sent a ${what} for cluster "${request.cluster}": ` +
        `is its peer list pointing at the wrong cluster?`,
    );
  }
  if (request.to === '') throw invalid(`${what} from ${request.from} does not say which node it is for (field "to" is empty)`);
  if (request.to !== self) {
    throw mismatch(
      `this is node ${self}, but ${request.from} sent a ${what} meant for ${request.to}: ${request.from}'s address for ${request.to} points at ${self}`,
    );
  }
  if (request.from === self) throw mismatch(`node ${self} got a ${what} that claims to come from itself: do two nodes share the id ${self}?`);
}

// ---------------------------------------------------------------------------
// Files

async function writeAt(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < data.byteLength) {
    const { bytesWritten } = await file.write(data, written, data.byteLength - written, position + written);
    written += bytesWritten;
  }
}

/** SHA-256 of a file's bytes as 64 hex digits, read as a stream. */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const buffer of createReadStream(path) as AsyncIterable<Buffer>) hash.update(buffer);
  return hash.digest('hex');
}

async function sizeOf(path: string, missing = 0): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return missing;
    throw error;
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Makes a rename in `dir` durable. */
async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const hex32 = (value: number): string => (value >>> 0).toString(16).padStart(8, '0');

function offeredByLeader(): boolean {
  return true;
}
