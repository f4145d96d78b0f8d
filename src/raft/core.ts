import { type RaftOptions, type ResolvedOptions, resolveOptions } from './config.js';
import { countsForCurrentElection, isInLeaderLease, mayVoteFor, type VoterState } from './election.js';
import { Leadership } from './leader.js';
import { RaftLog } from './log.js';
import { isMember, learnersOf } from './membership.js';
import type { OutgoingMessage } from './outgoing.js';
import { MajorityConfig } from './quorum.js';
import { acceptAppend } from './replication.js';
import type { RaftStorage } from './storage.js';
import type {
  AppendRequest,
  ClusterConfig,
  ConfigChange,
  Entry,
  HardState,
  Heartbeat,
  InstallSnapshot,
  Message,
  NodeId,
  ProposeResult,
  RaftBrief,
  RaftOutput,
  RaftStatus,
  ReadFailed,
  ReadIndexResult,
  ReadReady,
  Role,
  RoleChange,
  SnapshotMeta,
  TransferResult,
  VoteRequest,
  VoteResponse,
} from './types.js';

/**
 * One Raft participant as a pure state machine: no clock, no I/O, no hidden
 * randomness. Drive it with tick / step / propose / readIndex /
 * transferLeadership, then take its output, carry it out in the documented
 * order and report its write persisted (OutputRunner does both).
 *
 * This class keeps what every role shares (term, vote, log, timers, the
 * output) and the follower's and candidate's behaviour; a leader's state and
 * behaviour live in a Leadership that exists only while this node leads.
 */
export class RaftCore {
  readonly id: NodeId;
  protected readonly options: ResolvedOptions;
  protected readonly log: RaftLog;
  /** The majority config of the configuration in force, rebuilt when that configuration changes. */
  private quorumCache: { readonly config: ClusterConfig; readonly quorum: MajorityConfig } | null = null;

  protected term: number;
  protected votedFor: NodeId | null;
  protected role: Role = 'follower';
  protected leader: NodeId | null = null;
  private leadership: Leadership | null = null;

  private electionElapsed = 0;
  private randomizedElectionTimeout = 0;
  private votes = new Map<NodeId, boolean>();

  /**
   * Follower: reads sent to the leader and not yet answered, by their tagged
   * id, with the follower tick at which each was sent (in that order).
   */
  private forwardedReads = new Map<string, number>();
  /** Ticks counted while not leading: the clock that expires forwarded reads. */
  private followerTicks = 0;
  /**
   * Tags this life's forwarded reads, so that a leader's late answer to a read
   * of an earlier life (before a restart) is never taken for a new read.
   */
  private readonly lifeTag: string;
  private readsAwaitingApply: ReadReady[] = [];
  private readsFailed: ReadFailed[] = [];

  private messages: Message[] = [];
  private roleChange: RoleChange | null = null;
  /** The hard state the last completed write stored. */
  private persistedHardState: HardState;
  /** The hard state the last output handed out (its write may still be in progress). */
  private handedOutHardState: HardState;
  /** Outputs taken and not yet reported persisted, oldest first. */
  private writesInProgress: RaftOutput[] = [];

  constructor(options: RaftOptions, storage: RaftStorage) {
    this.options = resolveOptions(options);
    this.id = options.id;
    const { hardState } = storage.initialState();
    if (hardState.commit > storage.lastIndex()) {
      throw new Error(`node ${this.id}: stored commit index ${hardState.commit} is beyond the last stored entry ${storage.lastIndex()}`);
    }
    const snapshot = storage.snapshot();
    if (snapshot !== null && snapshot.index < storage.firstIndex() - 1) {
      throw new Error(
        `node ${this.id}: the latest snapshot (index ${snapshot.index}) does not cover the compacted log, which starts at ${storage.firstIndex()}`,
      );
    }
    // A commit index is stored only with other writes (hardStateToWrite), but a snapshot holds only committed entries.
    const committed = Math.max(hardState.commit, snapshot?.index ?? 0);
    const applied = options.appliedIndex ?? snapshot?.index ?? storage.firstIndex() - 1;
    if (applied > committed) {
      throw new Error(
        `node ${this.id}: applied index ${applied} is beyond the stored commit index ${hardState.commit} and the latest snapshot (${snapshot?.index ?? 'none'})`,
      );
    }
    if (applied < storage.firstIndex() - 1) {
      throw new Error(
        `node ${this.id}: applied index ${applied} is below the compacted log, which starts at ${storage.firstIndex()}: ` +
          'the state machine must be restored from the latest snapshot',
      );
    }
    this.log = new RaftLog(storage, this.id, committed, applied);
    this.term = hardState.term;
    this.votedFor = hardState.votedFor;
    this.persistedHardState = hardState;
    this.handedOutHardState = hardState;
    this.lifeTag = this.options.random.nextInt(0x7fffffff).toString(36);
    this.resetElectionTimer();
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    if (this.leadership !== null) {
      const stepDownReason = this.leadership.tick();
      if (stepDownReason !== null) this.becomeFollower(this.term, null, stepDownReason);
      else this.maybeLeaveLeadership();
      return;
    }
    this.electionElapsed++;
    this.followerTicks++;
    this.expireForwardedReads();
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.mayCampaign()) this.campaign(false);
  }

  /**
   * A leader's answer can be lost while this node keeps following it in the
   * same term (a dropped request or response): such a read would wait for
   * ever, and the set would only grow. After two election timeouts with no
   * answer (the leader answers within one heartbeat round), it fails.
   */
  private expireForwardedReads(): void {
    const limit = 2 * this.options.electionTicks;
    for (const [taggedId, sentAt] of this.forwardedReads) {
      // Sent in tick order: the first one still young ends the scan.
      if (this.followerTicks - sentAt < limit) return;
      this.forwardedReads.delete(taggedId);
      this.readsFailed.push({
        requestId: this.untag(taggedId),
        reason: `node ${this.id}: no answer from leader ${this.leader ?? 'none'} to a read in ${limit} ticks (term ${this.term}); the request or its answer was lost`,
      });
    }
  }

  step(message: Message): void {
    if (message.to !== this.id || message.from === this.id) return;
    // A node this configuration no longer lists (removed, and never told) must not disturb elections
    // (dissertation §4.2.3): its log lacks at least its removal, so its requests are dropped unheard, term
    // and all. But a candidate this node does not know as a voter may be one: a learner promoted by an
    // entry this node has not received yet. Its log holds that entry, so a request whose log is at least
    // as up to date as ours is heard (as etcd lets a learner vote); dropping it could leave the only
    // electable node without the votes it needs. A node that knows no configuration (joining) hears anyone.
    if (message.type === 'VoteResponse' && !this.knowsAsMember(message.from)) return;
    if (message.type === 'VoteRequest' && !this.knowsAsMember(message.from) && !this.isLogUpToDate(message.lastLogIndex, message.lastLogTerm)) return;
    // A leader adds every member as a learner first (membership.ts), so one that sends a node that knows no
    // configuration anything but a learner's messages counts an earlier process of this id as a voter: one
    // removed, then started again on an empty disk, by a leader that has not heard of the removal. Taking them
    // would let that leader count this empty log's acknowledgements and votes as the old process's.
    if (fromLeader(message) && message.toLearner !== true && this.knowsNoConfiguration()) return;
    if (message.term > this.term) {
      if (!this.acceptHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.answerStaleTerm(message);
      return;
    }
    switch (message.type) {
      case 'VoteRequest':
        this.handleVoteRequest(message);
        return;
      case 'VoteResponse':
        this.handleVoteResponse(message);
        return;
    }
    if (this.leadership !== null) {
      this.leadership.step(message);
      this.maybeLeaveLeadership();
    } else if (this.role === 'follower') {
      this.stepFollower(message);
    } else if (fromLeader(message)) {
      // A candidate learns that someone won this term.
      this.becomeFollower(this.term, message.from, `${message.from} leads term ${this.term}`);
      this.stepFollower(message);
    }
  }

  propose(data: Uint8Array): ProposeResult {
    return this.leadership?.propose(data) ?? this.notLeader();
  }

  private notLeader(): ProposeResult {
    return {
      accepted: false,
      reason: 'not-leader',
      leader: this.leader,
      message: `node ${this.id} is not the leader (term ${this.term}, leader ${this.leader ?? 'unknown'})`,
    };
  }

  /**
   * Asks for a linearizable read point. The answer comes in a later output:
   * `readsReady` once it is safe and the local state machine has applied up
   * to the read index, or `readsFailed` if this node loses leadership first.
   * A read forwarded to the leader whose answer is lost fails after two
   * election timeouts; when this node stops following (it campaigns, or the
   * term moves on), reads still waiting for an answer fail at once.
   * Request ids must be unique for the life of the caller's process.
   */
  readIndex(requestId: string): ReadIndexResult {
    if (this.leadership !== null) {
      this.leadership.queueReads([{ requestId, requester: this.id }]);
      return { accepted: true };
    }
    if (this.leader === null) {
      return { accepted: false, reason: 'no-leader', message: `node ${this.id} knows no leader in term ${this.term}` };
    }
    const taggedId = `${this.lifeTag}:${requestId}`;
    this.forwardedReads.set(taggedId, this.followerTicks);
    this.send({ type: 'ReadIndexRequest', to: this.leader, requestIds: [taggedId] });
    return { accepted: true };
  }

  /**
   * The caller's transfer of a snapshot (asked for by an InstallSnapshot
   * message) to `to` ended: delivered whole (`ok`), or failed. Until then the
   * leader sends that follower nothing else; after a failure it probes again
   * and sends a snapshot anew if the follower still needs one.
   */
  reportSnapshot(to: NodeId, ok: boolean): void {
    this.leadership?.reportSnapshot(to, ok);
  }

  /**
   * Proposes a membership change (leader only): add a learner, promote a
   * learner to voter, or remove a member. One change at a time, and only once
   * this leader has committed an entry of its term; the new configuration is
   * in force on each node as soon as it appends the entry. A leader that
   * removes itself hands leadership over and steps down once the change
   * commits.
   */
  proposeConfigChange(change: ConfigChange): ProposeResult {
    return this.leadership?.proposeConfigChange(change) ?? this.notLeader();
  }

  transferLeadership(to: NodeId): TransferResult {
    if (this.leadership === null) {
      return {
        accepted: false,
        reason: 'not-leader',
        leader: this.leader,
        message: `node ${this.id} is not the leader (term ${this.term}); ask ${this.leader ?? 'the leader'}`,
      };
    }
    return this.leadership.transfer(to);
  }

  // ---------------------------------------------------------------- output

  hasOutput(): boolean {
    return (
      this.messages.length > 0 ||
      (this.leadership?.hasPendingWork() ?? false) ||
      this.log.entriesToWrite().length > 0 ||
      this.log.snapshotToWrite() !== null ||
      this.log.applied < this.log.committed ||
      this.roleChange !== null ||
      this.readsFailed.length > 0 ||
      this.readsAwaitingApply.some((read) => read.index <= this.log.applied) ||
      !sameTermAndVote(this.currentHardState(), this.handedOutHardState)
    );
  }

  /**
   * The hard state an output writes, or null. A new commit index alone is not
   * written: it goes with the next write of entries, a snapshot, or a term or
   * vote. Raft needs no stored commit index (a restarted node learns it from
   * the leader), and writing one on its own cost a LevelDB write, and the
   * event loop a turn, each time a commit moved: on every node, for every
   * write, at low load. What a snapshot covers counts as committed at start.
   */
  private hardStateToWrite(hardState: HardState, withAWrite: boolean): HardState | null {
    if (sameHardState(hardState, this.handedOutHardState)) return null;
    return withAWrite || !sameTermAndVote(hardState, this.handedOutHardState) ? hardState : null;
  }

  /**
   * Hands out the next output. It may be taken while earlier outputs' writes
   * are in progress: each write holds only what no earlier one holds, and its
   * committed entries follow the earlier outputs' (they count as applied once
   * handed out, as the caller applies outputs in the order taken).
   */
  takeOutput(): RaftOutput {
    this.leadership?.flush();
    const hardState = this.currentHardState();
    const committed =
      this.log.applied < this.log.committed ? this.log.slice(this.log.applied + 1, this.log.committed + 1, this.options.maxApplyBytes) : [];
    const lastCommitted = committed[committed.length - 1];
    if (lastCommitted !== undefined) this.log.applied = lastCommitted.index;
    // Reads are served after this output's entries are applied (step 3 before step 4).
    const readsReady = this.readsAwaitingApply.filter((read) => read.index <= this.log.applied);
    if (readsReady.length > 0) {
      this.readsAwaitingApply = this.readsAwaitingApply.filter((read) => read.index > this.log.applied);
    }
    // Early messages report nothing being written, but carry this node's term: it must be durable already.
    const termAndVoteDurable = hardState.term === this.persistedHardState.term && hardState.votedFor === this.persistedHardState.votedFor;
    const early = termAndVoteDurable ? this.messages.filter(mayPrecedePersist) : [];
    const snapshot = this.log.snapshotToWrite();
    const entries = [...this.log.entriesToWrite()];
    const output: RaftOutput = {
      snapshot,
      hardState: this.hardStateToWrite(hardState, entries.length > 0 || snapshot !== null),
      entries,
      earlyMessages: early,
      messages: early.length === 0 ? this.messages : this.messages.filter((message) => !mayPrecedePersist(message)),
      committed,
      readsReady,
      readsFailed: this.readsFailed,
      roleChange: this.roleChange,
    };
    this.log.writeHandedOut();
    if (output.hardState !== null) this.handedOutHardState = output.hardState;
    this.messages = [];
    this.readsFailed = [];
    this.roleChange = null;
    this.writesInProgress.push(output);
    return output;
  }

  /**
   * The caller's write of `output` is durable (step 1 done). Writes complete
   * in the order their outputs were taken, so this is always the oldest
   * output not yet persisted; outputs with nothing to write are reported too.
   */
  persisted(output: RaftOutput): void {
    if (output !== this.writesInProgress[0]) {
      throw new Error(`node ${this.id}: persisted() reported an output out of order (${this.writesInProgress.length} outputs in progress)`);
    }
    this.writesInProgress.shift();
    if (output.hardState !== null) this.persistedHardState = output.hardState;
    if (output.snapshot !== null) this.log.snapshotStored(output.snapshot);
    const lastPersisted = output.entries[output.entries.length - 1];
    if (lastPersisted !== undefined) {
      this.log.stableTo(lastPersisted.index, lastPersisted.term);
      this.leadership?.onEntriesPersisted();
      this.maybeLeaveLeadership();
    }
  }

  /** Outputs taken whose writes are not yet reported persisted. */
  writesPending(): number {
    return this.writesInProgress.length;
  }

  // ---------------------------------------------------------------- inspection

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leader: this.leader,
      votedFor: this.votedFor,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      snapshotIndex: this.log.snapshot()?.index ?? 0,
      voters: this.voters,
      learners: learnersOf(this.currentConfig()),
      config: this.currentConfig(),
      configIndex: this.log.configs.latestIndex(),
      member: isMember(this.currentConfig(), this.id),
      progress: this.leadership?.followerProgress() ?? null,
      transferringTo: this.leadership?.transferringTo ?? null,
    };
  }

  brief(): RaftBrief {
    const config = this.currentConfig();
    return {
      role: this.role,
      term: this.term,
      leader: this.leader,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      config,
      configIndex: this.log.configs.latestIndex(),
      member: isMember(config, this.id),
    };
  }

  termAt(index: number): number | null {
    if (index > this.log.lastIndex()) return null;
    return this.log.termAt(index);
  }

  entryAt(index: number): Entry | null {
    return this.log.entryAt(index);
  }

  lastIndex(): number {
    return this.log.lastIndex();
  }

  /** The configuration in force once everything up to `index` is applied: what a snapshot taken there carries. */
  configAt(index: number): ClusterConfig {
    return this.log.configs.at(index);
  }

  /** The first index this node's log holds; everything before it is in the latest snapshot. */
  firstIndex(): number {
    return this.log.firstIndex();
  }

  // ---------------------------------------------------------------- safety rules (tests may override to plant bugs)

  /** §5.4.1: vote only for a candidate whose log is at least as up-to-date as ours. */
  protected isLogUpToDate(lastIndex: number, lastTerm: number): boolean {
    return this.log.isUpToDate(lastIndex, lastTerm);
  }

  /** §5.4.2 (Figure 8): only an entry of the leader's own term is committed by counting replicas. */
  protected mayCommitByCounting(index: number): boolean {
    return this.log.termAt(index) === this.term;
  }

  /**
   * §7: a snapshot from the leader that this log does not already hold
   * replaces the whole log (no entry after it can be trusted: the entry at
   * the snapshot's index differs or is missing).
   */
  protected restoreFromSnapshot(snapshot: SnapshotMeta): void {
    this.log.restore(snapshot);
  }

  /** §6.4: a leader confirms it still leads (a heartbeat round) before it serves a read. */
  protected requiresQuorumForRead(): boolean {
    return !(this.voters.length === 1 && this.voters[0] === this.id);
  }

  /** §4.1: a configuration is in force on a node as soon as it is appended, committed or not. */
  protected currentConfig(): ClusterConfig {
    return this.log.configs.latest();
  }

  /** §4.1 (corrected): one configuration change at a time: none while the latest is uncommitted. */
  protected configChangePending(): boolean {
    return this.log.configs.latestIndex() > this.log.committed;
  }

  /** The voters whose majority commits entries: learners never count. */
  protected commitQuorum(): MajorityConfig {
    return this.quorum();
  }

  protected get voters(): readonly NodeId[] {
    return this.currentConfig().voters;
  }

  /** The majority config of the configuration in force (elections, check-quorum, reads). */
  protected quorum(): MajorityConfig {
    const config = this.currentConfig();
    if (this.quorumCache?.config !== config) this.quorumCache = { config, quorum: new MajorityConfig(config.voters) };
    return this.quorumCache.quorum;
  }

  // ---------------------------------------------------------------- terms

  /** Returns false when the message must be dropped. */
  private acceptHigherTerm(message: Message): boolean {
    if (message.type === 'VoteRequest') {
      if (!message.leadershipTransfer && isInLeaderLease(this.voterState(), this.electionElapsed, this.options)) return false;
      if (message.preVote) return true;
    }
    // A granted pre-vote carries the term we would campaign in; we move to it only by campaigning.
    if (message.type === 'VoteResponse' && message.preVote && message.granted) return true;
    const leader = fromLeader(message) ? message.from : null;
    this.becomeFollower(message.term, leader, `saw term ${message.term} in ${message.type} from ${message.from}`);
    return true;
  }

  private answerStaleTerm(message: Message): void {
    switch (message.type) {
      case 'AppendRequest':
      case 'Heartbeat':
      case 'InstallSnapshot':
        // A deposed leader learns our term from the reply and steps down.
        this.send({ type: 'HeartbeatResponse', to: message.from, readContext: null });
        return;
      case 'VoteRequest':
        this.send({ type: 'VoteResponse', to: message.from, preVote: message.preVote, granted: false });
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- elections

  private campaign(leadershipTransfer: boolean): void {
    if (this.options.preVote && !leadershipTransfer) this.becomePreCandidate();
    else this.becomeCandidate(leadershipTransfer);
  }

  private becomePreCandidate(): void {
    this.failForwardedReads(`node ${this.id} lost contact with its leader and is campaigning`);
    this.role = 'pre-candidate';
    this.leader = null;
    this.resetElectionTimer();
    this.votes = new Map([[this.id, true]]);
    this.noteRoleChange(`election timeout: asking for pre-votes for term ${this.term + 1}`);
    if (this.quorum().voteResult(this.votes) === 'won') {
      this.becomeCandidate(false);
      return;
    }
    this.requestVotes(true, false);
  }

  private becomeCandidate(leadershipTransfer: boolean): void {
    this.term += 1;
    this.failForwardedReads(`node ${this.id} is campaigning for term ${this.term}`);
    this.votedFor = this.id;
    this.role = 'candidate';
    this.leader = null;
    this.resetElectionTimer();
    this.votes = new Map([[this.id, true]]);
    this.noteRoleChange(leadershipTransfer ? 'leadership handed over: campaigning' : 'campaigning');
    if (this.quorum().voteResult(this.votes) === 'won') {
      this.becomeLeader();
      return;
    }
    this.requestVotes(false, leadershipTransfer);
  }

  private requestVotes(preVote: boolean, leadershipTransfer: boolean): void {
    for (const peer of this.voters) {
      if (peer === this.id) continue;
      this.send({
        type: 'VoteRequest',
        to: peer,
        term: preVote ? this.term + 1 : this.term,
        preVote,
        lastLogIndex: this.log.lastIndex(),
        lastLogTerm: this.log.lastTerm(),
        leadershipTransfer,
      });
    }
  }

  private handleVoteRequest(request: VoteRequest): void {
    // A node that knows no configuration (an empty data dir waiting to be added) has lost or never had the
    // log its vote vouches for: the candidate may be a member that missed later configurations and asks
    // every id its stale one lists, including one removed since and now back with fresh data. Counting that
    // vote let such a node win in a soak and roll back committed entries. Once added, the node learns the
    // configuration from its leader's log or snapshot, which also makes its log at least that new.
    const granted =
      !this.knowsNoConfiguration() && mayVoteFor(this.voterState(), request) && this.isLogUpToDate(request.lastLogIndex, request.lastLogTerm);
    if (granted && !request.preVote) {
      this.votedFor = request.from;
      this.electionElapsed = 0;
    }
    this.send({
      type: 'VoteResponse',
      to: request.from,
      term: granted ? request.term : this.term,
      preVote: request.preVote,
      granted,
    });
  }

  private handleVoteResponse(response: VoteResponse): void {
    if (!countsForCurrentElection(this.role, this.term, response) || this.votes.has(response.from)) return;
    this.votes.set(response.from, response.granted);
    const tally = this.quorum().voteResult(this.votes);
    if (tally === 'won') {
      if (this.role === 'pre-candidate') this.becomeCandidate(false);
      else this.becomeLeader();
    } else if (tally === 'lost') {
      this.becomeFollower(this.term, null, `lost the ${response.preVote ? 'pre-vote' : 'election'} for term ${response.term}`);
    }
  }

  private becomeLeader(): void {
    const granted = [...this.votes.values()].filter(Boolean).length;
    this.role = 'leader';
    this.leader = this.id;
    this.resetElectionTimer();
    this.leadership = new Leadership({
      id: this.id,
      term: this.term,
      config: () => this.currentConfig(),
      quorum: () => this.commitQuorum(),
      configChangePending: () => this.configChangePending(),
      log: this.log,
      options: this.options,
      send: (message) => this.send(message),
      localReadConfirmed: (requestId, index) => this.readsAwaitingApply.push({ requestId, index }),
      mayCommitByCounting: (index) => this.mayCommitByCounting(index),
      requiresQuorumForRead: () => this.requiresQuorumForRead(),
    });
    this.noteRoleChange(`won the election with ${granted} of ${this.voters.length} votes`);
  }

  /**
   * A leader that the configuration in force no longer lists as a voter
   * leads only until that configuration commits (it replicates it, without
   * counting itself); then it hands over to the most caught-up voter and
   * steps down (dissertation §4.2.2).
   */
  private maybeLeaveLeadership(): void {
    const leadership = this.leadership;
    if (leadership === null || this.voters.includes(this.id) || this.configChangePending()) return;
    const successor = leadership.successor();
    if (successor !== null) leadership.sendTimeoutNow(successor);
    this.becomeFollower(
      this.term,
      null,
      `removed from the voters at index ${this.log.configs.latestIndex()}${successor === null ? '' : `: handing over to ${successor}`}`,
    );
  }

  private becomeFollower(term: number, leader: NodeId | null, reason: string): void {
    if (term > this.term) {
      this.term = term;
      this.votedFor = null;
      this.failForwardedReads(`term changed to ${term} before the leader answered the read`);
    }
    if (this.leadership !== null) {
      const failure = `node ${this.id} lost leadership: ${reason}`;
      for (const request of this.leadership.abandonReads()) {
        // A follower's forwarded read is not ours to answer; its own deadline or role change ends it.
        if (request.requester === this.id) this.readsFailed.push({ requestId: request.requestId, reason: failure });
      }
      this.leadership = null;
    }
    this.role = 'follower';
    this.leader = leader;
    this.resetElectionTimer();
    this.votes.clear();
    this.noteRoleChange(reason);
  }

  private resetElectionTimer(): void {
    this.electionElapsed = 0;
    this.randomizedElectionTimeout = this.options.electionTicks + this.options.random.nextInt(this.options.electionTicks);
  }

  // ---------------------------------------------------------------- follower

  private stepFollower(message: Message): void {
    switch (message.type) {
      case 'AppendRequest':
        this.heardFromLeader(message.from);
        this.handleAppend(message);
        return;
      case 'Heartbeat':
        this.heardFromLeader(message.from);
        this.handleHeartbeat(message);
        return;
      case 'InstallSnapshot':
        this.heardFromLeader(message.from);
        this.handleSnapshot(message);
        return;
      case 'TimeoutNow':
        if (this.isVoter()) this.campaign(true);
        return;
      case 'ReadIndexResponse':
        for (const taggedId of message.requestIds) {
          // Duplicated answers, and answers to reads of an earlier life of this node, are not ours to release.
          if (this.forwardedReads.delete(taggedId)) {
            this.readsAwaitingApply.push({ requestId: this.untag(taggedId), index: message.index });
          }
        }
        return;
      default:
        return;
    }
  }

  private heardFromLeader(leader: NodeId): void {
    this.electionElapsed = 0;
    if (this.leader !== leader) {
      this.leader = leader;
      this.noteRoleChange(`following ${leader}`);
    }
  }

  private handleAppend(request: AppendRequest): void {
    const reply = acceptAppend(this.log, request);
    if (reply.success && request.commitOnly === true) return;
    this.send({ type: 'AppendResponse', to: request.from, ...reply });
  }

  private handleSnapshot(message: InstallSnapshot): void {
    const { snapshot } = message;
    let matchIndex: number;
    if (snapshot.index <= this.log.committed) {
      // Already as far (a duplicate, or entries arrived meanwhile): what we committed matches any leader's log.
      matchIndex = this.log.committed;
    } else if (this.log.matchTerm(snapshot.index, snapshot.term)) {
      // The log holds the snapshot's last entry: it and everything before it are committed; keep what follows.
      this.log.commitTo(snapshot.index);
      matchIndex = snapshot.index;
    } else {
      this.restoreFromSnapshot(snapshot);
      matchIndex = snapshot.index;
    }
    this.send({ type: 'AppendResponse', to: message.from, success: true, matchIndex, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 });
  }

  private handleHeartbeat(heartbeat: Heartbeat): void {
    // A leader tells a follower to commit only what it acknowledged, so a commit index past this log's end
    // means a lost log, and commitTo stops the node. Except on a node that knows no configuration (an empty
    // data dir waiting to be added): it has acknowledged nothing, so the heartbeat was meant for an earlier
    // process of this id (removed, then started again on an empty disk) by a leader that has not heard of the
    // removal. It gets no answer: the leader would count it as that process's, and a stale leader cut off
    // with this node would confirm its reads (a new learner's leader sends it commit 0 until it acknowledges).
    if (this.knowsNoConfiguration() && heartbeat.leaderCommit > this.log.lastIndex()) return;
    this.log.commitTo(heartbeat.leaderCommit);
    this.send({ type: 'HeartbeatResponse', to: heartbeat.from, readContext: heartbeat.readContext });
  }

  /**
   * Once this node stops following (it campaigns, or the term moves on), the
   * leader's answers are dropped: the reads waiting for them fail now rather
   * than at the caller's deadline.
   */
  private failForwardedReads(reason: string): void {
    for (const taggedId of this.forwardedReads.keys()) this.readsFailed.push({ requestId: this.untag(taggedId), reason });
    this.forwardedReads.clear();
  }

  private untag(taggedId: string): string {
    return taggedId.slice(this.lifeTag.length + 1);
  }

  // ---------------------------------------------------------------- helpers

  private voterState(): VoterState {
    return { term: this.term, votedFor: this.votedFor, leader: this.leader };
  }

  /** An empty data dir waiting to be added: no configuration in its log or snapshot yet. */
  private knowsNoConfiguration(): boolean {
    const config = this.currentConfig();
    return config.voters.length === 0 && learnersOf(config).length === 0;
  }

  private knowsAsMember(id: NodeId): boolean {
    return this.knowsNoConfiguration() || isMember(this.currentConfig(), id);
  }

  /**
   * A voter campaigns; so does a voter whose removal is appended but not yet
   * known to be committed. Its log may be the only one holding the removal
   * (it led when it proposed it), and then no other candidate gets its vote
   * (that log is more up to date): if it did not campaign, the cluster could
   * stay without a leader. Elected, it counts votes and commits with the new
   * configuration, without itself, and hands over once the removal commits,
   * as a removed leader does (dissertation §4.2.2). A removal that never
   * commits is overwritten, and the node is a voter again.
   */
  private mayCampaign(): boolean {
    if (this.isVoter()) return true;
    const committed = this.log.committed;
    return this.log.configs.latestIndex() > committed && this.configAt(committed).voters.includes(this.id);
  }

  private isVoter(): boolean {
    return this.voters.includes(this.id);
  }

  private send(message: OutgoingMessage): void {
    this.messages.push({ from: this.id, term: this.term, ...message } as Message);
  }

  private noteRoleChange(reason: string): void {
    this.roleChange = { role: this.role, term: this.term, leader: this.leader, reason };
  }

  private currentHardState(): HardState {
    return { term: this.term, votedFor: this.votedFor, commit: this.log.committed };
  }
}

/** Messages only a leader sends: a node that gets one of the current term knows who leads. */
function fromLeader(message: Message): message is AppendRequest | Heartbeat | InstallSnapshot {
  return message.type === 'AppendRequest' || message.type === 'Heartbeat' || message.type === 'InstallSnapshot';
}

/** A leader's messages that report nothing about what its own disk holds. */
function mayPrecedePersist(message: Message): boolean {
  return message.type === 'AppendRequest' || message.type === 'Heartbeat' || message.type === 'TimeoutNow';
}

function sameHardState(a: HardState, b: HardState): boolean {
  return sameTermAndVote(a, b) && a.commit === b.commit;
}

function sameTermAndVote(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor;
}
