/**
 * Raft traffic between node processes over gRPC (raftlog.v1.RaftPeer).
 *
 * Receiving: `createPeerService` checks each batch, decodes it and hands the
 * messages to the node at once. Batches arrive on Stream calls (what nodes
 * use) or one per Deliver call (for tools and tests).
 *
 * Sending: `PeerClients` queues messages per peer and writes them as batches
 * on one long-lived Stream call per peer, so a peer gets messages in the
 * order they were sent and a batch costs an HTTP/2 data frame, not a call.
 * It never blocks and never waits for a slow or dead peer: when the stream's
 * flow-control window is full, messages wait in a bounded queue; when a peer
 * cannot be reached, its backlog is dropped rather than replayed late (Raft
 * retransmits what matters).
 *
 * Identity (issue 10): every batch carries the sender's cluster id and member
 * incarnation; a node's receiver refuses another cluster, a sender it does not
 * know as a member, and a second process claiming a member id that is still
 * talking (cluster-identity.ts). A refusal ends the stream with its status; the
 * receiver logs it once per sender and reason, the sender once per peer and
 * reason, and both at debug level while it repeats.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/types.js';
import { NOT_A_MEMBER, REFUSAL_METADATA_KEY, type PeerAdmission, type PeerIdentity, type Refusal } from './cluster-identity.js';
import { RefusalLog } from './refusal-log.js';
import { streamMethod, raftPeerServiceDefinition } from './raft-proto.js';
import {
  fromWire,
  toWire,
  WireFormatError,
  type WireDeliverReply,
  type WireMessageBatch,
  type WireRaftMessage,
} from './wire-codec.js';

export { raftPeerServiceDefinition } from './raft-proto.js';

const MiB = 1024 * 1024;

/**
 * Largest Deliver request or reply either side accepts. One append carries up
 * to maxMessageBytes of entries (512 KiB by default) and a batch several
 * appends; PeerClients keeps its batches well below this (maxBatchBytes).
 */
export const PEER_MAX_MESSAGE_BYTES = 64 * MiB;

/**
 * Channel options for a LAN or loopback cluster: keepalive pings notice a dead
 * peer (no RST, e.g. a host gone or a partition) within a few seconds even
 * when no call is in flight, and reconnection is retried at least once a
 * second instead of gRPC's default backoff of up to two minutes, so a
 * restarted peer is back as soon as it listens.
 */
export const PEER_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_send_message_length': PEER_MAX_MESSAGE_BYTES,
  'grpc.max_receive_message_length': PEER_MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 5_000,
  'grpc.keepalive_timeout_ms': 2_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 1_000,
  // Each PeerClients owns its connections: closing it never affects another instance.
  'grpc.use_local_subchannel_pool': 1,
  'grpc.enable_channelz': 0,
};

/** Server options of a node (peers and clients alike): message size, pings to notice dead clients, calls per connection. */
export const PEER_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_send_message_length': PEER_MAX_MESSAGE_BYTES,
  'grpc.max_receive_message_length': PEER_MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 2_000,
  'grpc.enable_channelz': 0,
  // Calls in progress per client connection. Past it the client holds further calls itself (HTTP/2
  // SETTINGS_MAX_CONCURRENT_STREAMS) instead of this node holding them all: under open-loop load far
  // above capacity, unbounded streams held 20,000 calls, 590 MiB and reset connections; 1,000 kept the
  // leader near 260 MiB and served more (npm run bench:overload). Peers use one stream each.
  'grpc.max_concurrent_streams': 1_000,
};

// ---------------------------------------------------------------------------
// Receiving

export interface PeerServiceOptions {
  /** This node's id: batches addressed to another id are refused. */
  readonly self: NodeId;
  /** The cluster's name: batches from another cluster are refused. */
  readonly cluster: string;
  /**
   * Checks each batch's cluster id, sender membership and incarnation (see
   * cluster-identity.ts); a node always has one. Without it (tools,
   * benchmarks) only the cluster name is checked.
   */
  readonly admission?: PeerAdmission;
  /**
   * Called with every accepted batch, in arrival order. It must not wait for
   * Raft: queue the messages and return.
   */
  readonly onMessages: (from: NodeId, messages: Message[]) => void;
  readonly logger: Logger;
  /** Aborted when the node shuts down: open streams are ended, so the server's graceful shutdown does not wait for peers. */
  readonly shutdown?: AbortSignal;
}

/**
 * The implementation of raftlog.v1.RaftPeer, for
 * `server.addService(raftPeerServiceDefinition, createPeerService(...))`.
 */
export function createPeerService(options: PeerServiceOptions): grpc.UntypedServiceImplementation {
  const { self, cluster, onMessages } = options;
  const admission = options.admission ?? null;
  if (admission !== null && (admission.self !== self || admission.cluster !== cluster)) {
    throw new Error(`createPeerService: the admission check is for ${admission.self} of "${admission.cluster}", the service for ${self} of "${cluster}"`);
  }
  const log = options.logger.child({ component: 'peer-service' });
  const refusals = new RefusalLog(log);
  const openStreams = new Set<() => void>();
  options.shutdown?.addEventListener('abort', () => {
    for (const end of [...openStreams]) end();
  });

  /** Checks, decodes and hands over one batch; a refusal says what was wrong, and nothing of the batch is delivered. */
  const accept = (batch: WireMessageBatch, peer: string): Refusal | null => {
    const refuse = (refusal: Refusal): Refusal => {
      const fields = { event: 'peer-refused', from: batch.from, peerAddress: peer, code: grpc.status[refusal.code], reason: refusal.details };
      // Once per sender and reason: a refused peer retries every second or so.
      refusals.warn(typeof batch.from === 'string' && batch.from !== '' ? batch.from : peer, refusal.details, fields, 'refused a batch from a peer');
      return refusal;
    };
    const refusal = checkBatch(batch, self, cluster, admission);
    if (refusal !== null) return refuse(refusal);
    const messages: Message[] = [];
    for (const [i, wire] of batch.messages.entries()) {
      try {
        messages.push(fromWire(batch.from, self, wire));
      } catch (error) {
        const where = `message ${i + 1} of ${batch.messages.length} in the batch from ${batch.from}`;
        if (error instanceof WireFormatError) return refuse({ code: grpc.status.INVALID_ARGUMENT, details: `${where}: ${error.message}` });
        log.error({ from: batch.from, err: error }, 'failed to decode a message');
        return { code: grpc.status.INTERNAL, details: `node ${self} failed to decode ${where}` };
      }
    }
    log.debug({ from: batch.from, messages: messages.length }, 'batch received');
    refusals.clear(batch.from);
    if (messages.length === 0) return null;
    try {
      onMessages(batch.from, messages);
    } catch (error) {
      log.error({ from: batch.from, err: error }, 'the node failed to take a batch of messages');
      return { code: grpc.status.INTERNAL, details: `node ${self} failed to take the batch: ${error instanceof Error ? error.message : String(error)}` };
    }
    return null;
  };

  const Deliver: grpc.handleUnaryCall<WireMessageBatch, WireDeliverReply> = (call, callback) => {
    const refusal = accept(call.request, call.getPeer());
    if (refusal !== null) callback(refusal);
    else callback(null, {});
  };

  const Stream: grpc.handleClientStreamingCall<WireMessageBatch, WireDeliverReply> = (call, callback) => {
    let ended = false;
    let acknowledged = false;
    const end = (refusal: Refusal | null): void => {
      if (ended) return;
      ended = true;
      openStreams.delete(shutDown);
      if (refusal !== null) callback(refusal);
      else callback(null, {});
    };
    const shutDown = () => end({ code: grpc.status.UNAVAILABLE, details: `node ${self} is shutting down` });
    openStreams.add(shutDown);
    call.on('data', (batch: WireMessageBatch) => {
      if (ended) return;
      const refusal = accept(batch, call.getPeer());
      if (refusal !== null) {
        end(refusal);
      } else if (!acknowledged) {
        acknowledged = true;
        call.sendMetadata(new grpc.Metadata());
      }
    });
    call.on('end', () => end(null));
    call.on('cancelled', () => {
      ended = true;
      openStreams.delete(shutDown);
    });
    call.on('error', () => end(null));
  };
  return { Deliver, Stream } as grpc.UntypedServiceImplementation;
}

/** What only a leader sends: appends, heartbeats, read-index answers, a hand-over. */
const LEADER_BODIES: ReadonlySet<string> = new Set(['appendRequest', 'heartbeat', 'readIndexResponse', 'timeoutNow']);

function isLeaderTraffic(message: WireRaftMessage): boolean {
  const bodies = message.body !== undefined ? [message.body] : Object.keys(message).filter((key) => key !== 'term');
  return bodies.length > 0 && bodies.every((body) => LEADER_BODIES.has(body));
}

function checkBatch(batch: WireMessageBatch, self: NodeId, cluster: string, admission: PeerAdmission | null): Refusal | null {
  const invalid = (details: string): Refusal => ({ code: grpc.status.INVALID_ARGUMENT, details });
  const mismatch = (details: string): Refusal => ({ code: grpc.status.FAILED_PRECONDITION, details });
  if (typeof batch.from !== 'string' || batch.from === '') {
    return invalid(`batch to ${self} does not say which node sent it (field "from" is empty)`);
  }
  if (typeof batch.cluster !== 'string' || batch.cluster === '') {
    return invalid(`batch from ${batch.from} does not name its cluster (field "cluster" is empty)`);
  }
  if (admission !== null) {
    const fromLeader = () => Array.isArray(batch.messages) && batch.messages.length > 0 && batch.messages.every(isLeaderTraffic);
    const refused = admission.check(batch, 'batch', { fromLeader });
    if (refused !== null) return refused;
  } else if (batch.cluster !== cluster) {
    return mismatch(
      `node ${self} belongs to cluster "${cluster}", but ${batch.from} sent a batch for cluster "${batch.cluster}": ` +
        `is its peer list pointing at the wrong cluster?`,
    );
  }
  if (typeof batch.to !== 'string' || batch.to === '') {
    return invalid(`batch from ${batch.from} does not say which node it is for (field "to" is empty)`);
  }
  if (batch.to !== self) {
    return mismatch(
      `this is node ${self}, but ${batch.from} sent a batch meant for ${batch.to}: ` +
        `${batch.from}'s address for ${batch.to} points at ${self}`,
    );
  }
  if (batch.from === self) {
    return mismatch(`node ${self} got a batch that claims to come from itself: do two nodes share the id ${self}?`);
  }
  if (!Array.isArray(batch.messages)) return invalid(`batch from ${batch.from} has no list of messages`);
  return null;
}

/** Binds `server` to `address` ("host:port"; port 0 picks a free one) and returns the bound port. */
export function bindPeerServer(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error !== null) reject(new Error(`cannot listen for peers on ${address}: ${error.message}`, { cause: error }));
      else resolve(port);
    });
  });
}

/** Starts a gRPC server with only the peer service on it. */
export async function startPeerServer(
  address: string,
  options: PeerServiceOptions,
): Promise<{ readonly server: grpc.Server; readonly port: number }> {
  const server = new grpc.Server(PEER_SERVER_OPTIONS);
  server.addService(raftPeerServiceDefinition, createPeerService(options));
  try {
    return { server, port: await bindPeerServer(server, address) };
  } catch (error) {
    server.forceShutdown();
    throw error;
  }
}

/** Stops a server: lets calls in progress finish for up to `graceMs`, then cuts them. */
export function stopPeerServer(server: grpc.Server, graceMs = 1_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.forceShutdown(), graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

// ---------------------------------------------------------------------------
// Sending

export interface PeerClientsOptions {
  readonly self: NodeId;
  readonly cluster: string;
  /** The cluster id and incarnation every batch carries; a node always has one (peers refuse batches without). */
  readonly identity?: PeerIdentity;
  /** Peer id -> "host:port" of its peer service. This node's own id may be listed; it is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly logger: Logger;
  /** Most messages in one batch (default 1024). */
  readonly maxBatchMessages?: number;
  /** Roughly the most bytes in one batch (default 16 MiB); a single larger message still goes alone. */
  readonly maxBatchBytes?: number;
  /** Per peer; beyond this the oldest queued messages are dropped (default 10000). */
  readonly maxQueuedMessages?: number;
  /** Wait after the first failure to reach a peer (default 50 ms), doubling up to maxBackoffMs. */
  readonly initialBackoffMs?: number;
  /** Default 1000 ms. */
  readonly maxBackoffMs?: number;
  /** A peer refused this node's messages because its configuration does not list this node (NOT_A_MEMBER). */
  readonly onRefusedAsNonMember?: (peer: NodeId) => void;
}

/** What one link to a peer has done so far (for status pages, metrics and tests). */
export interface PeerLinkStats {
  readonly peer: NodeId;
  readonly address: string;
  /** 'unreachable': the stream could not reach it or broke; 'refused': it answered with an error. */
  readonly state: 'ok' | 'unreachable' | 'refused';
  readonly queued: number;
  /** A Stream call to the peer is open. */
  readonly streaming: boolean;
  /** Batches and messages written to the stream (handed to HTTP/2; a stream that breaks loses what it had not delivered). */
  readonly sentBatches: number;
  readonly sentMessages: number;
  /** Streams that ended with an error. */
  readonly failedCalls: number;
  /** Dropped because the queue was full (oldest first). */
  readonly droppedOverflow: number;
  /** Dropped because the stream failed: what was queued, and what was written to a stream the peer never accepted. */
  readonly droppedFailed: number;
}

interface Queued {
  readonly wire: WireRaftMessage;
  readonly bytes: number;
}

interface PeerLink {
  readonly id: NodeId;
  readonly address: string;
  client: grpc.Client | null;
  queue: Queued[];
  stream: grpc.ClientWritableStream<WireMessageBatch> | null;
  /** The stream's flow-control window is full: wait for 'drain'. */
  blocked: boolean;
  /** The peer has accepted a batch on the current stream (it sent its response headers). */
  accepted: boolean;
  /** Written to the current stream before the peer accepted anything: lost if the stream fails before that. */
  unconfirmedBatches: number;
  unconfirmedMessages: number;
  settled: Promise<void> | null;
  flushScheduled: boolean;
  retryTimer: NodeJS.Timeout | null;
  backoffMs: number;
  state: 'ok' | 'unreachable' | 'refused';
  lastRefusal: string | null;
  failingSince: number;
  droppedWhileFailing: number;
  overflowing: boolean;
  sentBatches: number;
  sentMessages: number;
  failedCalls: number;
  droppedOverflow: number;
  droppedFailed: number;
}

/**
 * Sends the core's messages to peers. `send` queues and returns; a peer that
 * is down costs nothing but a log line when it goes and one when it comes back.
 */
export class PeerClients {
  private readonly self: NodeId;
  private readonly cluster: string;
  private readonly identity: PeerIdentity | null;
  private readonly log: Logger;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly unknownPeers = new Set<NodeId>();
  private readonly maxBatchMessages: number;
  private readonly maxBatchBytes: number;
  private readonly maxQueuedMessages: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly onRefusedAsNonMember: ((peer: NodeId) => void) | undefined;
  private closing: Promise<void> | null = null;

  constructor(options: PeerClientsOptions) {
    this.self = options.self;
    this.cluster = options.cluster;
    this.identity = options.identity ?? null;
    this.onRefusedAsNonMember = options.onRefusedAsNonMember;
    this.log = options.logger.child({ component: 'peer-clients' });
    this.maxBatchMessages = positive(options.maxBatchMessages ?? 1024, 'maxBatchMessages');
    this.maxBatchBytes = positive(options.maxBatchBytes ?? 16 * MiB, 'maxBatchBytes');
    this.maxQueuedMessages = positive(options.maxQueuedMessages ?? 10_000, 'maxQueuedMessages');
    this.initialBackoffMs = positive(options.initialBackoffMs ?? 50, 'initialBackoffMs');
    this.maxBackoffMs = Math.max(this.initialBackoffMs, options.maxBackoffMs ?? 1_000);
    for (const [id, address] of options.peers) this.addLink(id, address);
  }

  /**
   * The address book follows the cluster's configuration: links to members
   * added since, none to members removed (their queues and streams are
   * dropped), and a member whose address changed is reached at the new one.
   */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    if (this.closing !== null) return;
    for (const [id, link] of [...this.links]) {
      const address = peers.get(id);
      if (address === link.address) continue;
      this.dropLink(link);
      if (address !== undefined) this.addLink(id, address);
    }
    for (const [id, address] of peers) {
      if (!this.links.has(id)) this.addLink(id, address);
    }
  }

  private dropLink(link: PeerLink): void {
    if (link.retryTimer !== null) clearTimeout(link.retryTimer);
    link.retryTimer = null;
    link.queue = [];
    link.stream?.cancel();
    const client = link.client;
    if (client !== null) void (link.settled ?? Promise.resolve()).then(() => client.close());
    this.links.delete(link.id);
  }

  private addLink(id: NodeId, address: string): void {
    if (id === this.self) return;
    this.unknownPeers.delete(id);
    this.links.set(id, {
      id,
      address,
      client: null,
      queue: [],
      stream: null,
      blocked: false,
      accepted: false,
      unconfirmedBatches: 0,
      unconfirmedMessages: 0,
      settled: null,
      flushScheduled: false,
      retryTimer: null,
      backoffMs: 0,
      state: 'ok',
      lastRefusal: null,
      failingSince: 0,
      droppedWhileFailing: 0,
      overflowing: false,
      sentBatches: 0,
      sentMessages: 0,
      failedCalls: 0,
      droppedOverflow: 0,
      droppedFailed: 0,
    });
  }

  /**
   * Queues messages for their peers (`message.to`) and returns at once. Never
   * throws because a peer is down; throws only on a caller's bug (a message
   * from another node, or one the wire cannot carry). Messages to a node that
   * is not in the peer list are dropped with a warning.
   */
  send(messages: readonly Message[]): void {
    if (this.closing !== null) return;
    const touched = new Set<PeerLink>();
    for (const message of messages) {
      if (message.from !== this.self) {
        throw new Error(`PeerClients of ${this.self} asked to send a ${message.type} from ${message.from}`);
      }
      const link = this.links.get(message.to);
      if (link === undefined) {
        this.dropForUnknownPeer(message);
        continue;
      }
      link.queue.push({ wire: toWire(message), bytes: estimateBytes(message) });
      touched.add(link);
    }
    for (const link of touched) {
      this.trimQueue(link);
      this.scheduleFlush(link);
    }
  }

  stats(): PeerLinkStats[] {
    return [...this.links.values()].map((link) => ({
      peer: link.id,
      address: link.address,
      state: link.state,
      queued: link.queue.length,
      streaming: link.stream !== null,
      sentBatches: link.sentBatches,
      sentMessages: link.sentMessages,
      failedCalls: link.failedCalls,
      droppedOverflow: link.droppedOverflow,
      droppedFailed: link.droppedFailed,
    }));
  }

  /** Drops what is queued, cancels the streams and closes the connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const settled: Promise<void>[] = [];
    for (const link of this.links.values()) {
      if (link.retryTimer !== null) clearTimeout(link.retryTimer);
      link.retryTimer = null;
      link.queue = [];
      if (link.settled !== null) settled.push(link.settled);
      link.stream?.cancel();
    }
    await Promise.all(settled);
    for (const link of this.links.values()) link.client?.close();
  }

  /** Writes on the next microtask, so messages queued by several send() calls in one turn share a batch. */
  private scheduleFlush(link: PeerLink): void {
    if (link.flushScheduled) return;
    link.flushScheduled = true;
    queueMicrotask(() => {
      link.flushScheduled = false;
      this.flush(link);
    });
  }

  private flush(link: PeerLink): void {
    if (this.closing !== null || link.blocked || link.retryTimer !== null || link.queue.length === 0) return;
    const stream = link.stream ?? this.openStream(link);
    while (link.queue.length > 0 && !link.blocked) {
      const batch = this.takeBatch(link);
      const request: WireMessageBatch = {
        from: this.self,
        to: link.id,
        cluster: this.cluster,
        messages: batch.map((queued) => queued.wire),
        ...(this.identity === null ? {} : { clusterId: this.identity.clusterId, memberIncarnation: this.identity.incarnation }),
      };
      link.sentBatches += 1;
      link.sentMessages += batch.length;
      if (!link.accepted) {
        link.unconfirmedBatches += 1;
        link.unconfirmedMessages += batch.length;
      }
      if (!stream.write(request)) {
        link.blocked = true;
        stream.once('drain', () => {
          link.blocked = false;
          this.scheduleFlush(link);
        });
      }
    }
  }

  private openStream(link: PeerLink): grpc.ClientWritableStream<WireMessageBatch> {
    link.client ??= new grpc.Client(link.address, grpc.credentials.createInsecure(), PEER_CHANNEL_OPTIONS);
    let settle!: () => void;
    link.settled = new Promise((resolve) => (settle = resolve));
    const stream = link.client.makeClientStreamRequest(
      streamMethod.path,
      streamMethod.requestSerialize,
      streamMethod.responseDeserialize,
      new grpc.Metadata(),
      {},
      (error) => {
        let lost = 0;
        if (link.stream === stream) {
          if (!link.accepted) {
            // Never accepted: nothing written on this stream reached the peer.
            link.sentBatches -= link.unconfirmedBatches;
            link.sentMessages -= link.unconfirmedMessages;
            lost = link.unconfirmedMessages;
          }
          link.stream = null;
          link.blocked = false;
          link.settled = null;
          link.accepted = false;
          link.unconfirmedBatches = 0;
          link.unconfirmedMessages = 0;
        }
        settle();
        if (this.closing !== null) return;
        if (error) this.onFailure(link, error, lost);
        this.scheduleFlush(link);
      },
    );
    // The receiver's response headers come once it has accepted a batch: the peer is there and takes our messages.
    stream.on('metadata', () => this.onAccepted(link));
    link.stream = stream;
    return stream;
  }

  private takeBatch(link: PeerLink): Queued[] {
    const queue = link.queue;
    let count = 0;
    let bytes = 0;
    while (count < queue.length && count < this.maxBatchMessages) {
      const next = (queue[count] as Queued).bytes;
      if (count > 0 && bytes + next > this.maxBatchBytes) break;
      bytes += next;
      count += 1;
    }
    if (count === queue.length) {
      link.queue = [];
      return queue;
    }
    return queue.splice(0, count);
  }

  private trimQueue(link: PeerLink): void {
    const excess = link.queue.length - this.maxQueuedMessages;
    if (excess <= 0) return;
    link.queue.splice(0, excess);
    link.droppedOverflow += excess;
    if (!link.overflowing) {
      link.overflowing = true;
      this.log.warn(
        { peer: link.id, address: link.address, maxQueuedMessages: this.maxQueuedMessages },
        'peer queue full: dropping the oldest messages',
      );
    }
  }

  private onAccepted(link: PeerLink): void {
    link.accepted = true;
    link.unconfirmedBatches = 0;
    link.unconfirmedMessages = 0;
    link.backoffMs = 0;
    if (link.state !== 'ok') {
      this.log.info(
        {
          peer: link.id,
          address: link.address,
          downForMs: Math.round(performance.now() - link.failingSince),
          droppedMessages: link.droppedWhileFailing,
        },
        link.state === 'unreachable' ? 'peer reachable again' : 'peer accepts messages again',
      );
      link.state = 'ok';
      link.lastRefusal = null;
    }
    if (link.overflowing && link.queue.length === 0) link.overflowing = false;
  }

  private onFailure(link: PeerLink, error: grpc.ServiceError, lost: number): void {
    link.failedCalls += 1;
    // Raft retransmits whatever matters; a backlog replayed late only gets in the way.
    const dropped = lost + link.queue.length;
    link.queue = [];
    link.droppedFailed += dropped;
    link.overflowing = false;
    link.backoffMs = link.backoffMs === 0 ? this.initialBackoffMs : Math.min(link.backoffMs * 2, this.maxBackoffMs);
    const code = grpc.status[error.code] ?? String(error.code);
    const fields = { peer: link.id, address: link.address, code, error: error.details };
    const unreachable =
      error.code === grpc.status.UNAVAILABLE ||
      error.code === grpc.status.DEADLINE_EXCEEDED ||
      error.code === grpc.status.CANCELLED;
    if (link.state === 'ok') {
      link.failingSince = performance.now();
      link.droppedWhileFailing = 0;
    }
    link.droppedWhileFailing += dropped;
    if (unreachable) {
      if (link.state !== 'unreachable') this.log.info(fields, 'peer unreachable');
      link.state = 'unreachable';
    } else {
      // The peer answered but refused (wrong cluster or node id, a message it cannot decode, ...).
      const refusal = `${code}: ${error.details}`;
      if (error.metadata?.get(REFUSAL_METADATA_KEY).includes(NOT_A_MEMBER)) this.onRefusedAsNonMember?.(link.id);
      if (link.state !== 'refused' || link.lastRefusal !== refusal) this.log.warn({ event: 'peer-refused', ...fields }, 'peer refused messages');
      link.state = 'refused';
      link.lastRefusal = refusal;
    }
    this.log.debug({ ...fields, dropped, retryInMs: link.backoffMs }, 'stream failed');
    link.retryTimer = setTimeout(() => {
      link.retryTimer = null;
      this.flush(link);
    }, link.backoffMs);
    link.retryTimer.unref();
  }

  private dropForUnknownPeer(message: Message): void {
    if (message.to === this.self) {
      throw new Error(`PeerClients of ${this.self} asked to send a ${message.type} to itself`);
    }
    if (this.unknownPeers.has(message.to)) return;
    this.unknownPeers.add(message.to);
    this.log.warn({ peer: message.to, type: message.type }, 'no address for peer: dropping its messages');
  }
}

/** Rough size on the wire, to keep batches well under PEER_MAX_MESSAGE_BYTES. */
function estimateBytes(message: Message): number {
  switch (message.type) {
    case 'AppendRequest': {
      let bytes = 48;
      for (const entry of message.entries) bytes += entry.data.byteLength + 32;
      return bytes;
    }
    case 'ReadIndexRequest':
    case 'ReadIndexResponse': {
      let bytes = 32;
      for (const id of message.requestIds) bytes += id.length * 3 + 4;
      return bytes;
    }
    default:
      return 48;
  }
}

function positive(value: number, name: string): number {
  if (!(value > 0)) throw new RangeError(`PeerClients: ${name} must be positive, got ${value}`);
  return value;
}
