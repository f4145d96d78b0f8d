import { randomInt } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { WireLogEntryKind } from '../api/client-api.js';
import { holdsData } from '../log/data-dir.js';
import { LevelLogStorage } from '../log/level-storage.js';
import { RaftCore } from '../raft/core.js';
import { describeConfig, isMember, learnersOf } from '../raft/membership.js';
import { OutputRunner } from '../raft/output-runner.js';
import { SeededRandom } from '../raft/random.js';
import type {
  ClusterConfig,
  ConfigChange,
  Entry,
  InstallSnapshot,
  Message,
  NodeId,
  RaftBrief,
  RaftOutput,
  RaftStatus,
  ReadFailed,
  ReadReady,
} from '../raft/types.js';
import { CHANGE_HISTORY_DEFAULTS, type ChangedEntry, ChangeHistory } from './change-history.js';
import { type LogEntryReply, raftLogServiceDefinition } from './client-proto.js';
import { createClientService } from './client-service.js';
import { deriveClusterId, PeerAdmission } from './cluster-identity.js';
import { clusterServiceDefinition, createClusterService } from './cluster-service.js';
import type { ConsumerPosition } from './consumer-positions.js';
import { Deadlines } from './deadlines.js';
import { DescribedEntries } from './described-entries.js';
import { ClientError, deadlineExceeded, LeaderChangingError, NotLeaderError, producerRefusal, unavailable } from './errors.js';
import type { Failpoints } from './failpoints.js';
import { NodeHealth } from './health.js';
import { decodeCommand, encodeCommand, type KvCommand } from './kv-commands.js';
import type { KvChange, KvResult, KvStateMachine } from './kv-state-machine.js';
import { mostCaughtUpVoter, TargetDidNotTakeOver, type TransferOutcome, transferLeadership } from './leadership-transfer.js';
import { type LeadershipView, LeadershipWatch } from './leadership-watch.js';
import { entryBytes } from './log-entry-view.js';
import { NodeMetrics, type NodeVitals, type PeerLinkFigures, serveMetrics } from './metrics.js';
import { discoverCluster, type MembershipView, membershipView, refusalError } from './node-membership.js';
import { NodeSnapshots, restoreStateMachine, SNAPSHOT_POLICY_DEFAULTS, type SnapshotPolicy } from './node-snapshots.js';
import { PeerClients } from './peer-clients.js';
import { createPeerService, peerServiceWhileStarting } from './peer-service.js';
import { PEER_SERVER_OPTIONS } from './peer-transport.js';
import type { ProducerStamp } from './producer-sessions.js';
import { ProposalWaiters } from './proposal-waiters.js';
import { raftPeerServerDefinition } from './raft-proto.js';
import { addReflection } from './reflection.js';
import { createSnapshotReceiver, SnapshotSender } from './snapshot-transfer.js';
import { describeTls, loadNodeTls, type NodeTlsFiles, nodeChannelCredentials, nodeServerCredentials, nodeServerInterceptors } from './tls-config.js';
import { type LogWrite, WriteQueue } from './write-queue.js';

export interface RaftNodeOptions {
  readonly id: NodeId;
  /** host:port this node serves peers and clients on. */
  readonly listen: string;
  /** Every member, this node included: id → host:port. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly dataDir: string;
  /** Nodes refuse peer traffic of another cluster name. */
  readonly cluster?: string;
  /** Length of one tick of the core's logical clock. */
  readonly tickMs?: number;
  /** Election timeout in ticks: a follower campaigns after [electionTicks, 2·electionTicks) silent ticks. */
  readonly electionTicks?: number;
  /** Heartbeat interval in ticks. */
  readonly heartbeatTicks?: number;
  /** Snapshot once this many entries were applied since the last snapshot (0: never snapshot nor compact; 'auto', the default: AUTO_SNAPSHOTS). */
  readonly snapshotEntries?: number | 'auto';
  /** Entries kept behind a snapshot for slow followers and log readers. */
  readonly retainEntries?: number;
  /** As leader, refuse writes (RESOURCE_EXHAUSTED) while this many bytes of proposals wait to commit. */
  readonly maxUncommittedBytes?: number;
  /** Outputs of the core whose disk writes may be in progress at once (1: one write at a time). */
  readonly maxWritesInProgress?: number;
  /** Which log writes go through the log's journal (journal.ts); default 'on'. */
  readonly journal?: JournalMode;
  /** As leader, refuse writes (RESOURCE_EXHAUSTED) while the oldest waiting write has waited this long; 0 = never. */
  readonly maxWriteWaitMs?: number;
  /** Changing entries whose changes are kept for CHANGES subscribers (see ChangeHistory). */
  readonly changeHistoryEntries?: number;
  /** How long a leader's append without entries may wait to be folded into the next append to that follower (PeerLink.holdCommitNotice); 0 = sent at once. */
  readonly commitNoticeDelayMs?: number;
  /**
   * Client endpoints of a running cluster this new node joins (`--join`):
   * it learns the cluster's id, name and members there, starts with an empty
   * configuration and waits to be added (`raftlog member add`). `peers` then
   * holds only this node.
   */
  readonly join?: readonly string[];
  /** Called once this node has been removed from the cluster (the process should exit). */
  readonly onRemoved?: (reason: string) => void;
  /**
   * Called once when the node fail-stops (a disk write failed, or the core
   * threw: see RaftNode.fatal); it is stopping by itself, and the process
   * should exit non-zero once stop() resolves.
   */
  readonly onFatal?: (reason: string) => void;
  /** --tls-cert, --tls-key, --tls-ca (tls-config.ts); absent: plaintext. */
  readonly tls?: NodeTlsFiles;
  /** host:port to serve Prometheus metrics on, at /metrics (port 0: any free port; the start log line says which). */
  readonly metricsListen?: string;
  /**
   * Longest time a client request is held while no leader is known (or the
   * leader hands over, has just handed over and refused a forwarded call, or
   * cannot be reached) before it is answered UNAVAILABLE; 0 = never held.
   * Default: 10 election timeouts (leader-hold.ts).
   */
  readonly holdWithoutLeaderMs?: number;
  /** Faults and planted bugs for tests (failpoints.ts); null or absent in production. */
  readonly failpoints?: Failpoints | null;
  readonly logger: Logger;
}

/**
 * maxUncommittedBytes bounds the memory of a leader's uncommitted tail (a quorum slow or out of reach). It
 * is no latency bound for small writes: 4 MiB is some 36,000 Puts of 100 bytes, several seconds of commits
 * here. maxWriteWaitMs is the latency bound: past it, writes are refused until the backlog drains (a queue
 * whose head waits this long only grows under load above capacity; `npm run bench:overload` has the figures).
 */
/** When journaled writes go to LevelDB (flushJournalSoon). */
const JOURNAL_FLUSH = { bytes: 256 * 1024, ms: 20 } as const;

/**
 * Which log writes go through the log's journal: 'on', every write (a
 * follower's appended on its main thread and answered in the same turn, the
 * rest from the disk queue with the fdatasync on a libuv thread); 'followers',
 * only those a follower can make on its main thread (the rest are fsync'd
 * LevelDB batches); 'off', none.
 */
export type JournalMode = 'on' | 'followers' | 'off';

export const NODE_DEFAULTS = {
  tickMs: 20,
  electionTicks: 10,
  heartbeatTicks: 1,
  cluster: 'raftlog',
  maxUncommittedBytes: 4 * 1024 * 1024,
  maxWritesInProgress: 8,
  journal: 'on' as JournalMode,
  maxWriteWaitMs: 1000,
  commitNoticeDelayMs: 2,
} as const;

export interface Committed {
  readonly index: number;
  readonly term: number;
  readonly result: KvResult;
}

export interface ReadResult {
  readonly value: Uint8Array | null;
  /** The applied index the read was served at. */
  readonly index: number;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

function stampKey(stamp: ProducerStamp): string {
  return `${stamp.id}:${stamp.sequence}`;
}

/** The entry kind behind each result that can change keys. */
const CHANGE_KINDS: Partial<Record<KvResult['op'], WireLogEntryKind>> = {
  put: 'LOG_ENTRY_KIND_PUT',
  delete: 'LOG_ENTRY_KIND_DELETE',
  cas: 'LOG_ENTRY_KIND_COMPARE_AND_SWAP',
};

/** A ReadLog page stops growing past this many bytes, well under gRPC's default 4 MiB reply limit. */
const READ_LOG_MAX_BYTES = 3 * 1024 * 1024;

/** Largest command: a compare-and-swap of two 1 MiB values plus its key and framing. */
const MAX_PROPOSAL_BYTES = 2 * 1024 * 1024 + 8 * 1024;

/**
 * One raftlog server process: it drives the consensus core with a timer, the
 * peer transport and the LevelDB log, applies committed entries to the
 * key-value state machine, and answers the client service's proposals and
 * reads. An OutputRunner carries out the core's output: up to
 * maxWritesInProgress outputs' writes are on their way at once, each output's
 * messages go out (and the core hears it persisted) once its write and every
 * earlier one completed, and committed entries are applied without waiting
 * for this node's own writes. Every LevelDB write of the node goes through
 * one ordered queue (WriteQueue), which merges the output saves waiting while
 * the disk is busy into one batch: concurrent proposals share one fsync.
 */
export class RaftNode {
  /** One timer for the deadlines of every write and read in progress. */
  private readonly deadlines = new Deadlines();
  private readonly proposals = new ProposalWaiters<Committed>(this.deadlines);
  /** Linearizable reads waiting for their ReadIndex: each is served by its own function once this node applied that far. */
  private readonly reads = new Map<string, Waiter<unknown> & { readonly serve: () => unknown }>();
  /** Listeners told after each batch of applied entries (Subscribe streams). */
  private readonly appliedListeners = new Set<() => void>();
  private changes: ChangeHistory;
  /** Committed entries as readers see them, decoded once for every subscriber and ReadLog. */
  private readonly described = new DescribedEntries();
  private readCounter = 0;
  private scheduled = false;
  private stopped = false;
  /** The one stop in progress (or done): every stop() call returns it. */
  private stopping: Promise<void> | null = null;
  /** Why this node fail-stopped; null while it has not. */
  private fatalReason: string | null = null;
  /** Faults and planted bugs for tests; null in production (failpoints.ts). */
  readonly failpoints: Failpoints | null;
  private timer: NodeJS.Timeout | null = null;
  private lastRole: RaftStatus['role'] | null = null;
  /** Callers waiting for a leader, or for a handover to end. */
  private readonly leadershipWatch = new LeadershipWatch();

  private constructor(
    readonly options: RaftNodeOptions,
    private readonly core: RaftCore,
    private readonly storage: LevelLogStorage,
    private kv: KvStateMachine,
    private readonly snapshots: NodeSnapshots,
    private readonly peers: PeerClients,
    private readonly server: grpc.Server,
    private readonly shutdown: AbortController,
    readonly port: number,
    private readonly logger: Logger,
    private readonly addressBook: Map<NodeId, string>,
    readonly clusterIdentity: { readonly clusterId: string; readonly clusterName: string },
    readonly metrics: NodeMetrics,
  ) {
    const failpoints = options.failpoints ?? null;
    this.failpoints = failpoints;
    this.changes = new ChangeHistory(kv.appliedIndex, {
      entries: options.changeHistoryEntries ?? CHANGE_HISTORY_DEFAULTS.entries,
      bytes: CHANGE_HISTORY_DEFAULTS.bytes,
    });
    this.disk = new WriteQueue({
      save:
        failpoints === null
          ? (write) => this.saveQueued(write)
          : async (write) => {
              await failpoints.hit('log-write');
              await this.saveQueued(write);
              await failpoints.hit('log-written');
            },
      onWritten: () => this.afterWrite(),
      onFailed: (error, what) => this.failStop(error, what),
      onSaved: (seconds, outputs) => metrics.logWritten(seconds, outputs),
    });
    this.runner = new OutputRunner(
      core,
      {
        write: (output, done) => this.write(output, done),
        send: (messages) => this.send(messages),
        apply: (entries) => {
          const applying = performance.now();
          for (const entry of entries) this.apply(entry);
          this.snapshots.applied(entries);
          metrics.applied(entries.length, applying);
          if (this.appliedListeners.size > 0) for (const listener of this.appliedListeners) listener();
        },
        reads: (ready, failed) => {
          for (const read of ready) this.serveRead(read);
          for (const read of failed) this.failRead(read);
        },
        taken: (output) => this.taken(output),
      },
      { maxWritesInProgress: options.maxWritesInProgress ?? NODE_DEFAULTS.maxWritesInProgress },
    );
  }

  private readonly runner: OutputRunner;
  /** Every LevelDB write of this node, in order: output saves, snapshot installs, snapshot records and compaction. */
  private readonly disk: WriteQueue;

  /** The configurations (in force, last committed) the address book and peer links were last set from. */
  private followedConfig: ClusterConfig | null = null;
  private followedCommitted: ClusterConfig | null = null;
  /** Senders answered at the address they gave, which no configuration this node follows lists (takeGivenAddress). */
  private readonly addressesGiven = new Set<NodeId>();
  private removed = false;
  /**
   * This node has been in force as a member: a founder always; a joining node
   * once a configuration listing it arrives. Before that a configuration
   * without it means nothing (a joining node installs a snapshot taken before
   * it was added), not a removal.
   */
  private seenAsMember = false;

  /**
   * A peer this node accepts messages from: a member of its configuration,
   * or of the last committed one (a leader that is removing itself leads
   * until the removal commits), or anyone while it knows none (joining).
   */
  knowsPeer(id: NodeId): boolean {
    const { config, commitIndex } = this.core.brief();
    if (config.voters.length === 0 && learnersOf(config).length === 0) return true;
    return isMember(config, id) || isMember(this.core.configAt(commitIndex), id);
  }

  /**
   * The address book and the peer links follow the configuration in force;
   * a node that a configuration no longer lists, having been a member,
   * stops taking part and reports it.
   */
  private followConfiguration({ linksOnly = false }: { linksOnly?: boolean } = {}): void {
    const status = this.core.brief();
    const { config } = status;
    // Removed once the configuration in force no longer lists this node, the removal is committed, and it
    // does not lead (a leader that removed itself leads until the removal commits, then hands over). Until
    // the removal commits the node stays: it may be rolled back, or the node's vote (or candidacy) may be
    // what elects the leader that commits it. A follower may never hear of the commit from the leader, which
    // stops talking to it; a peer that refuses it as a non-member tells it instead (removedByPeer).
    if (status.member || this.options.join === undefined) this.seenAsMember = true;
    if (!linksOnly && this.removedHere(status) && status.commitIndex >= status.configIndex) this.leaveCluster(status.configIndex, 'committed');
    // Links go to the members of the configuration in force and of the last committed one: a member
    // being removed (a leader among them) keeps talking with the others until its removal commits.
    const committed = this.core.configAt(status.commitIndex);
    if (config === this.followedConfig && committed === this.followedCommitted) return;
    const changed = config !== this.followedConfig;
    this.followedConfig = config;
    this.followedCommitted = committed;
    for (const [id, address] of Object.entries(config.addresses ?? {})) this.addressBook.set(id, address);
    for (const [id, address] of PEER_ROUTES) this.addressBook.set(id, address);
    this.linkMembers(config, committed);
    if (!changed) return;
    this.logger.info(
      { event: 'configuration', voters: config.voters, learners: config.learners ?? [], configIndex: status.configIndex, member: status.member },
      `configuration at ${status.configIndex}: ${describeConfig(config)}`,
    );
  }

  /** A sender this node does not know as a member (knowsPeer, as the peer service judged it), not yet linked at this address. */
  private mayAnswerAtGivenAddress(from: NodeId, given: string): boolean {
    if (this.addressesGiven.has(from) && this.addressBook.get(from) === (PEER_ROUTES.get(from) ?? given)) return false;
    return from !== this.id && !this.knowsPeer(from);
  }

  /**
   * The peer service takes a leader's messages from a node that this one's
   * configuration does not list (cluster-identity.ts): this node may lag
   * behind the configuration that added that leader, with the entries that
   * would tell it compacted. Answering it is then the only way to be brought
   * up to date (its rejection is what makes the leader send a snapshot), so
   * the address the sender gave is kept and linked. It serves only until a
   * configuration lists that node: a member's address always comes from the
   * configuration.
   */
  private takeGivenAddress(from: NodeId, given: string): void {
    // A route set for the tests' network namespaces wins, as it does for members.
    const address = PEER_ROUTES.get(from) ?? given;
    this.addressBook.set(from, address);
    this.addressesGiven.add(from);
    this.logger.info(
      { event: 'peer-address-given', peer: from, address },
      `${from} leads but is not in node ${this.id}'s configuration yet: answering it at ${address}, the address it gave`,
    );
    if (this.followedConfig !== null) this.linkMembers(this.followedConfig, this.followedCommitted ?? this.followedConfig);
  }

  private linkMembers(...configs: ClusterConfig[]): void {
    const members = new Set(configs.flatMap((config) => [...config.voters, ...learnersOf(config)]));
    for (const id of members) this.addressesGiven.delete(id);
    for (const id of this.addressesGiven) members.add(id);
    if (members.size === 0) return;
    const links = new Map<NodeId, string>();
    for (const id of members) {
      const address = this.addressBook.get(id);
      if (id !== this.id && address !== undefined) links.set(id, address);
    }
    this.peers.setPeers(links);
  }

  /**
   * A peer refused this node's messages because its configuration does not
   * list this node: the peer has committed a configuration without it. Acted
   * on only when this node's own configuration agrees that it is out.
   */
  removedByPeer(peer: NodeId): void {
    const status = this.core.brief();
    if (this.removedHere(status)) this.leaveCluster(status.configIndex, `told by ${peer}`);
  }

  /** The configuration in force here no longer lists this node, which was a member, and it does not lead. */
  private removedHere(status: RaftBrief): boolean {
    return this.seenAsMember && !status.member && status.configIndex > 0 && status.role !== 'leader';
  }

  private leaveCluster(configIndex: number, how: 'committed' | `told by ${string}`): void {
    if (this.removed) return;
    this.removed = true;
    const reason = `node ${this.id} was removed from the cluster by the configuration at index ${configIndex} (${how === 'committed' ? 'committed' : `committed: ${how}`})`;
    this.logger.warn({ event: 'removed', configIndex, how }, reason);
    this.options.onRemoved?.(reason);
  }

  static async start(options: RaftNodeOptions): Promise<RaftNode> {
    const logger = options.logger.child({ node: options.id });
    if (!options.peers.has(options.id)) {
      throw new Error(`node ${options.id} is not among the peers (${[...options.peers.keys()].join(', ')})`);
    }
    // A node that joined once restarts from its data dir, which knows its cluster: the join endpoints may all be
    // down (a whole-cluster restart), and waiting on them would keep a needed voter out of the election.
    const rejoining = options.join !== undefined && (await holdsData(options.dataDir));
    const tls = options.tls === undefined ? null : await loadNodeTls(options.tls, options.id);
    const channelCredentials = nodeChannelCredentials(tls);
    if (rejoining) {
      logger.info(
        { event: 'join-skipped', dataDir: options.dataDir },
        `${options.dataDir} holds data: restarting as the member it is bound to, without asking the --join endpoints`,
      );
    }
    const joined = options.join === undefined || rejoining ? null : await discoverCluster(options.join, options.id, logger, channelCredentials);
    let cluster = joined?.clusterName ?? options.cluster ?? NODE_DEFAULTS.cluster;
    // Where peers listen: the bootstrap list (or what the cluster said when joining), then each configuration's addresses.
    const addressBook = new Map<NodeId, string>([...(joined?.addresses ?? options.peers), ...PEER_ROUTES]);
    addressBook.set(options.id, options.listen);
    const policy: SnapshotPolicy = {
      everyEntries: options.snapshotEntries ?? SNAPSHOT_POLICY_DEFAULTS.everyEntries,
      retainEntries: options.retainEntries ?? SNAPSHOT_POLICY_DEFAULTS.retainEntries,
    };
    const server = new grpc.Server({ ...PEER_SERVER_OPTIONS, interceptors: nodeServerInterceptors(tls, options.id, logger) });
    const shutdown = new AbortController();
    let node: RaftNode | null = null;
    let snapshots: NodeSnapshots | null = null;
    // The client services from the start: while the node loads its log and snapshot they answer
    // UNAVAILABLE ("the node is starting", retried elsewhere), not UNIMPLEMENTED, which no client retries.
    server.addService(
      raftLogServiceDefinition,
      createClientService(() => node, logger, channelCredentials),
    );
    server.addService(
      clusterServiceDefinition,
      createClusterService(() => node, logger, channelCredentials),
    );
    // The peer service too, answering UNAVAILABLE until the log is loaded (peerServiceWhileStarting).
    let peerService: grpc.UntypedServiceImplementation | null = null;
    server.addService(
      raftPeerServerDefinition,
      peerServiceWhileStarting(options.id, () => peerService),
    );
    const metrics = new NodeMetrics(() => node);
    // A follower trusts a silent leader no longer than it would before campaigning: the longest election timeout.
    const staleAfterMs = 2 * (options.electionTicks ?? NODE_DEFAULTS.electionTicks) * (options.tickMs ?? NODE_DEFAULTS.tickMs);
    new NodeHealth(server, () => node?.vitals() ?? null, { staleAfterMs, shutdown: shutdown.signal, logger });
    // The port first: a node that cannot listen must not have created or touched its data dir.
    let port: number;
    let metricsAddress: string | null = null;
    try {
      port = await bind(server, options.listen, nodeServerCredentials(tls));
      if (options.metricsListen !== undefined) {
        metrics.collectProcessMetrics();
        metricsAddress = await serveMetrics(metrics, options.metricsListen, shutdown.signal);
      }
    } catch (error) {
      shutdown.abort();
      server.forceShutdown();
      throw error;
    }
    let storage: LevelLogStorage | null = null;
    try {
      await options.failpoints?.hit('node-start');
      // Cluster identity (issue 10): the data dir is bound to this member and cluster; peers check both.
      storage = await LevelLogStorage.open(
        options.dataDir,
        rejoining
          ? { joining: true }
          : joined === null
            ? {
                voters: [...options.peers.keys()],
                addresses: Object.fromEntries(options.peers),
                member: { id: options.id, clusterName: cluster, clusterId: deriveClusterId(cluster, options.peers.keys()) },
              }
            : { joining: true, member: { id: options.id, clusterName: cluster, clusterId: joined.clusterId } },
      );
      const bound = storage.identity();
      if (bound === null) throw new Error(`node ${options.id}: the log in ${options.dataDir} opened without an identity`);
      if (rejoining) {
        if (bound.memberId !== options.id) {
          throw new Error(
            `node ${options.id}: ${options.dataDir} belongs to member ${bound.memberId} of cluster "${bound.clusterName}" (cluster id ${bound.clusterId}); ` +
              `start ${bound.memberId} on it, or give ${options.id} an empty directory to join with`,
          );
        }
        cluster = bound.clusterName;
      }
      const identity = { clusterId: bound.clusterId, incarnation: bound.incarnation };
      const admission = new PeerAdmission({
        self: options.id,
        cluster,
        clusterId: bound.clusterId,
        isKnownMember: (id) => node?.knowsPeer(id) ?? addressBook.has(id),
        logger,
      });
      if (storage.identityBound === 'created') {
        logger.info({ event: 'identity-bound', ...bound }, `new data dir: member ${options.id} of cluster ${bound.clusterId}`);
      } else if (storage.identityBound === 'adopted') {
        logger.warn(
          { event: 'identity-adopted', ...bound },
          `data dir written before cluster ids: bound now to member ${options.id} of cluster ${bound.clusterId}`,
        );
      }
      if (storage.journalTorn !== null) {
        logger.warn(
          { event: 'journal-torn', file: storage.journalTorn.file, offset: storage.journalTorn.offset },
          'dropped the last journal record, cut short by a crash during its append (it was never acknowledged)',
        );
      }
      if (storage.leftoversRemoved.length > 0) {
        logger.warn({ event: 'snapshot-leftovers-removed', files: storage.leftoversRemoved }, 'removed snapshot files a crash left behind');
      }
      const kv = await restoreStateMachine(storage, logger);
      const core = new RaftCore(
        {
          id: options.id,
          electionTicks: options.electionTicks ?? NODE_DEFAULTS.electionTicks,
          heartbeatTicks: options.heartbeatTicks ?? NODE_DEFAULTS.heartbeatTicks,
          maxProposalBytes: MAX_PROPOSAL_BYTES,
          maxUncommittedBytes: options.maxUncommittedBytes ?? NODE_DEFAULTS.maxUncommittedBytes,
          appliedIndex: kv.appliedIndex,
          // Only election timeouts are random; each process draws its own seed.
          random: new SeededRandom(randomInt(0x7fffffff)),
        },
        storage,
      );
      const others = new Map([...addressBook].filter(([id]) => id !== options.id));
      const peers = new PeerClients({
        self: options.id,
        cluster,
        identity,
        selfAddress: () => addressBook.get(options.id),
        peers: others,
        logger,
        channelCredentials,
        onRefusedAsNonMember: (peer) => node?.removedByPeer(peer),
        failpoints: options.failpoints ?? null,
        commitNoticeDelayMs: options.commitNoticeDelayMs ?? NODE_DEFAULTS.commitNoticeDelayMs,
      });
      const sender = new SnapshotSender({
        self: options.id,
        cluster,
        identity,
        logger,
        addressOf: (id) => addressBook.get(id),
        channelCredentials,
        ...slowSnapshotChunks(),
      });
      snapshots = new NodeSnapshots(options.id, storage, policy, sender, logger, metrics, options.failpoints ?? null);
      await snapshots.clearIncoming();
      const arrivals = snapshots;
      peerService = {
        ...createPeerService({
          self: options.id,
          cluster,
          admission,
          logger,
          shutdown: shutdown.signal,
          failpoints: options.failpoints ?? null,
          onMessages: (from: NodeId, messages: Message[], fromAddress: string) => node?.receive(messages, from, fromAddress),
        }),
        ...createSnapshotReceiver({
          self: options.id,
          cluster,
          admission,
          incomingDir: arrivals.incomingDirectory,
          logger,
          shutdown: shutdown.signal,
          onReceived: (snapshot) =>
            void arrivals.arrived(snapshot).then((message) => {
              if (message !== null) node?.receive([message]);
            }),
        }),
      };
      node = new RaftNode(
        options,
        core,
        storage,
        kv,
        snapshots,
        peers,
        server,
        shutdown,
        port,
        logger,
        addressBook,
        {
          clusterId: bound.clusterId,
          clusterName: bound.clusterName,
        },
        metrics,
      );
      if (options.join === undefined && storage.identityBound !== 'created') reportIgnoredPeers(options, core.brief(), logger);
      node.followConfiguration();
    } catch (error) {
      shutdown.abort();
      server.forceShutdown();
      await snapshots?.close();
      await storage?.close();
      throw error;
    }
    node.startTicking(options.tickMs ?? NODE_DEFAULTS.tickMs);
    const status = node.core.status();
    const security = describeTls(tls, options.listen);
    logger.info(
      {
        event: 'started',
        tls: security.tls,
        listen: options.listen,
        port,
        dataDir: options.dataDir,
        clusterId: node.storage.identity()?.clusterId,
        incarnation: node.storage.identity()?.incarnation,
        term: status.term,
        firstIndex: status.firstIndex,
        lastIndex: status.lastIndex,
        snapshotIndex: status.snapshotIndex,
        appliedIndex: node.kv.appliedIndex,
        // From process start: loading the code, opening the log, restoring the snapshot, binding.
        startupMs: Math.round(process.uptime() * 1000),
        metrics: metricsAddress === null ? 'off' : `http://${metricsAddress}/metrics`,
        journal: options.journal ?? NODE_DEFAULTS.journal,
        // A node with failpoints is a test node: its start line says so, and which are set.
        ...(options.failpoints == null ? {} : { failpoints: options.failpoints.describe() }),
      },
      `node started; ${security.note}`,
    );
    node.schedule();
    addReflection(server).catch((error: unknown) =>
      logger.warn({ event: 'reflection-failed', err: error }, `gRPC reflection is off: ${(error as Error).message}`),
    );
    return node;
  }

  get id(): NodeId {
    return this.options.id;
  }

  /**
   * Appends a command through Raft; resolves once it is committed and applied
   * here. Leader only. Past the deadline it fails with DEADLINE_EXCEEDED: the
   * entry may still commit later (the outcome is unknown to the caller).
   */
  propose(command: KvCommand, deadline: number, appended?: (index: number, term: number) => void): Promise<Committed> {
    return this.metrics.proposal(() => this.proposeCommand(command, deadline, appended));
  }

  private proposeCommand(command: KvCommand, deadline: number, appended?: (index: number, term: number) => void): Promise<Committed> {
    this.ensureRunning();
    this.admitWrite();
    // The leader's clock enters the log here, once; replicas only read it back (consumer commit times).
    const data = encodeCommand({ ...command, proposedAtMs: Date.now() });
    const result = this.intoCore('proposing a command', () => this.core.propose(data));
    if (!result.accepted) {
      if (result.reason === 'not-leader') throw new NotLeaderError(this.id, this.core.status().term, result.leader);
      if (result.reason === 'too-large') throw new ClientError(grpc.status.INVALID_ARGUMENT, result.message);
      // Certainly not written, like UNAVAILABLE, but retrying at once elsewhere would not help: back off.
      if (result.reason === 'backlog-full') throw new ClientError(grpc.status.RESOURCE_EXHAUSTED, result.message);
      if (result.reason === 'transfer-in-progress') throw new LeaderChangingError(result.message);
      throw unavailable(result.message);
    }
    appended?.(result.index, result.term);
    this.schedule();
    if (this.failpoints?.isOn('bug-reply-before-commit') && (command.op === 'put' || command.op === 'append')) {
      return Promise.resolve({ index: result.index, term: result.term, result: { op: command.op } });
    }
    return this.proposals.wait(result.index, result.term, deadline, () =>
      deadlineExceeded(`node ${this.id}: no commit of index ${result.index} before the deadline; the write may or may not take effect`),
    );
  }

  /**
   * A producer's write, so that its (producer, sequence) enters the log at
   * most once (leader only). A write the state machine applied before is
   * answered from the session, with no new entry; one still on its way in
   * this leader's log is waited for; only a write this leader's log does not
   * hold is proposed. Any log that later holds two copies would have held
   * the first when its leader appended the second (Log Matching), so checking
   * the leader's own log is enough, and ReadLog and subscribers never see a
   * retried record twice. The state machine still checks every stamp as it
   * applies (a session forgotten in between refuses the write there).
   */
  async proposeOnce(command: KvCommand & { readonly producer: ProducerStamp }, deadline: number): Promise<Committed> {
    this.ensureRunning();
    if (this.core.brief().role !== 'leader') {
      const { term, leader } = this.core.status();
      throw new NotLeaderError(this.id, term, leader);
    }
    const verdict = this.kv.peekProducer(command.producer);
    if (verdict.kind === 'refused' && verdict.reason === 'unknown-producer' && this.registersProducerUnapplied(command.producer.id)) {
      // A new leader may hold the registering entry without having applied it yet: not unknown, not yet known.
      throw unavailable(
        `node ${this.id}: producer ${command.producer.id} is registered at an index this leader has not applied yet (applied ${this.kv.appliedIndex}); nothing was written, retry shortly`,
      );
    }
    if (verdict.kind === 'refused') throw producerRefusal(this.id, verdict.reason, verdict.message);
    if (verdict.kind === 'duplicate') {
      return { index: verdict.write.index, term: verdict.write.term, result: { op: 'duplicate', write: verdict.write } };
    }
    const pending = this.pendingCopy(command.producer);
    if (pending !== null) {
      const first = await this.proposals.wait(pending.index, pending.term, deadline, () =>
        deadlineExceeded(
          `node ${this.id}: no commit of index ${pending.index} (an earlier attempt of this write) before the deadline; the write may or may not take effect`,
        ),
      );
      // The earlier attempt's answer; this one applied nothing.
      const { result } = first;
      if (result.op !== 'put' && result.op !== 'delete' && result.op !== 'cas' && result.op !== 'append') return first;
      return {
        ...first,
        result: { op: 'duplicate', write: { sequence: command.producer.sequence, index: first.index, term: first.term, outcome: result } },
      };
    }
    const stamps = this.tailStamps;
    return await this.propose(command, deadline, (index, term) => stamps.byStamp.set(stampKey(command.producer), { index, term }));
  }

  /** Whether the entry at `index` is in this node's log, not applied yet, and registers a producer. */
  private registersProducerUnapplied(index: number): boolean {
    if (index <= this.kv.appliedIndex) return false;
    const entry = this.core.entryAt(index);
    return entry !== null && entry.kind === 'command' && decodeCommand(entry.data)?.op === 'register-producer';
  }

  /**
   * The entry of this node's log, not applied yet, that carries the same
   * producer write. Looked up in an index of the stamps in this leader's log
   * (decoding the unapplied tail on every write would cost O(tail) each):
   * built once per term from the tail it inherited, then kept by its own
   * proposals (a leader's log only grows while it leads).
   */
  private pendingCopy(stamp: ProducerStamp): { index: number; term: number } | null {
    const found = this.tailStamps.byStamp.get(stampKey(stamp));
    return found !== undefined && found.index > this.kv.appliedIndex ? found : null;
  }

  private stampIndex: { readonly term: number; readonly byStamp: Map<string, { index: number; term: number }> } | null = null;

  /** The stamps in this leader's unapplied log, for its current term. */
  private get tailStamps(): { readonly term: number; readonly byStamp: Map<string, { index: number; term: number }> } {
    const { term, lastIndex } = this.core.status();
    let stamps = this.stampIndex;
    if (stamps === null || stamps.term !== term) {
      stamps = { term, byStamp: new Map() };
      for (let index = this.kv.appliedIndex + 1; index <= lastIndex; index++) {
        const entry = this.core.entryAt(index);
        if (entry === null || entry.kind !== 'command') continue;
        const command = decodeCommand(entry.data);
        if (command !== null && 'producer' in command && command.producer !== undefined) {
          stamps.byStamp.set(stampKey(command.producer), { index, term: entry.term });
        }
      }
      this.stampIndex = stamps;
    } else if (stamps.byStamp.size > 4096) {
      for (const [key, at] of stamps.byStamp) if (at.index <= this.kv.appliedIndex) stamps.byStamp.delete(key);
    }
    return stamps;
  }

  /**
   * Load above capacity makes the queue of waiting writes grow without end:
   * once its head has waited maxWriteWaitMs, refuse new writes (certainly not
   * written; the client library retries after a pause) so that admitted ones
   * keep a bounded latency. A node that is not the leader waits for nothing
   * here and forwards.
   */
  private admitWrite(): void {
    const limit = this.options.maxWriteWaitMs ?? NODE_DEFAULTS.maxWriteWaitMs;
    // A deposed leader still holds its waiters until they settle: it must answer "not the leader", not "busy".
    if (limit === 0 || this.proposals.size === 0 || this.core.brief().role !== 'leader') return;
    const waited = this.proposals.oldestWaitMs();
    if (waited < limit) return;
    const { commitIndex, term } = this.core.status();
    throw new ClientError(
      grpc.status.RESOURCE_EXHAUSTED,
      `node ${this.id} (term ${term}): the oldest of ${this.proposals.size} waiting writes has waited ${Math.round(waited)} ms to commit ` +
        `(limit ${limit} ms, commit index ${commitIndex}); nothing was written, retry shortly`,
    );
  }

  /** The configuration in force here, and on the leader each member's match index. */
  membership(): MembershipView {
    return membershipView(this.core.status());
  }

  /**
   * A membership change through Raft (leader only): resolves once the change
   * is committed and applied here, with the configuration then in force.
   */
  async changeMembership(change: ConfigChange, deadline: number): Promise<{ readonly index: number; readonly view: MembershipView }> {
    this.ensureRunning();
    const result = this.intoCore(`proposing configuration change ${change.type} ${change.id}`, () => this.core.proposeConfigChange(change));
    if (!result.accepted) throw refusalError(result, this.id, this.core.status().term);
    this.logger.info(
      { event: 'config-change', change, index: result.index, term: result.term },
      `configuration change ${change.type} ${change.id} appended at ${result.index}`,
    );
    this.schedule();
    const committed = await this.proposals.wait(result.index, result.term, deadline, () =>
      deadlineExceeded(
        `node ${this.id}: no commit of the configuration change at index ${result.index} before the deadline; it may or may not take effect`,
      ),
    );
    return { index: committed.index, view: this.membership() };
  }

  /** A linearizable read (ReadIndex): confirmed by the leader, served here once applied that far. */
  linearizableGet(key: Uint8Array, deadline: number): Promise<ReadResult> {
    return this.linearizableRead(deadline, () => this.localGet(key));
  }

  /**
   * Any linearizable read of the state machine: `serve` runs once the leader
   * confirmed the read index and this node applied that far, in the same
   * step (nothing is applied in between).
   */
  linearizableRead<T>(deadline: number, serve: () => T): Promise<T> {
    this.ensureRunning();
    if (this.failpoints?.isOn('bug-read-local')) return Promise.resolve(serve());
    const requestId = `${this.id}.${process.pid}.${++this.readCounter}`;
    const accepted = this.intoCore('asking for a read index', () => this.core.readIndex(requestId));
    if (!accepted.accepted) throw new NotLeaderError(this.id, this.core.status().term, null);
    this.schedule();
    const reads = this.reads as unknown as Map<string, Waiter<T> & { readonly serve: () => T }>;
    return this.wait(reads, requestId, deadline, { serve }, () => 'the read was not confirmed before the deadline');
  }

  /** Durable consumers as this node's state machine holds them (sorted by name), and the index they were read at. */
  consumers(): { consumers: ConsumerPosition[]; index: number } {
    return { consumers: this.kv.consumers(), index: this.kv.appliedIndex };
  }

  consumer(name: string): ConsumerPosition | null {
    return this.kv.consumer(name);
  }

  /** Calls `listener` after every batch of applied entries until the returned function is called. */
  onApplied(listener: () => void): () => void {
    this.appliedListeners.add(listener);
    return () => this.appliedListeners.delete(listener);
  }

  /**
   * What entries from..(applied index) changed, at most `max` changed entries
   * (the CHANGES view). OUT_OF_RANGE when this node no longer knows (or never
   * knew) the changes at `from`.
   */
  readChanges(from: number, max: number): { entries: ChangedEntry[]; through: number } {
    const first = this.changes.firstIndex;
    if (from < first) {
      throw new ClientError(
        grpc.status.OUT_OF_RANGE,
        `node ${this.id}: cannot read changes from index ${from}: this node keeps the changes of entries from ${first} on (those it applied since it started, up to ${this.options.changeHistoryEntries ?? CHANGE_HISTORY_DEFAULTS.entries} changing entries); the changes view starts at ${first}`,
        { firstIndex: first },
      );
    }
    return this.changes.read(from, this.changes.lastIndex, max);
  }

  /** This node's state as it is: fast, possibly stale. */
  localGet(key: Uint8Array): ReadResult {
    return { value: this.kv.get(key), index: this.kv.appliedIndex };
  }

  /**
   * Committed entries of this node's own log from `from` on, at most `max`
   * of them and about READ_LOG_MAX_BYTES of records and keys (always at least
   * one entry, so a reader makes progress).
   */
  readCommittedLog(from: number, max: number, maxBytes = READ_LOG_MAX_BYTES): { entries: LogEntryReply[]; commitIndex: number } {
    const { commitIndex, firstIndex } = this.core.status();
    if (from < firstIndex) {
      // A subscriber must learn that it missed entries rather than get a page that silently starts later.
      throw new ClientError(
        grpc.status.OUT_OF_RANGE,
        `node ${this.id}: cannot read from index ${from}: entries before ${firstIndex} were compacted into a snapshot; the log starts at ${firstIndex}`,
        { firstIndex },
      );
    }
    const entries: LogEntryReply[] = [];
    let bytes = 0;
    for (let index = from; index <= commitIndex && entries.length < max; index++) {
      const entry = this.core.entryAt(index);
      if (entry === null) throw new ClientError(grpc.status.INTERNAL, `node ${this.id}: committed entry ${index} is missing from the log`);
      const described = this.described.describe(entry);
      bytes += entryBytes(described);
      if (entries.length > 0 && bytes > maxBytes) break;
      entries.push(described);
    }
    return { entries, commitIndex };
  }

  /** The core's role, term, leader and indexes: cheap enough for every request (status() hashes the state). */
  brief(): RaftBrief {
    return this.core.brief();
  }

  status(): RaftStatus & { digest: string; appliedIndex: number; removed: boolean } {
    return { ...this.core.status(), appliedIndex: this.kv.appliedIndex, digest: this.kv.digest(), removed: this.removed };
  }

  /** performance.now() when a message from each peer last arrived. */
  private readonly heardAt = new Map<NodeId, number>();

  /** What health checks and metrics read: the core's state without the digest, and how long the leader has been silent. */
  vitals(): NodeVitals {
    const status = this.core.status();
    const heard = status.leader === null ? undefined : this.heardAt.get(status.leader);
    const leaderSilenceMs = status.leader === this.id ? 0 : heard === undefined ? null : performance.now() - heard;
    return { status, appliedIndex: this.kv.appliedIndex, removed: this.removed, stopped: this.stopped, leaderSilenceMs };
  }

  /** Each peer link's queue and counters, for metrics. */
  peerLinks(): readonly PeerLinkFigures[] {
    return this.peers.stats();
  }

  addressOf(id: NodeId): string | undefined {
    return this.addressBook.get(id);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  // ------------------------------------------------ leadership moves and held requests (issue 13)

  /** One election timeout: how long a follower waits before it campaigns (at least), and the core tries one handover. */
  get electionTimeoutMs(): number {
    return (this.options.electionTicks ?? NODE_DEFAULTS.electionTicks) * (this.options.tickMs ?? NODE_DEFAULTS.tickMs);
  }

  /** How long a request is held while the leadership changes (0: never). */
  get holdWithoutLeaderMs(): number {
    return this.options.holdWithoutLeaderMs ?? 10 * this.electionTimeoutMs;
  }

  /** Who leads, as this node sees it now. */
  leadershipView(): LeadershipView {
    const { role, term, leader, transferringTo } = this.core.status();
    return { role, term, leader, transferringTo };
  }

  /** Resolves with the first view for which `ready` holds; null once `until` passes or the node stops. */
  awaitLeadership(until: number, ready: (view: LeadershipView) => boolean): Promise<LeadershipView | null> {
    return this.leadershipWatch.wait(this.leadershipView(), until, ready);
  }

  /**
   * Hands leadership (this node must lead) to `to`, or, when null, to the most
   * caught-up voter not in `skip`; resolves once this node knows the new
   * leader (leadership-transfer.ts has the refusals).
   */
  transferLeadership(to: NodeId | null, deadline: number, skip: ReadonlySet<NodeId> = new Set()): Promise<TransferOutcome> {
    this.ensureRunning();
    return transferLeadership(
      {
        id: this.id,
        logger: this.logger,
        electionTimeoutMs: this.electionTimeoutMs,
        stopped: () => this.stopped,
        status: () => this.core.status(),
        leadershipView: () => this.leadershipView(),
        awaitLeadership: (until, ready) => this.awaitLeadership(until, ready),
        startTransfer: (target) => {
          const result = this.intoCore(`handing leadership to ${target}`, () => this.core.transferLeadership(target));
          this.schedule();
          return result;
        },
      },
      to,
      deadline,
      skip,
    );
  }

  /**
   * Before a graceful stop: a leader hands leadership to its most caught-up
   * voter, so that the cluster does not wait an election timeout to notice
   * it is gone, then waits for its writes in flight to be answered (the new
   * leader commits them), so that their callers learn the outcome. Bounded:
   * three election timeouts for the handover, two more for the writes; never
   * throws. A target that does not take over within an election timeout is
   * replaced by the most caught-up voter not tried yet (once every voter was
   * tried, the best again). A node that does not lead returns at once.
   */
  async handOverLeadership(): Promise<void> {
    const until = Date.now() + 3 * this.electionTimeoutMs;
    const tried = new Set<NodeId>();
    while (!this.stopped && this.core.brief().role === 'leader') {
      const status = this.core.status();
      // The only voter: nobody to hand over to.
      if (mostCaughtUpVoter(status) === null) return;
      if (mostCaughtUpVoter(status, tried) === null) tried.clear();
      try {
        await this.transferLeadership(null, until, tried);
        // Checked on every tick: the writes' waiters settle as this node applies what the new leader commits.
        await this.awaitLeadership(Date.now() + 2 * this.electionTimeoutMs, () => this.proposals.size === 0);
        return;
      } catch (error) {
        if (error instanceof TargetDidNotTakeOver && Date.now() < until) {
          tried.add(error.target);
          continue;
        }
        this.logger.warn({ event: 'handover-failed', err: error }, `stopping without handing leadership over: ${(error as Error).message}`);
        return;
      }
    }
  }

  /**
   * Why this node fail-stopped (a disk write failed, or the core threw while
   * stepping, ticking or taking a client's call), or null. A node that
   * fail-stopped stops by itself; its process exits 1.
   */
  get fatal(): string | null {
    return this.fatalReason;
  }

  /**
   * Graceful stop: no new work, pending callers told, disk and sockets closed.
   * One stop runs; every call (a second signal, a fail-stop during a graceful
   * stop) gets the same promise, which settles once that stop has finished.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    try {
      await this.shutDown();
    } catch (error) {
      this.logger.error({ event: 'stop-failed', err: error }, `node ${this.id} did not stop cleanly: ${(error as Error).message}`);
      throw error;
    }
  }

  private async shutDown(): Promise<void> {
    this.stopped = true;
    // Subscription streams wake, see the node stopping and end with UNAVAILABLE (the client resumes elsewhere).
    for (const listener of this.appliedListeners) listener();
    // Nothing more is carried out; the writes already queued finish (or fail) before the log closes, below.
    this.runner.stop();
    if (this.timer !== null) clearInterval(this.timer);
    // Journaled writes not handed to LevelDB yet go now (should the queue have failed, the journal keeps them for the next start).
    this.flushJournalNow({ stopping: true });
    // A write held at a paused failpoint must go on, or the stop below would wait for it for ever.
    await this.failpoints?.close();
    // Held requests answer UNAVAILABLE now rather than keep the server from shutting down.
    this.leadershipWatch.stop();
    // A proposal in the log may still commit through the next leader: its outcome is unknown, and
    // UNAVAILABLE would tell the client it is safe to retry. A read changed nothing, so it may say so.
    this.proposals.rejectAll(
      (index, term) =>
        new ClientError(
          grpc.status.UNKNOWN,
          `node ${this.id} is shutting down before the write at index ${index} (term ${term}) was known to commit; it may or may not take effect`,
        ),
    );
    const reason = this.stoppingError();
    for (const pending of this.reads.values()) pending.reject(reason);
    this.reads.clear();
    // Peers' streams to us stay open until we end them; client calls get a moment to finish.
    this.shutdown.abort();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => this.server.forceShutdown(), 2_000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    await this.peers.close();
    await this.snapshots.close();
    await this.disk.idle();
    // A snapshot finished during the stop is worth keeping: the next start replays less.
    if (!this.disk.failed) {
      await this.snapshots
        .recordWritten()
        .catch((error: unknown) =>
          this.logger.warn({ event: 'snapshot-record-failed', err: error }, 'could not record the last snapshot while stopping'),
        );
    }
    await this.storage.close();
    this.logger.info({ event: 'stopped' }, 'node stopped');
  }

  private receive(messages: readonly Message[], from?: NodeId, fromAddress = ''): void {
    if (this.stopped) return;
    if (from !== undefined && fromAddress !== '' && this.mayAnswerAtGivenAddress(from, fromAddress)) this.takeGivenAddress(from, fromAddress);
    // A batch comes from one peer: when the leader was last heard from is what health checks look at.
    if (messages[0] !== undefined) this.heardAt.set(messages[0].from, performance.now());
    // The wire codec refused every malformed message already: a throw while stepping is a broken invariant
    // of the core (say, a commit index beyond our log). Answering the peer with an error and carrying on
    // would act on a half-updated core; the guard stops the node instead.
    for (const message of messages) {
      if (!this.quietlyIntoCore(`stepping ${message.type} from ${message.from} in term ${message.term}`, () => this.core.step(message))) return;
    }
    this.schedule();
  }

  private startTicking(tickMs: number): void {
    this.timer = setInterval(() => {
      if (!this.quietlyIntoCore('a tick of the logical clock', () => this.core.tick())) return;
      // A handover the core gave up on changes no role: only the tick tells the waiters.
      if (this.leadershipWatch.size > 0) this.leadershipWatch.update(this.leadershipView());
      this.schedule();
    }, tickMs);
  }

  /**
   * Every call that changes the core goes through here (output is taken under
   * runOutputs' own guard). The core answers a refusal (not the leader, too
   * large, a transfer under way) as a value and imports none of the node's
   * errors: anything it throws is a broken invariant, and it may be
   * half-updated. Acting on it could acknowledge what is not so, and
   * answering INTERNAL and carrying on would; the node fail-stops instead, as
   * etcd's raft panics. The caller hears UNAVAILABLE "node X is stopping":
   * the step that threw had no effect outside this process, since the stop
   * begins before any output of it is taken.
   */
  private intoCore<T>(what: string, step: () => T): T {
    try {
      return step();
    } catch (error) {
      this.failStop(error, what);
      throw this.stoppingError();
    }
  }

  /** intoCore for the node's own calls (a tick, a peer's message): false when the node fail-stopped instead. */
  private quietlyIntoCore(what: string, step: () => void): boolean {
    try {
      this.intoCore(what, step);
      return true;
    } catch {
      return false;
    }
  }

  /** What a caller hears once the node is stopping: why, if it fail-stopped. */
  private stoppingError(): ClientError {
    return unavailable(this.fatalReason === null ? `node ${this.id} is shutting down` : `node ${this.id} is stopping: ${this.fatalReason}`);
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.runOutputs();
    });
  }

  /** Takes and carries out the core's outputs while the writes in progress allow. */
  private runOutputs(): void {
    if (this.stopped) return;
    try {
      if (this.runner.run() === 0) return;
      this.followConfiguration();
      this.maybeSnapshot();
    } catch (error) {
      this.failStop(error, 'carrying out output');
    }
  }

  /** A write completed: the core heard it persisted, and may have new output (a commit, the next appends). */
  private afterWrite(): void {
    if (this.stopped) return;
    this.followConfiguration();
    this.maybeSnapshot();
    this.schedule();
  }

  /**
   * A failed disk write or a broken invariant of the core leaves us unable to
   * promise anything: stop rather than risk acknowledging unsaved or wrong
   * state. Recorded (fatal) and reported once (onFatal), so that the process
   * exits 1 even when this happens during a graceful stop.
   */
  private failStop(error: unknown, what: string): void {
    this.logger.fatal({ event: 'fatal', err: error, failed: what }, `cannot continue: ${what} failed`);
    if (this.fatalReason !== null) return;
    this.fatalReason = `${what} failed: ${error instanceof Error ? error.message : String(error)}`;
    // stop() logs its own failure; whoever awaits it (runNode) decides the exit code.
    this.stop().catch(() => undefined);
    this.options.onFatal?.(this.fatalReason);
  }

  /** Starts a snapshot of the state machine when the policy says so, unless a leader's snapshot is about to replace it. */
  private maybeSnapshot(): void {
    const { appliedIndex } = this.core.brief();
    // A leader's snapshot being installed holds applies back: the state machine is behind the core until then.
    if (appliedIndex !== this.kv.appliedIndex) return;
    this.snapshots.maybeStart(this.kv, this.core.termAt(appliedIndex), this.core.configAt(appliedIndex), () => this.recordSnapshot());
  }

  /**
   * Records the snapshot written in the background and compacts, on the disk
   * queue: after every write queued so far, so the entries it covers (applied,
   * hence queued already) are on disk before the log behind it is deleted.
   */
  private recordSnapshot(): void {
    // A stopping node records it itself once the queue is idle.
    if (this.stopped) return;
    this.disk.task('recording a snapshot and compacting', () => this.snapshots.recordWritten());
  }

  /** An output was just taken: a member its entries (or snapshot) add is linked before any of its messages go out; role changes are logged. */
  private taken(output: RaftOutput): void {
    if (output.snapshot !== null || output.entries.some((entry) => entry.kind === 'config')) this.followConfiguration({ linksOnly: true });
    if (output.roleChange !== null) {
      const { role, term, leader, reason } = output.roleChange;
      const level = role !== this.lastRole || role === 'leader' ? 'info' : 'debug';
      this.logger[level]({ event: 'role', role, term, leader, reason }, `${role} in term ${term}`);
      this.lastRole = role;
      this.metrics.roleChanged(leader);
      if (this.leadershipWatch.size > 0) this.leadershipWatch.update(this.leadershipView());
    }
  }

  /**
   * The output's write goes on the disk queue, or into the log's journal at
   * once when no message waits to go out ahead of it (a follower's append:
   * its answer goes out in this turn instead of after a LevelDB fsync
   * completes on another thread and wakes the loop). A leader's writes stay
   * on the queue: its own fsync there runs while its appends travel, where
   * an fsync on this thread would hold them until it returns (saveQueued).
   * A leader's snapshot is installed on the queue, before `done`.
   */
  private write(output: RaftOutput, done: () => void): void {
    const snapshot = output.snapshot;
    if (snapshot === null && output.earlyMessages.length === 0 && this.journalAllowed()) {
      this.failpoints?.hitNow('journal-append');
      const started = performance.now();
      this.storage.appendJournaled(output.hardState, output.entries);
      this.metrics.logWritten((performance.now() - started) / 1000, 1);
      done();
      this.flushJournalSoon();
      return;
    }
    if (snapshot === null) {
      this.disk.save(output, done);
      return;
    }
    this.disk.task(
      `installing the leader's snapshot at ${snapshot.index} (term ${snapshot.term})`,
      async () => {
        const installing = await this.snapshots.prepareInstall(snapshot);
        await this.storage.save(output.hardState, output.entries, installing.ref);
        this.install(installing.kv);
      },
      done,
    );
  }

  /**
   * A plain write from the disk queue: into the journal with its fdatasync on
   * a libuv thread (--journal on), or a fsync'd LevelDB batch. The journal's
   * fdatasync writes a record into a file whose size is set; LevelDB's syncs
   * its own log, which grows, and builds and inserts the batch on the way.
   */
  private async saveQueued(write: LogWrite): Promise<void> {
    if ((this.options.journal ?? NODE_DEFAULTS.journal) !== 'on') {
      await this.storage.save(write.hardState, write.entries);
      return;
    }
    await this.storage.saveJournaled(write.hardState, write.entries);
    this.flushJournalSoon();
  }

  /**
   * Journaled writes go to LevelDB in batches: once JOURNAL_FLUSH.bytes wait,
   * or JOURNAL_FLUSH.ms after the first, or with the next write on the disk
   * queue, whichever comes first. One LevelDB write (and its completion's
   * wake-up) then serves several appends.
   */
  private flushJournalSoon(): void {
    if (this.storage.journaledBytes >= JOURNAL_FLUSH.bytes) {
      this.flushJournalNow();
      return;
    }
    if (this.journalFlushTimer !== null) return;
    this.journalFlushTimer = setTimeout(() => this.flushJournalNow(), JOURNAL_FLUSH.ms);
    this.journalFlushTimer.unref();
  }

  private flushJournalNow({ stopping = false }: { stopping?: boolean } = {}): void {
    if (this.journalFlushTimer !== null) clearTimeout(this.journalFlushTimer);
    this.journalFlushTimer = null;
    if (this.stopped && !stopping) return;
    this.disk.flush('handing journaled writes to LevelDB', () => this.storage.flushJournaled());
  }

  private journalFlushTimer: NodeJS.Timeout | null = null;

  /**
   * The journal is used when the node allows it (--journal), nothing but
   * flushes is on the disk queue (a write still on its way there has not
   * reached the log's memory, and the journal's write must follow it), and
   * no failpoint is set on the queue's writes (they must be honoured).
   */
  private journalAllowed(): boolean {
    if ((this.options.journal ?? NODE_DEFAULTS.journal) === 'off') return false;
    if (this.failpoints !== null && (this.failpoints.isSet('log-write') || this.failpoints.isSet('log-written'))) return false;
    return this.disk.holdsOnlyFlushes();
  }

  /** Raft messages go to the peer transport; a snapshot the core asks for goes to the snapshot transfer. */
  private send(messages: readonly Message[]): void {
    this.failpoints?.hitNow('before-send');
    const batch: Message[] = [];
    for (const message of messages) {
      if (message.type === 'InstallSnapshot') this.sendSnapshot(message);
      else batch.push(message);
    }
    if (batch.length > 0) this.peers.send(batch);
  }

  private sendSnapshot(message: InstallSnapshot): void {
    this.snapshots.send(message, (ok) => {
      if (this.stopped) return;
      if (!this.quietlyIntoCore(`reporting the snapshot sent to ${message.to}`, () => this.core.reportSnapshot(message.to, ok))) return;
      this.schedule();
    });
  }

  /** The state machine becomes the leader's snapshot. Writes waiting on entries it covers have an unknown outcome. */
  private install(kv: KvStateMachine): void {
    const previous = this.kv.appliedIndex;
    this.kv = kv;
    this.snapshots.installed();
    this.changes.reset(kv.appliedIndex);
    this.proposals.rejectThrough(
      kv.appliedIndex,
      (index, term) =>
        new ClientError(
          grpc.status.UNKNOWN,
          `node ${this.id}: the write at index ${index} (term ${term}) was overtaken by a snapshot from the leader; it may or may not have taken effect`,
        ),
    );
    this.logger.info(
      { event: 'snapshot-installed', index: kv.appliedIndex, previousApplied: previous, digest: kv.digest() },
      `installed the leader's snapshot at ${kv.appliedIndex}`,
    );
  }

  private apply(entry: Entry): void {
    const changes: KvChange[] = [];
    const result = this.kv.apply(entry, changes);
    if (changes.length > 0) this.changes.record(entry.index, entry.term, CHANGE_KINDS[result.op] ?? 'LOG_ENTRY_KIND_UNSPECIFIED', changes);
    else this.changes.record(entry.index, entry.term, 'LOG_ENTRY_KIND_NO_COMMAND', changes);
    if (this.proposals.size === 0) return;
    this.failpoints?.hitNow('before-reply');
    this.proposals.applied(
      entry.index,
      entry.term,
      () => ({ index: entry.index, term: entry.term, result }),
      // Another leader's entry took this index: ours was never committed, definitely.
      (term) => unavailable(`the write at index ${entry.index} (term ${term}) was not committed: leadership changed (term ${entry.term})`),
    );
  }

  private serveRead(read: ReadReady): void {
    const pending = this.reads.get(read.requestId);
    if (pending === undefined) return;
    this.reads.delete(read.requestId);
    pending.resolve(pending.serve());
  }

  private failRead(read: ReadFailed): void {
    const pending = this.reads.get(read.requestId);
    if (pending === undefined) return;
    this.reads.delete(read.requestId);
    pending.reject(unavailable(`read not confirmed: ${read.reason}`));
  }

  /** Registers a waiter that the apply loop settles, or the deadline fails (and forgets). */
  private wait<K, T, E extends object>(waiters: Map<K, Waiter<T> & E>, key: K, deadline: number, extra: E, timeoutMessage: () => string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        ...extra,
        resolve: (value: T) => {
          this.deadlines.cancel(expiry);
          resolve(value);
        },
        reject: (error: Error) => {
          this.deadlines.cancel(expiry);
          reject(error);
        },
      };
      const expiry = this.deadlines.add(deadline, () => {
        // Only this waiter: another may have taken the key since.
        if (waiters.get(key) === waiter) waiters.delete(key);
        reject(deadlineExceeded(`node ${this.id}: ${timeoutMessage()}`));
      });
      waiters.set(key, waiter);
    });
  }

  private ensureRunning(): void {
    if (this.stopped) throw this.stoppingError();
  }
}

/**
 * Once a data dir holds a configuration it wins over --peers, which only
 * seeds a new cluster; a --peers that says otherwise (members added or
 * removed since, or moved) is worth a warning, since the operator may be
 * expecting it to be obeyed.
 */
function reportIgnoredPeers(options: RaftNodeOptions, brief: { config: ClusterConfig; configIndex: number }, logger: Logger): void {
  const { config, configIndex } = brief;
  const members = [...config.voters, ...learnersOf(config)];
  const given = [...options.peers.keys()];
  const differences: string[] = [];
  const missing = members.filter((id) => !options.peers.has(id));
  const extra = given.filter((id) => !members.includes(id));
  if (missing.length > 0) differences.push(`it lacks ${missing.join(', ')}`);
  if (extra.length > 0) differences.push(`it lists ${extra.join(', ')}, which ${extra.length === 1 ? 'is not a member' : 'are not members'}`);
  for (const [id, address] of options.peers) {
    const configured = config.addresses?.[id];
    if (id !== options.id && configured !== undefined && configured !== address && !PEER_ROUTES.has(id)) {
      differences.push(`it puts ${id} at ${address}, the configuration at ${configured}`);
    }
  }
  if (differences.length === 0) return;
  logger.warn(
    { event: 'peers-ignored', peers: given, voters: config.voters, learners: learnersOf(config), configIndex },
    `--peers is not the configuration in ${options.dataDir} (${describeConfig(config)}, from index ${configIndex}): ${differences.join('; ')}. ` +
      "The data dir's configuration wins; change members with `raftlog member`",
  );
}

/**
 * Test hook: RAFTLOG_TEST_PEER_ROUTES=id=host:port,... is where this node
 * reaches those peers, whatever address the configuration gives them. A fault
 * harness routes each direction between two nodes through a proxy of its own,
 * which one address per member in the configuration cannot express (a member
 * added later included). Unset in production: the configuration decides.
 */
const PEER_ROUTES: ReadonlyMap<NodeId, string> = new Map(
  (process.env.RAFTLOG_TEST_PEER_ROUTES ?? '')
    .split(',')
    .map((route) => route.trim().split('='))
    .filter((pair): pair is [string, string] => pair.length === 2 && pair[0] !== '' && pair[1] !== ''),
);

/**
 * Test hook: RAFTLOG_TEST_SNAPSHOT_CHUNK_DELAY_MS slows every outgoing
 * snapshot chunk, so that tests can stop a node in the middle of a transfer.
 * Read once at start; unset, it costs nothing.
 */
function slowSnapshotChunks(): { chunkHook?: () => Promise<void> } {
  const delay = Number(process.env.RAFTLOG_TEST_SNAPSHOT_CHUNK_DELAY_MS ?? 0);
  if (!(delay > 0)) return {};
  return { chunkHook: () => new Promise((resolve) => setTimeout(resolve, delay)) };
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error !== null) reject(new Error(`cannot listen on ${address}: ${error.message}`));
      else resolve(port);
    });
  });
}
