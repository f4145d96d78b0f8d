/**
 * The sending side of the peer transport. `PeerClients` keeps one `PeerLink`
 * per peer; each link queues its peer's messages and writes them as batches
 * on one long-lived Stream call, so a peer gets messages in the order they
 * were sent and a batch costs an HTTP/2 data frame, not a call. Nothing here
 * blocks or waits for a slow or dead peer: when the stream's flow-control
 * window is full, messages wait in a bounded queue; when a peer cannot be
 * reached, its backlog is dropped rather than replayed late (Raft retransmits
 * what matters).
 *
 * A peer's refusal (cluster-identity.ts) is logged once per peer and reason,
 * and at debug level while it repeats.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { AppendRequest, Message, NodeId } from '../raft/types.js';
import { NOT_A_MEMBER, type PeerIdentity, REFUSAL_METADATA_KEY } from './cluster-identity.js';
import { CommitNoticeHold, isCommitNotice } from './commit-notice-hold.js';
import type { Failpoints } from './failpoints.js';
import { PEER_CHANNEL_OPTIONS, PEER_MAX_BATCH_BYTES } from './peer-transport.js';
import { streamMethod } from './raft-proto.js';
import { toWire, type WireMessageBatch, type WireRaftMessage } from './wire-codec.js';

export interface PeerClientsOptions {
  readonly self: NodeId;
  readonly cluster: string;
  /** The cluster id and incarnation every batch carries; a node always has one (peers refuse batches without). */
  readonly identity?: PeerIdentity;
  /** Where this node takes peer messages, sent with every batch (`from_address`) so that a peer can answer it. */
  readonly selfAddress?: () => string | undefined;
  /** Peer id -> "host:port" of its peer service. This node's own id may be listed; it is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly logger: Logger;
  /** Most messages in one batch (default 1024). */
  readonly maxBatchMessages?: number;
  /** Roughly the most bytes in one batch (default PEER_MAX_BATCH_BYTES, 4 MiB); a single larger message still goes alone. */
  readonly maxBatchBytes?: number;
  /** Per peer; beyond this the oldest queued messages are dropped (default 10000). */
  readonly maxQueuedMessages?: number;
  /** Wait after the first failure to reach a peer (default 50 ms), doubling up to maxBackoffMs. */
  readonly initialBackoffMs?: number;
  /** Default 1000 ms. */
  readonly maxBackoffMs?: number;
  /** A peer refused this node's messages because its configuration does not list this node (NOT_A_MEMBER). */
  readonly onRefusedAsNonMember?: (peer: NodeId) => void;
  /** How the connections to peers are secured (tls-config.ts); default plaintext. */
  readonly channelCredentials?: grpc.ChannelCredentials;
  /** Faults for tests (failpoints.ts: peer-send); null or absent in production. */
  readonly failpoints?: Failpoints | null;
  /**
   * How long an append without entries (a commit notice) may wait for the
   * next message to its peer, which makes it unneeded when that message is an
   * append reaching as far (default 0: sent at once). See PeerLink.holdCommitNotice.
   */
  readonly commitNoticeDelayMs?: number;
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
  /** Appends without entries not sent because what was sent next while they waited (an append, a newer one) carried their commit index. */
  readonly foldedCommitNotices: number;
}

/** What every link of one PeerClients shares: who sends, the limits, and where refusals go. */
interface LinkSettings {
  readonly self: NodeId;
  readonly cluster: string;
  readonly identity: PeerIdentity | null;
  readonly selfAddress: () => string | undefined;
  readonly log: Logger;
  readonly maxBatchMessages: number;
  readonly maxBatchBytes: number;
  readonly maxQueuedMessages: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly onRefusedAsNonMember: ((peer: NodeId) => void) | undefined;
  readonly channelCredentials: grpc.ChannelCredentials;
  readonly commitNoticeDelayMs: number;
}

interface Queued {
  readonly wire: WireRaftMessage;
  readonly bytes: number;
}

/**
 * Sends the core's messages to peers. `send` queues and returns; a peer that
 * is down costs nothing but a log line when it goes and one when it comes back.
 */
export class PeerClients {
  private readonly settings: LinkSettings;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly unknownPeers = new Set<NodeId>();
  private closing: Promise<void> | null = null;
  private readonly failpoints: Failpoints | null;

  constructor(options: PeerClientsOptions) {
    this.failpoints = options.failpoints ?? null;
    const initialBackoffMs = positive(options.initialBackoffMs ?? 50, 'initialBackoffMs');
    this.settings = {
      self: options.self,
      cluster: options.cluster,
      identity: options.identity ?? null,
      selfAddress: options.selfAddress ?? (() => undefined),
      log: options.logger.child({ component: 'peer-clients' }),
      maxBatchMessages: positive(options.maxBatchMessages ?? 1024, 'maxBatchMessages'),
      maxBatchBytes: positive(options.maxBatchBytes ?? PEER_MAX_BATCH_BYTES, 'maxBatchBytes'),
      maxQueuedMessages: positive(options.maxQueuedMessages ?? 10_000, 'maxQueuedMessages'),
      initialBackoffMs,
      maxBackoffMs: Math.max(initialBackoffMs, options.maxBackoffMs ?? 1_000),
      onRefusedAsNonMember: options.onRefusedAsNonMember,
      channelCredentials: options.channelCredentials ?? grpc.credentials.createInsecure(),
      commitNoticeDelayMs: nonNegative(options.commitNoticeDelayMs ?? 0, 'commitNoticeDelayMs'),
    };
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
      link.drop();
      this.links.delete(id);
      if (address !== undefined) this.addLink(id, address);
    }
    for (const [id, address] of peers) {
      if (!this.links.has(id)) this.addLink(id, address);
    }
  }

  private addLink(id: NodeId, address: string): void {
    if (id === this.settings.self) return;
    this.unknownPeers.delete(id);
    this.links.set(id, new PeerLink(id, address, this.settings));
  }

  /**
   * Queues messages for their peers (`message.to`) and returns at once. Never
   * throws because a peer is down; throws only on a caller's bug (a message
   * from another node, or one the wire cannot carry). Messages to a node that
   * is not in the peer list are dropped with a warning.
   */
  send(messages: readonly Message[]): void {
    if (this.closing !== null) return;
    if (this.failpoints?.isSet('peer-send') === true) {
      this.sendThroughFailpoint(this.failpoints, messages);
      return;
    }
    this.queue(messages);
  }

  /**
   * peer-send is set: the messages go once it lets them (delay, pause: in
   * the order they were sent while it stays the same), or are lost (error).
   */
  private sendThroughFailpoint(failpoints: Failpoints, messages: readonly Message[]): void {
    void failpoints.hit('peer-send').then(
      () => {
        if (this.closing === null) this.queue(messages);
      },
      (error: unknown) =>
        this.settings.log.debug({ event: 'failpoint-lost', messages: messages.length, err: error }, 'messages to peers lost at failpoint peer-send'),
    );
  }

  private queue(messages: readonly Message[]): void {
    const touched = new Set<PeerLink>();
    for (const message of messages) {
      if (message.from !== this.settings.self) {
        throw new Error(`PeerClients of ${this.settings.self} asked to send a ${message.type} from ${message.from}`);
      }
      const link = this.links.get(message.to);
      if (link === undefined) {
        this.dropForUnknownPeer(message);
        continue;
      }
      if (isCommitNotice(message) && this.settings.commitNoticeDelayMs > 0) {
        link.holdCommitNotice(message);
        continue;
      }
      link.releaseCommitNotice(message);
      link.enqueue(queuedOf(message));
      touched.add(link);
    }
    for (const link of touched) link.queued();
  }

  stats(): PeerLinkStats[] {
    return [...this.links.values()].map((link) => link.stats());
  }

  /** Drops what is queued, cancels the streams and closes the connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.all([...this.links.values()].map((link) => link.close()));
  }

  private dropForUnknownPeer(message: Message): void {
    if (message.to === this.settings.self) {
      throw new Error(`PeerClients of ${this.settings.self} asked to send a ${message.type} to itself`);
    }
    if (this.unknownPeers.has(message.to)) return;
    this.unknownPeers.add(message.to);
    this.settings.log.warn({ peer: message.to, type: message.type }, 'no address for peer: dropping its messages');
  }
}

/**
 * The link to one peer: its queue, its Stream call (opened when there is
 * something to send, opened again after a failure once the backoff has
 * passed), and what it has done so far.
 */
class PeerLink {
  private client: grpc.Client | null = null;
  private queue: Queued[] = [];
  private stream: grpc.ClientWritableStream<WireMessageBatch> | null = null;
  /** The stream's flow-control window is full: wait for 'drain'. */
  private blocked = false;
  /** The peer has accepted a batch on the current stream (it sent its response headers). */
  private accepted = false;
  /** Written to the current stream before the peer accepted anything: lost if the stream fails before that. */
  private unconfirmedBatches = 0;
  private unconfirmedMessages = 0;
  /** Resolves once the current stream's call has ended. */
  private settled: Promise<void> | null = null;
  private flushScheduled = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoffMs = 0;
  private state: PeerLinkStats['state'] = 'ok';
  private lastRefusal: string | null = null;
  private failingSince = 0;
  private droppedWhileFailing = 0;
  private overflowing = false;
  /** Closed or dropped: nothing is sent, and a failing stream is not retried. */
  private closed = false;
  private sentBatches = 0;
  private sentMessages = 0;
  private failedCalls = 0;
  private droppedOverflow = 0;
  private droppedFailed = 0;
  /** An append without entries waiting for the next message to this peer (holdCommitNotice), and the timer that sends it. */
  private readonly noticeHold = new CommitNoticeHold();
  private noticeTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly id: NodeId,
    readonly address: string,
    private readonly settings: LinkSettings,
  ) {}

  enqueue(message: Queued): void {
    this.queue.push(message);
  }

  /**
   * An append without entries (a commit notice) mostly moves the follower's
   * commit index: unanswered when the follower has nothing in flight
   * (commit-only), answered when it has. While one write follows another (a
   * client writing one at a time), the next write's append comes a moment
   * later and carries a commit index at least as new: sending the notice too
   * would wake the follower once more per write, and the leader once more
   * for its answer. So it waits up to commitNoticeDelayMs for the next
   * message to this peer: an append that reaches as far makes it unneeded
   * (releaseCommitNotice); any other message goes after it; with nothing
   * sent, it goes when the delay has passed. Only an append with entries
   * can fold an answered notice (an empty one would itself be held), and
   * every append with entries is answered: its answer says all that the
   * notice's would (the match index, or the same rejection at the same
   * index), so the acknowledgements the leader's stall rule counts on
   * (Progress.onHeartbeatResponse) keep coming. A newer notice takes the
   * place of a waiting one, whatever its index, keeping the first one's
   * deadline: no notice waits longer than the delay. Holding or skipping it is what a
   * slow or lossy link may do to any message; Raft tolerates both
   * (hashicorp/raft's CommitTimeout makes the same trade).
   */
  holdCommitNotice(message: AppendRequest): void {
    if (this.closed) return;
    const wait = this.noticeHold.hold(message);
    if (wait === null) return;
    this.noticeTimer = setTimeout(() => {
      this.noticeTimer = null;
      const held = this.noticeHold.expire(wait);
      if (held === null || this.closed) return;
      this.enqueue(queuedOf(held));
      this.queued();
    }, this.settings.commitNoticeDelayMs);
    // A link that is never closed must not keep the process alive; a running node has other handles.
    this.noticeTimer.unref();
  }

  /** `next` goes to this peer: the waiting commit notice goes before it, unless `next` is an append that reaches as far. */
  releaseCommitNotice(next: Message): void {
    const held = this.noticeHold.before(next);
    this.stopNoticeTimer();
    if (held !== null) this.enqueue(queuedOf(held));
  }

  private stopNoticeTimer(): void {
    if (this.noticeTimer !== null) clearTimeout(this.noticeTimer);
    this.noticeTimer = null;
  }

  /** After one send() queued messages here: keeps the queue bounded and writes on the next microtask. */
  queued(): void {
    this.trimQueue();
    this.scheduleFlush();
  }

  stats(): PeerLinkStats {
    return {
      peer: this.id,
      address: this.address,
      state: this.state,
      queued: this.queue.length,
      streaming: this.stream !== null,
      sentBatches: this.sentBatches,
      sentMessages: this.sentMessages,
      failedCalls: this.failedCalls,
      droppedOverflow: this.droppedOverflow,
      droppedFailed: this.droppedFailed,
      foldedCommitNotices: this.noticeHold.folded,
    };
  }

  /** The peer left the configuration (or moved): stop at once, and close the connection once its stream has ended. */
  drop(): void {
    this.stop();
    const client = this.client;
    if (client !== null) void (this.settled ?? Promise.resolve()).then(() => client.close());
  }

  /** Stops, waits for the stream's call to end, and closes the connection. */
  async close(): Promise<void> {
    this.stop();
    if (this.settled !== null) await this.settled;
    this.client?.close();
  }

  private stop(): void {
    this.closed = true;
    this.noticeHold.take();
    this.stopNoticeTimer();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.queue = [];
    this.stream?.cancel();
  }

  /** Writes on the next microtask, so messages queued by several send() calls in one turn share a batch. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed || this.blocked || this.retryTimer !== null || this.queue.length === 0) return;
    const stream = this.stream ?? this.openStream();
    const { self, cluster, identity } = this.settings;
    const fromAddress = this.settings.selfAddress();
    while (this.queue.length > 0 && !this.blocked) {
      const batch = this.takeBatch();
      const request: WireMessageBatch = {
        from: self,
        to: this.id,
        cluster,
        messages: batch.map((queued) => queued.wire),
        ...(identity === null ? {} : { clusterId: identity.clusterId, memberIncarnation: identity.incarnation }),
        ...(fromAddress === undefined ? {} : { fromAddress }),
      };
      this.sentBatches += 1;
      this.sentMessages += batch.length;
      if (!this.accepted) {
        this.unconfirmedBatches += 1;
        this.unconfirmedMessages += batch.length;
      }
      if (!stream.write(request)) {
        this.blocked = true;
        stream.once('drain', () => {
          this.blocked = false;
          this.scheduleFlush();
        });
      }
    }
  }

  private openStream(): grpc.ClientWritableStream<WireMessageBatch> {
    this.client ??= new grpc.Client(this.address, this.settings.channelCredentials, PEER_CHANNEL_OPTIONS);
    let settle!: () => void;
    this.settled = new Promise((resolve) => (settle = resolve));
    const stream = this.client.makeClientStreamRequest(
      streamMethod.path,
      streamMethod.requestSerialize,
      streamMethod.responseDeserialize,
      new grpc.Metadata(),
      {},
      (error) => {
        let lost = 0;
        if (this.stream === stream) {
          if (!this.accepted) {
            // Never accepted: nothing written on this stream reached the peer.
            this.sentBatches -= this.unconfirmedBatches;
            this.sentMessages -= this.unconfirmedMessages;
            lost = this.unconfirmedMessages;
          }
          this.stream = null;
          this.blocked = false;
          this.settled = null;
          this.accepted = false;
          this.unconfirmedBatches = 0;
          this.unconfirmedMessages = 0;
        }
        settle();
        if (this.closed) return;
        if (error) this.onFailure(error, lost);
        this.scheduleFlush();
      },
    );
    // The receiver's response headers come once it has accepted a batch: the peer is there and takes our messages.
    stream.on('metadata', () => this.onAccepted());
    this.stream = stream;
    return stream;
  }

  private takeBatch(): Queued[] {
    const queue = this.queue;
    let count = 0;
    let bytes = 0;
    while (count < queue.length && count < this.settings.maxBatchMessages) {
      const next = (queue[count] as Queued).bytes;
      if (count > 0 && bytes + next > this.settings.maxBatchBytes) break;
      bytes += next;
      count += 1;
    }
    if (count === queue.length) {
      this.queue = [];
      return queue;
    }
    return queue.splice(0, count);
  }

  private trimQueue(): void {
    const excess = this.queue.length - this.settings.maxQueuedMessages;
    if (excess <= 0) return;
    this.queue.splice(0, excess);
    this.droppedOverflow += excess;
    if (!this.overflowing) {
      this.overflowing = true;
      this.settings.log.warn(
        { peer: this.id, address: this.address, maxQueuedMessages: this.settings.maxQueuedMessages },
        'peer queue full: dropping the oldest messages',
      );
    }
  }

  private onAccepted(): void {
    this.accepted = true;
    this.unconfirmedBatches = 0;
    this.unconfirmedMessages = 0;
    this.backoffMs = 0;
    if (this.state !== 'ok') {
      this.settings.log.info(
        {
          peer: this.id,
          address: this.address,
          downForMs: Math.round(performance.now() - this.failingSince),
          droppedMessages: this.droppedWhileFailing,
        },
        this.state === 'unreachable' ? 'peer reachable again' : 'peer accepts messages again',
      );
      this.state = 'ok';
      this.lastRefusal = null;
    }
    if (this.overflowing && this.queue.length === 0) this.overflowing = false;
  }

  private onFailure(error: grpc.ServiceError, lost: number): void {
    const { log } = this.settings;
    this.failedCalls += 1;
    // Raft retransmits whatever matters; a backlog replayed late only gets in the way.
    const dropped = lost + this.queue.length;
    this.queue = [];
    this.droppedFailed += dropped;
    this.overflowing = false;
    this.backoffMs = this.backoffMs === 0 ? this.settings.initialBackoffMs : Math.min(this.backoffMs * 2, this.settings.maxBackoffMs);
    const code = grpc.status[error.code] ?? String(error.code);
    const fields = { peer: this.id, address: this.address, code, error: error.details };
    const unreachable =
      error.code === grpc.status.UNAVAILABLE || error.code === grpc.status.DEADLINE_EXCEEDED || error.code === grpc.status.CANCELLED;
    if (this.state === 'ok') {
      this.failingSince = performance.now();
      this.droppedWhileFailing = 0;
    }
    this.droppedWhileFailing += dropped;
    if (unreachable) {
      if (this.state !== 'unreachable') log.info(fields, 'peer unreachable');
      this.state = 'unreachable';
    } else {
      // The peer answered but refused (wrong cluster or node id, a message it cannot decode, ...).
      const refusal = `${code}: ${error.details}`;
      if (error.metadata?.get(REFUSAL_METADATA_KEY).includes(NOT_A_MEMBER)) this.settings.onRefusedAsNonMember?.(this.id);
      if (this.state !== 'refused' || this.lastRefusal !== refusal) log.warn({ event: 'peer-refused', ...fields }, 'peer refused messages');
      this.state = 'refused';
      this.lastRefusal = refusal;
    }
    log.debug({ ...fields, dropped, retryInMs: this.backoffMs }, 'stream failed');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.flush();
    }, this.backoffMs);
    this.retryTimer.unref();
  }
}

function queuedOf(message: Message): Queued {
  return { wire: toWire(message), bytes: estimateBytes(message) };
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

function nonNegative(value: number, name: string): number {
  if (!(value >= 0)) throw new RangeError(`PeerClients: ${name} must not be negative, got ${value}`);
  return value;
}
