/**
 * A node's Prometheus metrics (`raftlog node --metrics-listen HOST:PORT`
 * serves them at /metrics). Events (a proposal's outcome, a log write, a
 * batch applied, a snapshot) update counters and histograms as they happen;
 * everything that is state (term, role, indexes, peer queues, consumer lag)
 * is read from the node when Prometheus scrapes, so an idle exporter costs
 * nothing beyond those counters. Each node owns its registry: several nodes
 * in one process (tests) do not share series.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Counter, collectDefaultMetrics, exponentialBuckets, Gauge, Histogram, Registry } from 'prom-client';
import { parseHostPort } from '../api/host-port.js';
import type { NodeId, RaftStatus, Role } from '../raft/types.js';
import type { ConsumerPosition } from './consumer-positions.js';
import { ClientError, NotLeaderError } from './errors.js';

/** What health checks and metrics read of a node, at the time they look. */
export interface NodeVitals {
  readonly status: RaftStatus;
  /** The state machine's applied index (it trails the core's while a leader's snapshot is installed). */
  readonly appliedIndex: number;
  /** A committed configuration no longer lists this node, which was a member. */
  readonly removed: boolean;
  /** The node is stopping or stopped. */
  readonly stopped: boolean;
  /** Milliseconds since a message from the leader it knows arrived: 0 while it leads; null when it knows no leader or never heard from it. */
  readonly leaderSilenceMs: number | null;
}

/** One link to a peer as the peer transport counts it (the fields of its stats() that metrics use). */
export interface PeerLinkFigures {
  readonly peer: NodeId;
  readonly state: 'ok' | 'unreachable' | 'refused';
  readonly queued: number;
  readonly streaming: boolean;
  readonly sentMessages: number;
  readonly failedCalls: number;
  readonly droppedOverflow: number;
  readonly droppedFailed: number;
  readonly foldedCommitNotices: number;
}

/** The node as metrics read it at scrape time. */
export interface MetricsSource {
  vitals(): NodeVitals;
  peerLinks(): readonly PeerLinkFigures[];
  consumers(): { readonly consumers: readonly ConsumerPosition[] };
}

/**
 * How a proposal ended, as raftlog_proposals_total labels it. Attempts, not
 * writes: a follower counts not_leader for every write it forwards (its own
 * core refuses it first), and a held write counts once per retry.
 */
export type ProposalOutcome =
  | 'committed'
  | 'not_leader'
  | 'resource_exhausted'
  | 'deadline_exceeded'
  | 'invalid_argument'
  | 'unavailable'
  | 'unknown'
  | 'failed';

const PROPOSAL_OUTCOMES: readonly ProposalOutcome[] = [
  'committed',
  'not_leader',
  'resource_exhausted',
  'deadline_exceeded',
  'invalid_argument',
  'unavailable',
  'unknown',
  'failed',
];

const ROLES: readonly Role[] = ['follower', 'pre-candidate', 'candidate', 'leader'];

export type SubscribeView = 'commands' | 'changes';

/**
 * Consumers labelled in raftlog_consumer_lag_entries: the most lagging ones.
 * Consumers are few by design (named, durable readers), but a label per name
 * is a series per name; past this many, the others show only in
 * raftlog_consumers and raftlog_consumer_max_lag_entries.
 */
export const MAX_LABELLED_CONSUMERS = 50;

/** The outcome a proposal that threw or was rejected with `error` counts as. */
export function proposalOutcome(error: unknown): ProposalOutcome {
  if (error instanceof NotLeaderError) return 'not_leader';
  if (!(error instanceof ClientError)) return 'failed';
  switch (error.code) {
    case grpc.status.RESOURCE_EXHAUSTED:
      return 'resource_exhausted';
    case grpc.status.DEADLINE_EXCEEDED:
      return 'deadline_exceeded';
    case grpc.status.INVALID_ARGUMENT:
      return 'invalid_argument';
    case grpc.status.UNAVAILABLE:
      return 'unavailable';
    case grpc.status.UNKNOWN:
      return 'unknown';
    default:
      return 'failed';
  }
}

const seconds = (startedMs: number): number => (performance.now() - startedMs) / 1000;

export class NodeMetrics {
  readonly registry = new Registry();
  /** The state read at one scrape: every gauge of a scrape sees the same moment. */
  private scraped: NodeVitals | null = null;
  private knownLeader: NodeId | null = null;

  private readonly leaderChanges: Counter;
  private readonly proposals: Counter<'outcome'>;
  private readonly proposalOutcomes: ReadonlyMap<ProposalOutcome, Counter.Internal>;
  private readonly proposalDuration: Histogram;
  private readonly logWriteDuration: Histogram;
  private readonly logWriteOutputs: Counter;
  private readonly applyDuration: Histogram;
  private readonly appliedEntries: Counter;
  private readonly snapshotTakeDuration: Histogram;
  private readonly snapshotTakeFailures: Counter;
  private readonly snapshotSendDuration: Histogram<'outcome'>;
  private readonly snapshotSentBytes: Counter;
  private readonly snapshotReceiveDuration: Histogram;
  private readonly snapshotReceivedBytes: Counter;
  private readonly snapshotInstallDuration: Histogram;
  private readonly subscribers: Gauge<'view'>;
  private readonly subscriptions: Counter<'view'>;

  /** `source` is null while the node is starting (its log not loaded yet): state gauges then report nothing. */
  constructor(private readonly source: () => MetricsSource | null) {
    const registers = [this.registry];
    const state = (name: string, help: string, read: (vitals: NodeVitals) => number): void => {
      const gauge: Gauge = new Gauge({
        name,
        help,
        registers,
        collect: () => {
          const vitals = this.vitals();
          if (vitals === null) gauge.reset();
          else gauge.set(read(vitals));
        },
      });
    };
    state('raftlog_term', 'Current Raft term of this node.', (v) => v.status.term);
    state('raftlog_is_leader', '1 if this node is the leader, else 0.', (v) => (v.status.role === 'leader' ? 1 : 0));
    state('raftlog_has_leader', '1 if this node knows a leader (itself or another), else 0.', (v) => (v.status.leader === null ? 0 : 1));
    state('raftlog_is_member', '1 if the configuration in force lists this node (voter or learner) and it was not removed, else 0.', (v) =>
      v.status.member && !v.removed ? 1 : 0,
    );
    state('raftlog_commit_index', 'Highest log index known to be committed.', (v) => v.status.commitIndex);
    state('raftlog_applied_index', 'Highest log index applied to the state machine.', (v) => v.appliedIndex);
    state('raftlog_last_index', "Index of the last entry in this node's log.", (v) => v.status.lastIndex);
    state('raftlog_first_index', "Index of the first entry this node's log still holds (earlier ones are compacted).", (v) => v.status.firstIndex);
    state('raftlog_snapshot_index', 'Index of the latest snapshot in storage (0: none).', (v) => v.status.snapshotIndex);
    state('raftlog_voters', 'Voters in the configuration in force on this node.', (v) => v.status.voters.length);
    state('raftlog_learners', 'Learners in the configuration in force on this node.', (v) => v.status.learners.length);

    const role: Gauge<'role'> = new Gauge({
      name: 'raftlog_role',
      help: "This node's Raft role: 1 for the current one, 0 for the others.",
      labelNames: ['role'],
      registers,
      collect: () => {
        role.reset();
        const vitals = this.vitals();
        if (vitals !== null) for (const name of ROLES) role.set({ role: name }, vitals.status.role === name ? 1 : 0);
      },
    });
    const matchIndex: Gauge<'peer'> = new Gauge({
      name: 'raftlog_follower_match_index',
      help: 'On the leader: the highest index known to be replicated on each other member.',
      labelNames: ['peer'],
      registers,
      collect: () => {
        matchIndex.reset();
        const vitals = this.vitals();
        for (const follower of vitals?.status.progress ?? []) {
          if (follower.id !== vitals?.status.id) matchIndex.set({ peer: follower.id }, follower.matchIndex);
        }
      },
    });

    this.leaderChanges = new Counter({
      name: 'raftlog_leader_changes_total',
      help: 'Times this node saw a new leader (itself included) since it started.',
      registers,
    });
    this.proposals = new Counter({
      name: 'raftlog_proposals_total',
      help:
        "Commands proposed through this node's Raft core, by outcome (committed: committed and applied here; " +
        'not_leader: refused by a core that does not lead, once for every write a follower forwards and every retry of a held write).',
      labelNames: ['outcome'],
      registers,
    });
    this.proposalOutcomes = new Map(PROPOSAL_OUTCOMES.map((outcome) => [outcome, this.proposals.labels(outcome)]));
    for (const counter of this.proposalOutcomes.values()) counter.inc(0);
    this.proposalDuration = new Histogram({
      name: 'raftlog_proposal_duration_seconds',
      help: 'From proposing a command on the leader to its commit and application there (committed proposals).',
      buckets: exponentialBuckets(0.0005, 2, 15),
      registers,
    });
    this.logWriteDuration = new Histogram({
      name: 'raftlog_log_write_duration_seconds',
      help: "Durable writes of Raft output (entries and hard state, fsync'd) to the log: LevelDB batches, several outputs merged per write, or one output appended to the journal.",
      buckets: exponentialBuckets(0.0005, 2, 14),
      registers,
    });
    this.logWriteOutputs = new Counter({
      name: 'raftlog_log_write_outputs_total',
      help: 'Raft outputs saved by the log writes (divided by raftlog_log_write_duration_seconds_count: outputs per fsync).',
      registers,
    });
    this.applyDuration = new Histogram({
      name: 'raftlog_apply_duration_seconds',
      help: 'Applying one batch of committed entries to the state machine (and answering their waiting writers).',
      buckets: exponentialBuckets(0.00005, 2, 16),
      registers,
    });
    this.appliedEntries = new Counter({ name: 'raftlog_applied_entries_total', help: 'Committed entries applied to the state machine.', registers });

    const snapshotBuckets = exponentialBuckets(0.01, 2, 15);
    this.snapshotTakeDuration = new Histogram({
      name: 'raftlog_snapshot_take_duration_seconds',
      help: "Writing a snapshot of this node's state machine (its count: snapshots taken).",
      buckets: snapshotBuckets,
      registers,
    });
    this.snapshotTakeFailures = new Counter({
      name: 'raftlog_snapshot_take_failures_total',
      help: "Snapshots of this node's state machine that failed to write.",
      registers,
    });
    this.snapshotSendDuration = new Histogram({
      name: 'raftlog_snapshot_send_duration_seconds',
      help: 'InstallSnapshot transfers sent to followers, by outcome (ok: the follower holds the file; failed: to be offered again).',
      labelNames: ['outcome'],
      buckets: snapshotBuckets,
      registers,
    });
    this.snapshotSendDuration.zero({ outcome: 'ok' });
    this.snapshotSendDuration.zero({ outcome: 'failed' });
    this.snapshotSentBytes = new Counter({
      name: 'raftlog_snapshot_sent_bytes_total',
      help: 'Bytes of snapshot files delivered to followers.',
      registers,
    });
    this.snapshotReceiveDuration = new Histogram({
      name: 'raftlog_snapshot_receive_duration_seconds',
      help: 'InstallSnapshot transfers received whole and verified, from the offer that started (or resumed) the transfer.',
      buckets: snapshotBuckets,
      registers,
    });
    this.snapshotReceivedBytes = new Counter({
      name: 'raftlog_snapshot_received_bytes_total',
      help: 'Bytes of snapshot files received from leaders.',
      registers,
    });
    this.snapshotInstallDuration = new Histogram({
      name: 'raftlog_snapshot_install_duration_seconds',
      help: "Installing a leader's snapshot: moving the file in place and loading the state machine from it.",
      buckets: snapshotBuckets,
      registers,
    });

    this.subscribers = new Gauge({
      name: 'raftlog_subscribers',
      help: 'Open Subscribe streams served by this node, by view.',
      labelNames: ['view'],
      registers,
    });
    this.subscriptions = new Counter({
      name: 'raftlog_subscriptions_total',
      help: 'Subscribe streams this node began serving, by view.',
      labelNames: ['view'],
      registers,
    });
    for (const view of ['commands', 'changes'] as const) {
      this.subscribers.set({ view }, 0);
      this.subscriptions.inc({ view }, 0);
    }
    this.consumerMetrics(registers);
    this.peerMetrics(registers);
  }

  /** Adds Node.js's own metrics under their standard names (process_*, nodejs_*): only for a node that serves them. */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry });
  }

  /** The exposition text of every metric, as /metrics serves it. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  // ------------------------------------------------------------ events

  /**
   * Counts a proposal's outcome, and times it when it commits. A proposal
   * refused at once (thrown) is counted and thrown again as it was.
   */
  proposal<T>(propose: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let pending: Promise<T>;
    try {
      pending = propose();
    } catch (error) {
      this.countProposal(proposalOutcome(error));
      throw error;
    }
    return pending.then(
      (committed) => {
        this.countProposal('committed');
        this.proposalDuration.observe(seconds(started));
        return committed;
      },
      (error: unknown) => {
        this.countProposal(proposalOutcome(error));
        throw error;
      },
    );
  }

  private countProposal(outcome: ProposalOutcome): void {
    this.proposalOutcomes.get(outcome)?.inc();
  }

  /** A role change of the core: counts a new leader once, as etcd's leader_changes_seen does. */
  roleChanged(leader: NodeId | null): void {
    if (leader === null || leader === this.knownLeader) return;
    this.knownLeader = leader;
    this.leaderChanges.inc();
  }

  /** A log write of `outputs` merged outputs completed in `duration` seconds. */
  logWritten(duration: number, outputs: number): void {
    this.logWriteDuration.observe(duration);
    this.logWriteOutputs.inc(outputs);
  }

  /** `entries` committed entries were applied, starting at performance.now() `startedMs`. */
  applied(entries: number, startedMs: number): void {
    if (entries === 0) return;
    this.applyDuration.observe(seconds(startedMs));
    this.appliedEntries.inc(entries);
  }

  snapshotTaken(duration: number): void {
    this.snapshotTakeDuration.observe(duration);
  }

  snapshotTakeFailed(): void {
    this.snapshotTakeFailures.inc();
  }

  snapshotSent(ok: boolean, duration: number, bytes: number): void {
    this.snapshotSendDuration.observe({ outcome: ok ? 'ok' : 'failed' }, duration);
    if (ok) this.snapshotSentBytes.inc(bytes);
  }

  snapshotReceived(duration: number, bytes: number): void {
    this.snapshotReceiveDuration.observe(duration);
    this.snapshotReceivedBytes.inc(bytes);
  }

  snapshotInstalled(duration: number): void {
    this.snapshotInstallDuration.observe(duration);
  }

  /** A Subscribe stream opened; call the returned function once when it ends. */
  subscriberOpened(view: SubscribeView): () => void {
    this.subscribers.inc({ view });
    this.subscriptions.inc({ view });
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.subscribers.dec({ view });
    };
  }

  // ------------------------------------------------------------ read at scrape time

  private vitals(): NodeVitals | null {
    if (this.scraped !== null) return this.scraped;
    const node = this.source();
    if (node === null) return null;
    this.scraped = node.vitals();
    // One scrape runs every collect in one turn of the event loop; the next scrape reads afresh.
    setImmediate(() => {
      this.scraped = null;
    });
    return this.scraped;
  }

  private consumerMetrics(registers: Registry[]): void {
    const count: Gauge = new Gauge({
      name: 'raftlog_consumers',
      help: "Durable consumers in this node's state machine.",
      registers,
      collect: () => count.set(this.consumerLags()?.length ?? 0),
    });
    const maxLag: Gauge = new Gauge({
      name: 'raftlog_consumer_max_lag_entries',
      help: 'The largest consumer lag (commit index minus committed position) among all consumers; 0 without consumers.',
      registers,
      collect: () => maxLag.set(this.consumerLags()?.[0]?.lag ?? 0),
    });
    const lag: Gauge<'consumer'> = new Gauge({
      name: 'raftlog_consumer_lag_entries',
      help: `Log entries committed past each durable consumer's committed position, as this node knows them (the ${MAX_LABELLED_CONSUMERS} most lagging consumers).`,
      labelNames: ['consumer'],
      registers,
      collect: () => {
        lag.reset();
        for (const consumer of (this.consumerLags() ?? []).slice(0, MAX_LABELLED_CONSUMERS)) lag.set({ consumer: consumer.name }, consumer.lag);
      },
    });
  }

  private lags: { readonly name: string; readonly lag: number }[] | null = null;

  /** Every consumer's lag, most lagging first (computed once per scrape). */
  private consumerLags(): readonly { readonly name: string; readonly lag: number }[] | null {
    if (this.lags !== null) return this.lags;
    const vitals = this.vitals();
    const node = this.source();
    if (vitals === null || node === null) return null;
    const commitIndex = vitals.status.commitIndex;
    this.lags = node
      .consumers()
      .consumers.map((consumer) => ({ name: consumer.name, lag: Math.max(0, commitIndex - consumer.position) }))
      .sort((a, b) => b.lag - a.lag || (a.name < b.name ? -1 : 1));
    setImmediate(() => {
      this.lags = null;
    });
    return this.lags;
  }

  private peerMetrics(registers: Registry[]): void {
    const links = (): readonly PeerLinkFigures[] => this.source()?.peerLinks() ?? [];
    const queued: Gauge<'peer'> = new Gauge({
      name: 'raftlog_peer_send_queue_messages',
      help: 'Raft messages queued for each peer, not yet written to its stream.',
      labelNames: ['peer'],
      registers,
      collect: () => {
        queued.reset();
        for (const link of links()) queued.set({ peer: link.peer }, link.queued);
      },
    });
    const connected: Gauge<'peer'> = new Gauge({
      name: 'raftlog_peer_connected',
      help: '1 while a stream to the peer is open and its last call did not fail, else 0.',
      labelNames: ['peer'],
      registers,
      collect: () => {
        connected.reset();
        for (const link of links()) connected.set({ peer: link.peer }, link.streaming && link.state === 'ok' ? 1 : 0);
      },
    });
    const sent: Counter<'peer'> = new Counter({
      name: 'raftlog_peer_sent_messages_total',
      help: "Raft messages written to each peer's stream (since the link to it was made).",
      labelNames: ['peer'],
      registers,
      collect: () => {
        sent.reset();
        for (const link of links()) sent.inc({ peer: link.peer }, link.sentMessages);
      },
    });
    const failures: Counter<'peer'> = new Counter({
      name: 'raftlog_peer_stream_failures_total',
      help: 'Streams to each peer that ended with an error; each is followed by a reconnect after a backoff (since the link was made).',
      labelNames: ['peer'],
      registers,
      collect: () => {
        failures.reset();
        for (const link of links()) failures.inc({ peer: link.peer }, link.failedCalls);
      },
    });
    const dropped: Counter<'peer' | 'reason'> = new Counter({
      name: 'raftlog_peer_dropped_messages_total',
      help: 'Raft messages to each peer dropped: overflow (its queue was full) or failed (its stream failed); Raft resends what matters.',
      labelNames: ['peer', 'reason'],
      registers,
      collect: () => {
        dropped.reset();
        for (const link of links()) {
          dropped.inc({ peer: link.peer, reason: 'overflow' }, link.droppedOverflow);
          dropped.inc({ peer: link.peer, reason: 'failed' }, link.droppedFailed);
        }
      },
    });
    const folded: Counter<'peer'> = new Counter({
      name: 'raftlog_peer_folded_commit_notices_total',
      help: 'Appends without entries (commit notices) to each peer not sent because the next append or a newer notice, sent within --commit-notice-ms, carried the commit index.',
      labelNames: ['peer'],
      registers,
      collect: () => {
        folded.reset();
        for (const link of links()) folded.inc({ peer: link.peer }, link.foldedCommitNotices);
      },
    });
  }
}

/**
 * Serves `metrics` at http://address/metrics until `shutdown` aborts.
 * Resolves with the address it listens on (port 0 becomes the port the OS
 * gave), rejects with the address and the reason when it cannot listen.
 */
export async function serveMetrics(metrics: NodeMetrics, address: string, shutdown: AbortSignal): Promise<string> {
  const { host, port } = splitHostPort(address);
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('raftlog serves its Prometheus metrics at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
        .end(`${request.method} is not allowed on /metrics\n`);
      return;
    }
    metrics.exposition().then(
      (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) =>
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`collecting metrics failed: ${(error as Error).message}\n`),
    );
  });
  await listen(server, host, port, address);
  const close = () => {
    server.close();
    server.closeAllConnections();
  };
  if (shutdown.aborted) close();
  else shutdown.addEventListener('abort', close, { once: true });
  const bound = server.address() as AddressInfo;
  return `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
}

function listen(server: Server, host: string, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error) => reject(new Error(`cannot serve metrics on ${address}: ${error.message}`)));
    server.listen(port, host, () => resolve());
  });
}

/** HOST:PORT or [IPv6]:PORT with a port in 0..65535, or null if `address` is neither. */
function splitHostPort(address: string): { host: string; port: number } {
  const parsed = parseHostPort(address);
  if (parsed === null) throw new Error(`cannot serve metrics on "${address}": not HOST:PORT`);
  return parsed;
}
