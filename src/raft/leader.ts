import type { ResolvedOptions } from './config.js';
import type { RaftLog } from './log.js';
import { applyChange, describeConfig, encodeConfig, learnersOf } from './membership.js';
import type { OutgoingMessage } from './outgoing.js';
import { Progress } from './progress.js';
import type { MajorityConfig } from './quorum.js';
import { type ConfirmedRead, ReadIndexTracker, type ReadRequest } from './read-index.js';
import { probeIndexFromHint } from './replication.js';
import type {
  AppendResponse,
  ClusterConfig,
  ConfigChange,
  Entry,
  FollowerProgress,
  HeartbeatResponse,
  Message,
  NodeId,
  ProposeResult,
  TransferResult,
} from './types.js';

// Optional fields spread into every append and heartbeat: shared, they cost no allocation.
const TO_LEARNER = { toLearner: true } as const;
const COMMIT_ONLY = { commitOnly: true } as const;
const NONE = {} as const;

/** What a leader needs of its node. The term never changes under a Leadership: a new term ends it. */
export interface LeaderContext {
  readonly id: NodeId;
  readonly term: number;
  /** The configuration in force (the latest appended). */
  config(): ClusterConfig;
  /** The voters whose majority commits entries and confirms leadership. */
  quorum(): MajorityConfig;
  /** A configuration change is appended and not committed yet. */
  configChangePending(): boolean;
  readonly log: RaftLog;
  readonly options: ResolvedOptions;
  send(message: OutgoingMessage): void;
  /** A read asked on this node is confirmed at `index`; the node serves it once applied that far. */
  localReadConfirmed(requestId: string, index: number): void;
  mayCommitByCounting(index: number): boolean;
  requiresQuorumForRead(): boolean;
}

const EMPTY = new Uint8Array(0);

/**
 * Everything a node does and remembers only while it leads one term: the
 * followers' progress, replication, the commit rule, heartbeats, CheckQuorum,
 * ReadIndex rounds and leadership transfer. Created when the node wins an
 * election, dropped when it steps down, so nothing of it can leak into a
 * later term.
 */
export class Leadership {
  private readonly progress: Map<NodeId, Progress>;
  /** Bytes of data proposed in this term and not yet committed (entries of earlier terms are not counted). */
  private uncommittedBytes = 0;
  private transferee: NodeId | null = null;
  private transferElapsed = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private readonly readRounds = new ReadIndexTracker();
  /** Reads asked before an entry of this term committed (dissertation §6.4, step 1). */
  private readsAwaitingCommit: ReadRequest[] = [];
  /** Reads asked since the last output; one heartbeat round confirms them all. */
  private readsToStart: ReadRequest[] = [];
  private appendBroadcastPending = true;
  private peersCache: { readonly latest: ClusterConfig; readonly committed: ClusterConfig; readonly peers: readonly NodeId[] } | null = null;

  constructor(private readonly ctx: LeaderContext) {
    const { log } = ctx;
    this.progress = new Map();
    this.syncProgress();
    // A no-op of our own term lets earlier entries commit (§5.4.2) and is needed before serving reads (§6.4).
    log.appendNew([{ index: log.lastIndex() + 1, term: ctx.term, kind: 'noop', data: EMPTY }]);
  }

  get transferringTo(): NodeId | null {
    return this.transferee;
  }

  followerProgress(): FollowerProgress[] {
    return [...this.progress.values()].map((p) => p.view());
  }

  /** Returns why the leader must step down, or null. */
  tick(): string | null {
    const { options, id } = this.ctx;
    this.electionElapsed++;
    this.heartbeatElapsed++;
    for (const progress of this.progress.values()) progress.ticksSinceHeard++;
    if (this.transferee !== null && ++this.transferElapsed >= options.electionTicks) this.transferee = null;
    if (this.electionElapsed >= options.electionTicks) {
      this.electionElapsed = 0;
      if (options.checkQuorum) {
        const active = [id];
        for (const progress of this.progress.values()) {
          if (progress.recentlyActive) active.push(progress.id);
          progress.recentlyActive = false;
        }
        const quorum = this.ctx.quorum();
        if (!quorum.hasQuorum(active)) {
          const heard = active.filter((voter) => quorum.includes(voter)).length;
          return `check quorum failed: heard from ${heard} of ${quorum.size} voters in an election timeout`;
        }
      }
    }
    if (this.heartbeatElapsed >= options.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      const context = this.readRounds.latestContext();
      for (const peer of this.peers()) this.sendHeartbeat(peer, context);
    }
    return null;
  }

  /**
   * Proposes one membership change (dissertation §4.1 with its correction:
   * only once an entry of this term is committed, and only one change at a
   * time). The new configuration is in force here as soon as it is appended.
   */
  proposeConfigChange(change: ConfigChange): ProposeResult {
    const { id, term, log, options } = this.ctx;
    const reject = (reason: Extract<ProposeResult, { accepted: false }>['reason'], message: string): ProposeResult => ({
      accepted: false,
      reason,
      leader: id,
      message: `node ${id} (term ${term}): ${message}`,
    });
    if (this.transferee !== null) return reject('transfer-in-progress', `handing leadership to ${this.transferee}; retry shortly`);
    if (!this.committedInCurrentTerm()) {
      return reject('leader-not-ready', 'no entry of this term is committed yet; retry shortly');
    }
    if (this.ctx.configChangePending()) {
      return reject(
        'config-change-pending',
        `the previous configuration change (index ${log.configs.latestIndex()}) is not committed yet; retry shortly`,
      );
    }
    const current = this.ctx.config();
    const next = applyChange(current, change);
    if (typeof next === 'string') return reject('invalid-config-change', next);
    if (change.type === 'promote') {
      const progress = this.progress.get(change.id);
      const match = progress?.matchIndex ?? 0;
      const behind = log.lastIndex() - match;
      // A learner that holds nothing yet, or has not answered lately, would be a voter that cannot vote.
      const silent = progress === undefined || match === 0 || progress.ticksSinceHeard >= options.electionTicks;
      // A voter must hold a configuration: a node that knows none (an empty data dir) grants no votes, so a
      // learner promoted before it holds the entry that added it could be the vote an election cannot do without.
      const configIndex = log.configs.latestIndex();
      if (!silent && behind <= options.maxLearnerLag && match < configIndex) {
        return reject(
          'learner-behind',
          `learner ${change.id} does not hold the configuration that lists it yet (it holds up to ${match}, the configuration is at ${configIndex}); retry shortly`,
        );
      }
      if (silent || behind > options.maxLearnerLag) {
        return reject(
          'learner-behind',
          `learner ${change.id} is ${behind} entries behind (it holds up to ${match}, the leader's log ends at ${log.lastIndex()})` +
            `${silent && match > 0 ? ' and has not answered within an election timeout' : ''}; ` +
            `it can be promoted once it answers and is within ${options.maxLearnerLag}`,
        );
      }
    }
    if (change.type === 'remove' && current.voters.includes(change.id)) {
      const reachable = next.voters.filter(
        (voter) => voter === id || (this.progress.get(voter)?.ticksSinceHeard ?? Infinity) < options.electionTicks,
      );
      const needed = Math.floor(next.voters.length / 2) + 1;
      if (reachable.length < needed) {
        return reject(
          'quorum-at-risk',
          `removing ${change.id} leaves ${next.voters.length} voters of which only ${reachable.length} (${reachable.join(', ')}) answered within an election timeout; a quorum needs ${needed}`,
        );
      }
    }
    const entry: Entry = { index: log.lastIndex() + 1, term, kind: 'config', data: encodeConfig(next) };
    log.appendNew([entry]);
    this.syncProgress();
    this.appendBroadcastPending = true;
    return { accepted: true, index: entry.index, term };
  }

  /** Follows the configuration in force: progress for every member but this node, and nothing for others. */
  private syncProgress(): void {
    const { log, options } = this.ctx;
    const members = new Set(this.peers());
    for (const peer of members) {
      if (!this.progress.has(peer)) this.progress.set(peer, new Progress(peer, log.lastIndex() + 1, options.maxInflightMessages));
    }
    for (const peer of [...this.progress.keys()]) if (!members.has(peer)) this.progress.delete(peer);
    if (this.transferee !== null && !members.has(this.transferee)) this.transferee = null;
  }

  /** The voter best placed to take over (the highest match index), for a leader leaving the voters. */
  successor(): NodeId | null {
    const quorum = this.ctx.quorum();
    let best: Progress | null = null;
    for (const progress of this.progress.values()) {
      if (!quorum.includes(progress.id)) continue;
      if (best === null || progress.matchIndex > best.matchIndex) best = progress;
    }
    return best?.id ?? null;
  }

  /** Asks `to` to campaign at once (it must hold the whole log). */
  sendTimeoutNow(to: NodeId): void {
    if ((this.progress.get(to)?.matchIndex ?? 0) === this.ctx.log.lastIndex()) this.ctx.send({ type: 'TimeoutNow', to });
  }

  step(message: Message): void {
    switch (message.type) {
      case 'AppendResponse':
        this.handleAppendResponse(message);
        return;
      case 'HeartbeatResponse':
        this.handleHeartbeatResponse(message);
        return;
      case 'ReadIndexRequest':
        this.queueReads(message.requestIds.map((requestId) => ({ requestId, requester: message.from })));
        return;
      default:
        return;
    }
  }

  propose(data: Uint8Array): ProposeResult {
    const { id, term, log, options } = this.ctx;
    if (this.transferee !== null) {
      return {
        accepted: false,
        reason: 'transfer-in-progress',
        leader: id,
        message: `node ${id} is handing leadership to ${this.transferee} (term ${term}); retry shortly`,
      };
    }
    if (data.byteLength > options.maxProposalBytes) {
      return {
        accepted: false,
        reason: 'too-large',
        leader: id,
        message: `proposal of ${data.byteLength} bytes exceeds the limit of ${options.maxProposalBytes} bytes`,
      };
    }
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + data.byteLength > options.maxUncommittedBytes) {
      return {
        accepted: false,
        reason: 'backlog-full',
        leader: id,
        message:
          `node ${id} (term ${term}): ${this.uncommittedBytes} bytes of proposals await commit (limit ${options.maxUncommittedBytes}, ` +
          `commit index ${log.committed}, last index ${log.lastIndex()}); nothing was written, retry shortly`,
      };
    }
    const entry: Entry = { index: log.lastIndex() + 1, term, kind: 'command', data };
    log.appendNew([entry]);
    this.uncommittedBytes += data.byteLength;
    this.appendBroadcastPending = true;
    return { accepted: true, index: entry.index, term };
  }

  queueReads(requests: readonly ReadRequest[]): void {
    if (this.committedInCurrentTerm()) this.readsToStart.push(...requests);
    else this.readsAwaitingCommit.push(...requests);
  }

  transfer(to: NodeId): TransferResult {
    const { id, term, log } = this.ctx;
    if (to === id) {
      return { accepted: false, reason: 'already-leader', leader: id, message: `node ${to} already leads term ${term}` };
    }
    const progress = this.progress.get(to);
    if (progress === undefined || !this.ctx.quorum().includes(to)) {
      return {
        accepted: false,
        reason: 'unknown-node',
        leader: id,
        message: `node ${to} is not a voter of this cluster (${describeConfig(this.ctx.config())})`,
      };
    }
    if (this.transferee !== to) {
      this.transferee = to;
      this.transferElapsed = 0;
    }
    // Asked again for the same target: a TimeoutNow may have been lost, so send it again if the target is ready.
    if (progress.matchIndex === log.lastIndex()) this.ctx.send({ type: 'TimeoutNow', to });
    else this.sendAppend(to, true);
    return { accepted: true };
  }

  /** The caller persisted entries: the leader counts its own copy only once it is on disk. */
  onEntriesPersisted(): void {
    if (this.maybeCommit()) this.appendBroadcastPending = true;
  }

  hasPendingWork(): boolean {
    return this.appendBroadcastPending || this.readsToStart.length > 0;
  }

  /** Work batched per output: one append per follower and one heartbeat round for all new reads. */
  flush(): void {
    const { id, log, requiresQuorumForRead } = this.ctx;
    if (this.readsToStart.length > 0) {
      const requests = this.readsToStart;
      this.readsToStart = [];
      if (requiresQuorumForRead()) {
        const context = this.readRounds.start(log.committed, requests, id);
        for (const peer of this.peers()) this.sendHeartbeat(peer, context);
      } else {
        this.releaseConfirmedRead({ index: log.committed, requests });
      }
    }
    if (this.appendBroadcastPending) {
      this.appendBroadcastPending = false;
      for (const peer of this.peers()) this.sendAppend(peer, true, true);
    }
  }

  /** Leadership ends: every read still pending, for the node to fail. */
  abandonReads(): ReadRequest[] {
    return [...this.readRounds.clear(), ...this.readsAwaitingCommit, ...this.readsToStart];
  }

  private handleAppendResponse(response: AppendResponse): void {
    const progress = this.progress.get(response.from);
    if (progress === undefined) return;
    progress.recentlyActive = true;
    progress.ticksSinceHeard = 0;
    if (!response.success) {
      if (progress.rejected(response.rejectedIndex, probeIndexFromHint(this.ctx.log, response))) {
        this.sendAppend(response.from, true);
      }
      return;
    }
    const advanced = progress.acknowledge(response.matchIndex);
    // A probe answered at the index we already knew still proves the logs match there.
    const probeConfirmed = progress.state === 'probe' && response.matchIndex === progress.matchIndex;
    if (!advanced && !probeConfirmed) return;
    if (progress.state === 'snapshot') {
      // The follower (by the snapshot, or on its own) now holds what the log still has after it.
      if (progress.matchIndex + 1 < this.ctx.log.firstIndex()) {
        if (this.maybeCommit()) this.appendBroadcastPending = true;
        return;
      }
      progress.becomeReplicate();
    }
    if (progress.state === 'probe') progress.becomeReplicate();
    if (this.maybeCommit()) this.appendBroadcastPending = true;
    while (this.sendAppend(response.from, false)) {
      // Fill the pipeline up to the in-flight limit.
    }
    if (this.transferee === response.from && progress.matchIndex === this.ctx.log.lastIndex()) {
      this.ctx.send({ type: 'TimeoutNow', to: response.from });
    }
  }

  private handleHeartbeatResponse(response: HeartbeatResponse): void {
    const progress = this.progress.get(response.from);
    if (progress === undefined) return;
    progress.recentlyActive = true;
    progress.ticksSinceHeard = 0;
    progress.onHeartbeatResponse();
    // An empty append doubles as a probe: it also uncovers appends that were lost.
    if (progress.matchIndex < this.ctx.log.lastIndex()) this.sendAppend(response.from, true);
    if (response.readContext !== null) {
      const confirmed = this.readRounds.acknowledge(response.readContext, response.from, this.ctx.quorum());
      for (const read of confirmed) this.releaseConfirmedRead(read);
    }
  }

  /**
   * Sends the follower what it lacks: entries, or the latest snapshot when
   * the entries it needs are compacted. Returns false if nothing was sent.
   * `broadcast`: sent to every follower because entries were appended or the
   * commit index moved, rather than to learn where this follower stands.
   */
  private sendAppend(to: NodeId, sendIfEmpty: boolean, broadcast = false): boolean {
    const { log, options } = this.ctx;
    const progress = this.progress.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevLogIndex = progress.nextIndex - 1;
    const prevLogTerm = log.termAt(prevLogIndex);
    if (prevLogTerm === null || progress.nextIndex < log.firstIndex()) return this.sendSnapshot(to, progress);
    const lastIndex = log.lastIndex();
    const entries = progress.nextIndex <= lastIndex ? log.slice(progress.nextIndex, lastIndex + 1, options.maxMessageBytes) : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    // An empty append in a broadcast to a follower in replicate state with nothing in flight only moves its commit
    // index: its success could only repeat the match index already known. With appends in flight it is answered: under
    // reordering and loss those answers are what keeps a full pipeline from being taken for a stalled one (Progress.
    // onHeartbeatResponse); sparing them too left the simulator's seed 32131 without progress. (A transport may still
    // fold such an append into a later one with entries: that one is answered in its place, so answers keep coming.)
    const commitOnly = entries.length === 0 && broadcast && progress.state === 'replicate' && progress.matchIndex === prevLogIndex;
    this.ctx.send({
      type: 'AppendRequest',
      to,
      prevLogIndex,
      prevLogTerm,
      entries,
      leaderCommit: log.committed,
      ...(commitOnly ? COMMIT_ONLY : NONE),
      ...this.learnerMark(to),
    });
    progress.onAppendSent(prevLogIndex + entries.length, entries.length);
    return true;
  }

  private sendSnapshot(to: NodeId, progress: Progress): boolean {
    const { id, term, log } = this.ctx;
    // A snapshot this node installed as a follower and has not stored yet cannot be sent: wait for it.
    if (log.pendingSnapshot() !== null) return false;
    const snapshot = log.snapshot();
    if (snapshot === null) {
      throw new Error(
        `node ${id} (term ${term}): follower ${to} needs entries from ${progress.nextIndex}, ` +
          `but the log starts at ${log.firstIndex()} and no snapshot covers the compacted entries`,
      );
    }
    this.ctx.send({ type: 'InstallSnapshot', to, snapshot, ...this.learnerMark(to) });
    progress.becomeSnapshot(snapshot.index);
    return true;
  }

  /** The caller's transfer of a snapshot to `to` ended: delivered (`ok`) or failed. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const progress = this.progress.get(to);
    if (progress === undefined || progress.state !== 'snapshot') return;
    if (ok) {
      progress.becomeProbe();
      this.sendAppend(to, true);
    } else {
      // The next heartbeat answer sends the probe (handleHeartbeatResponse).
      progress.snapshotFailed();
    }
  }

  private sendHeartbeat(to: NodeId, readContext: number | null): void {
    const progress = this.progress.get(to);
    if (progress === undefined) return;
    // Never tell a follower to commit beyond what it is known to hold.
    const leaderCommit = Math.min(progress.matchIndex, this.ctx.log.committed);
    this.ctx.send({ type: 'Heartbeat', to, leaderCommit, readContext, ...this.learnerMark(to) });
  }

  /** Marks a message to a learner of the latest configuration, the only kind a node that knows none takes (RaftCore.step). */
  private learnerMark(to: NodeId): { readonly toLearner?: true } {
    return learnersOf(this.ctx.config()).includes(to) ? TO_LEARNER : NONE;
  }

  private maybeCommit(): boolean {
    const { log, id } = this.ctx;
    // This node's own copy counts once stored, and only while it is a voter (a leader being removed does not).
    const index = this.ctx.quorum().committedIndex((voter) => (voter === id ? log.stableIndex() : (this.progress.get(voter)?.matchIndex ?? 0)));
    if (index <= log.committed || !this.ctx.mayCommitByCounting(index)) return false;
    const changePending = this.ctx.configChangePending();
    for (let i = log.committed + 1; i <= index; i++) {
      const entry = log.entryAt(i);
      if (entry !== null && entry.term === this.ctx.term && entry.kind === 'command') this.uncommittedBytes -= entry.data.byteLength;
    }
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes);
    log.commitTo(index);
    // A configuration change just committed: members it removed get nothing more.
    if (changePending && !this.ctx.configChangePending()) this.syncProgress();
    if (this.readsAwaitingCommit.length > 0 && this.committedInCurrentTerm()) {
      this.readsToStart.push(...this.readsAwaitingCommit);
      this.readsAwaitingCommit = [];
    }
    return true;
  }

  private committedInCurrentTerm(): boolean {
    return this.ctx.log.termAt(this.ctx.log.committed) === this.ctx.term;
  }

  private releaseConfirmedRead(read: ConfirmedRead): void {
    const forwarded = new Map<NodeId, string[]>();
    for (const request of read.requests) {
      if (request.requester === this.ctx.id) {
        this.ctx.localReadConfirmed(request.requestId, read.index);
      } else {
        const ids = forwarded.get(request.requester) ?? [];
        ids.push(request.requestId);
        forwarded.set(request.requester, ids);
      }
    }
    for (const [requester, requestIds] of forwarded) {
      this.ctx.send({ type: 'ReadIndexResponse', to: requester, requestIds, index: read.index });
    }
  }

  /**
   * Every member but this node: voters and learners alike receive the log.
   * A member being removed keeps receiving it until the removal commits, so
   * that it learns of its removal.
   */
  private peers(): readonly NodeId[] {
    const { log, id } = this.ctx;
    const latest = this.ctx.config();
    const committed = log.configs.at(log.committed);
    // Asked on every output and heartbeat: rebuilt only when either configuration changes.
    if (this.peersCache?.latest === latest && this.peersCache.committed === committed) return this.peersCache.peers;
    const members = new Set([...latest.voters, ...learnersOf(latest), ...committed.voters, ...learnersOf(committed)]);
    members.delete(id);
    this.peersCache = { latest, committed, peers: [...members] };
    return this.peersCache.peers;
  }
}
