import { resolveOptions, type RaftOptions, type ResolvedOptions } from './config.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { quorumMatchIndex, quorumSize, tallyVotes } from './quorum.js';
import { ReadIndexTracker, type ConfirmedRead, type ReadRequest } from './read-index.js';
import type { RaftStorage } from './storage.js';
import type {
  AppendRequest,
  AppendResponse,
  Entry,
  HardState,
  Heartbeat,
  HeartbeatResponse,
  Message,
  NodeId,
  ProposeResult,
  RaftOutput,
  RaftStatus,
  ReadFailed,
  ReadIndexResult,
  ReadReady,
  Role,
  RoleChange,
  TransferResult,
  VoteRequest,
  VoteResponse,
} from './types.js';

type Outgoing<M extends Message> = M extends Message ? Omit<M, 'from' | 'term'> & { term?: number } : never;

const EMPTY = new Uint8Array(0);

/**
 * One Raft participant as a pure state machine: no clock, no I/O, no hidden
 * randomness. Drive it with tick / step / propose / readIndex /
 * transferLeadership, then take its output, carry it out in the documented
 * order and acknowledge it.
 */
export class RaftCore {
  readonly id: NodeId;
  protected readonly options: ResolvedOptions;
  protected readonly log: RaftLog;
  protected readonly voters: readonly NodeId[];

  protected term: number;
  protected votedFor: NodeId | null;
  protected role: Role = 'follower';
  protected leader: NodeId | null = null;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private transferee: NodeId | null = null;
  /** Ticks since the transfer started; it is abandoned after an election timeout. Kept apart from the CheckQuorum window. */
  private transferElapsed = 0;
  /**
   * Tags this life's forwarded reads, so that a leader's late answer to a read
   * of an earlier life (before a restart) is never taken for a new read.
   */
  private readonly lifeTag: string;

  private readRounds = new ReadIndexTracker();
  /** Leader: reads asked before an entry of this term committed (dissertation §6.4, step 1). */
  private readsAwaitingCommit: ReadRequest[] = [];
  /** Leader: reads asked since the last output; one heartbeat round confirms them all. */
  private readsToStart: ReadRequest[] = [];
  /** Follower: reads sent to the leader in this term, released only once and only if still waited for. */
  private forwardedReads = new Set<string>();
  private readsAwaitingApply: ReadReady[] = [];
  private readsFailed: ReadFailed[] = [];

  private messages: Message[] = [];
  private appendBroadcastPending = false;
  private roleChange: RoleChange | null = null;
  private persistedHardState: HardState;
  private outstanding: RaftOutput | null = null;

  constructor(options: RaftOptions, storage: RaftStorage) {
    this.options = resolveOptions(options);
    this.id = options.id;
    const { hardState, config } = storage.initialState();
    if (config.voters.length === 0) {
      throw new Error(`node ${this.id}: the cluster configuration lists no voters`);
    }
    if (hardState.commit > storage.lastIndex()) {
      throw new Error(
        `node ${this.id}: stored commit index ${hardState.commit} is beyond the last stored entry ${storage.lastIndex()}`,
      );
    }
    const applied = options.appliedIndex ?? storage.firstIndex() - 1;
    if (applied > hardState.commit) {
      throw new Error(
        `node ${this.id}: applied index ${applied} is beyond the stored commit index ${hardState.commit}`,
      );
    }
    this.voters = [...config.voters];
    this.log = new RaftLog(storage, this.id, hardState.commit, applied);
    this.term = hardState.term;
    this.votedFor = hardState.votedFor;
    this.persistedHardState = hardState;
    this.lifeTag = this.options.random.nextInt(0x7fffffff).toString(36);
    this.resetTimers();
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    if (this.role === 'leader') {
      this.tickLeader();
    } else {
      this.electionElapsed++;
      if (this.electionElapsed >= this.randomizedElectionTimeout && this.isVoter()) {
        this.campaign(false);
      }
    }
  }

  step(message: Message): void {
    if (message.to !== this.id || message.from === this.id || !this.voters.includes(message.from)) return;
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
    switch (this.role) {
      case 'leader':
        this.stepLeader(message);
        return;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(message);
        return;
      case 'follower':
        this.stepFollower(message);
        return;
    }
  }

  propose(data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') {
      return {
        accepted: false,
        reason: 'not-leader',
        leader: this.leader,
        message: `node ${this.id} is not the leader (term ${this.term}, leader ${this.leader ?? 'unknown'})`,
      };
    }
    if (this.transferee !== null) {
      return {
        accepted: false,
        reason: 'transfer-in-progress',
        leader: this.id,
        message: `node ${this.id} is handing leadership to ${this.transferee} (term ${this.term}); retry shortly`,
      };
    }
    if (data.byteLength > this.options.maxProposalBytes) {
      return {
        accepted: false,
        reason: 'too-large',
        leader: this.id,
        message: `proposal of ${data.byteLength} bytes exceeds the limit of ${this.options.maxProposalBytes} bytes`,
      };
    }
    const entry: Entry = { index: this.log.lastIndex() + 1, term: this.term, kind: 'command', data };
    this.log.appendNew([entry]);
    this.appendBroadcastPending = true;
    return { accepted: true, index: entry.index, term: entry.term };
  }

  /**
   * Asks for a linearizable read point. The answer comes in a later output:
   * `readsReady` once it is safe and the local state machine has applied up
   * to the read index, or `readsFailed` if this node loses leadership first.
   * A read forwarded to the leader whose answer is lost never completes: the
   * caller's deadline covers that; when the term changes, reads still
   * waiting for an answer from the old leader fail. Request ids must be unique
   * for the life of the caller's process and never reused after a restart.
   */
  readIndex(requestId: string): ReadIndexResult {
    if (this.role === 'leader') {
      this.queueLeaderReads([{ requestId, requester: this.id }]);
      return { accepted: true };
    }
    if (this.leader === null) {
      return {
        accepted: false,
        reason: 'no-leader',
        message: `node ${this.id} knows no leader in term ${this.term}`,
      };
    }
    const wireId = `${this.lifeTag}:${requestId}`;
    this.forwardedReads.add(wireId);
    this.send({ type: 'ReadIndexRequest', to: this.leader, requestIds: [wireId] });
    return { accepted: true };
  }

  transferLeadership(to: NodeId): TransferResult {
    if (this.role !== 'leader') {
      return {
        accepted: false,
        reason: 'not-leader',
        leader: this.leader,
        message: `node ${this.id} is not the leader (term ${this.term}); ask ${this.leader ?? 'the leader'}`,
      };
    }
    if (to === this.id) {
      return { accepted: false, reason: 'already-leader', leader: this.id, message: `node ${to} already leads term ${this.term}` };
    }
    const progress = this.progress.get(to);
    if (progress === undefined) {
      return {
        accepted: false,
        reason: 'unknown-node',
        leader: this.id,
        message: `node ${to} is not a voter of this cluster (voters: ${this.voters.join(', ')})`,
      };
    }
    if (this.transferee !== to) {
      this.transferee = to;
      this.transferElapsed = 0;
    }
    // Asked again for the same target: a TimeoutNow may have been lost, so send it again if the target is ready.
    if (progress.matchIndex === this.log.lastIndex()) this.send({ type: 'TimeoutNow', to });
    else this.sendAppend(to, true);
    return { accepted: true };
  }

  // ---------------------------------------------------------------- output

  hasOutput(): boolean {
    if (this.outstanding !== null) return false;
    return (
      this.messages.length > 0 ||
      this.appendBroadcastPending ||
      this.readsToStart.length > 0 ||
      this.log.unstableEntries().length > 0 ||
      this.log.applied < this.log.committed ||
      this.roleChange !== null ||
      this.readsFailed.length > 0 ||
      this.readsAwaitingApply.some((read) => read.index <= this.log.applied) ||
      !sameHardState(this.currentHardState(), this.persistedHardState)
    );
  }

  takeOutput(): RaftOutput {
    if (this.outstanding !== null) {
      throw new Error(`node ${this.id}: takeOutput called before the previous output was acknowledged`);
    }
    this.flushLeaderWork();
    const hardState = this.currentHardState();
    const committed =
      this.log.applied < this.log.committed
        ? this.log.slice(this.log.applied + 1, this.log.committed + 1, this.options.maxApplyBytes)
        : [];
    const appliedAfter = committed.length > 0 ? (committed[committed.length - 1] as Entry).index : this.log.applied;
    const readsReady = this.readsAwaitingApply.filter((read) => read.index <= appliedAfter);
    if (readsReady.length > 0) {
      this.readsAwaitingApply = this.readsAwaitingApply.filter((read) => read.index > appliedAfter);
    }
    const output: RaftOutput = {
      hardState: sameHardState(hardState, this.persistedHardState) ? null : hardState,
      entries: [...this.log.unstableEntries()],
      messages: this.messages,
      committed,
      readsReady,
      readsFailed: this.readsFailed,
      roleChange: this.roleChange,
    };
    this.messages = [];
    this.readsFailed = [];
    this.roleChange = null;
    this.outstanding = output;
    return output;
  }

  acknowledge(output: RaftOutput): void {
    if (output !== this.outstanding) {
      throw new Error(`node ${this.id}: acknowledge called with an output that is not the outstanding one`);
    }
    this.outstanding = null;
    if (output.hardState !== null) this.persistedHardState = output.hardState;
    const lastPersisted = output.entries[output.entries.length - 1];
    if (lastPersisted !== undefined) this.log.stableTo(lastPersisted.index, lastPersisted.term);
    const lastApplied = output.committed[output.committed.length - 1];
    if (lastApplied !== undefined) this.log.applied = lastApplied.index;
    // The leader counts its own copy only once it is on disk.
    if (this.role === 'leader' && lastPersisted !== undefined && this.maybeCommit()) {
      this.appendBroadcastPending = true;
    }
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
      voters: this.voters,
      progress: this.role === 'leader' ? [...this.progress.values()].map((p) => p.snapshot()) : null,
      transferringTo: this.transferee,
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

  // ---------------------------------------------------------------- safety rules (tests may override to plant bugs)

  /** §5.4.1: vote only for a candidate whose log is at least as up-to-date as ours. */
  protected isLogUpToDate(lastIndex: number, lastTerm: number): boolean {
    return this.log.isUpToDate(lastIndex, lastTerm);
  }

  /** §5.4.2 (Figure 8): only an entry of the leader's own term is committed by counting replicas. */
  protected mayCommitByCounting(index: number): boolean {
    return this.log.termAt(index) === this.term;
  }

  /** §6.4: a leader confirms it still leads (a heartbeat round) before it serves a read. */
  protected requiresQuorumForRead(): boolean {
    return this.voters.length > 1;
  }

  // ---------------------------------------------------------------- terms

  /** Returns false when the message must be dropped. */
  private acceptHigherTerm(message: Message): boolean {
    if (message.type === 'VoteRequest') {
      // Leader lease (with CheckQuorum): while we hear from a live leader, a
      // vote request is from a node that could only disrupt the cluster.
      const inLease =
        this.options.checkQuorum && this.leader !== null && this.electionElapsed < this.options.electionTicks;
      if (inLease && !message.leadershipTransfer) return false;
      if (message.preVote) return true;
    }
    // A granted pre-vote carries the term we would campaign in; we move to it only by campaigning.
    if (message.type === 'VoteResponse' && message.preVote && message.granted) return true;
    const leader = message.type === 'AppendRequest' || message.type === 'Heartbeat' ? message.from : null;
    this.becomeFollower(message.term, leader, `saw term ${message.term} in ${message.type} from ${message.from}`);
    return true;
  }

  private answerStaleTerm(message: Message): void {
    switch (message.type) {
      case 'AppendRequest':
      case 'Heartbeat':
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

  // ---------------------------------------------------------------- election

  private campaign(leadershipTransfer: boolean): void {
    if (this.role === 'leader') return;
    if (this.options.preVote && !leadershipTransfer) this.becomePreCandidate();
    else this.becomeCandidate(leadershipTransfer);
  }

  private becomePreCandidate(): void {
    this.failForwardedReads(`node ${this.id} lost contact with its leader and is campaigning`);
    this.role = 'pre-candidate';
    this.leader = null;
    this.resetTimers();
    this.votes = new Map([[this.id, true]]);
    this.noteRoleChange(`election timeout: asking for pre-votes for term ${this.term + 1}`);
    if (tallyVotes(this.voters, this.votes) === 'won') {
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
    this.resetTimers();
    this.votes = new Map([[this.id, true]]);
    this.noteRoleChange(leadershipTransfer ? 'leadership handed over: campaigning' : 'campaigning');
    if (tallyVotes(this.voters, this.votes) === 'won') {
      this.becomeLeader();
      return;
    }
    this.requestVotes(false, leadershipTransfer);
  }

  private requestVotes(preVote: boolean, leadershipTransfer: boolean): void {
    for (const peer of this.peers()) {
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
    const canVote =
      this.votedFor === request.from ||
      (this.votedFor === null && this.leader === null) ||
      (request.preVote && request.term > this.term);
    const granted = canVote && this.isLogUpToDate(request.lastLogIndex, request.lastLogTerm);
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
    const expected =
      (this.role === 'pre-candidate' && response.preVote && (response.term === this.term + 1 || !response.granted)) ||
      (this.role === 'candidate' && !response.preVote);
    if (!expected || this.votes.has(response.from)) return;
    this.votes.set(response.from, response.granted);
    const tally = tallyVotes(this.voters, this.votes);
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
    this.transferee = null;
    this.resetTimers();
    this.progress = new Map(
      this.peers().map((peer) => [peer, new Progress(peer, this.log.lastIndex() + 1, this.options.maxInflightMessages)]),
    );
    this.readsAwaitingCommit = [];
    this.readsToStart = [];
    // A no-op of our own term lets earlier entries commit (§5.4.2) and is needed before serving reads (§6.4).
    this.log.appendNew([{ index: this.log.lastIndex() + 1, term: this.term, kind: 'noop', data: EMPTY }]);
    this.appendBroadcastPending = true;
    this.noteRoleChange(`won the election with ${granted} of ${this.voters.length} votes`);
  }

  private becomeFollower(term: number, leader: NodeId | null, reason: string): void {
    if (term > this.term) {
      this.term = term;
      this.votedFor = null;
      this.failForwardedReads(`term changed to ${term} before the leader answered the read`);
    }
    const wasLeader = this.role === 'leader';
    this.role = 'follower';
    this.leader = leader;
    this.resetTimers();
    this.votes.clear();
    this.transferee = null;
    this.appendBroadcastPending = false;
    if (wasLeader) this.failLeaderReads(`node ${this.id} lost leadership: ${reason}`);
    this.noteRoleChange(reason);
  }

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.options.electionTicks + this.options.random.nextInt(this.options.electionTicks);
  }

  // ---------------------------------------------------------------- follower & candidate

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
      case 'TimeoutNow':
        if (this.isVoter()) this.campaign(true);
        return;
      case 'ReadIndexResponse':
        for (const wireId of message.requestIds) {
          // Duplicated answers, and answers to requests of an earlier life of this node, are not ours to release.
          if (this.forwardedReads.delete(wireId)) {
            this.readsAwaitingApply.push({ requestId: wireId.slice(this.lifeTag.length + 1), index: message.index });
          }
        }
        return;
      default:
        return;
    }
  }

  private stepCandidate(message: Message): void {
    if (message.type === 'AppendRequest' || message.type === 'Heartbeat') {
      this.becomeFollower(this.term, message.from, `${message.from} leads term ${this.term}`);
      this.stepFollower(message);
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
    if (request.prevLogIndex < this.log.committed) {
      this.replyAppend(request.from, { success: true, matchIndex: this.log.committed });
      return;
    }
    if (!this.log.matchTerm(request.prevLogIndex, request.prevLogTerm)) {
      const hintIndex = this.log.findConflictByTerm(
        Math.min(request.prevLogIndex, this.log.lastIndex()),
        request.prevLogTerm,
      );
      this.replyAppend(request.from, {
        success: false,
        rejectedIndex: request.prevLogIndex,
        hintIndex,
        hintTerm: this.log.termAt(hintIndex) ?? 0,
      });
      return;
    }
    this.log.appendFromLeader(request.entries);
    const lastNew = request.prevLogIndex + request.entries.length;
    this.log.commitTo(Math.min(request.leaderCommit, lastNew));
    this.replyAppend(request.from, { success: true, matchIndex: lastNew });
  }

  private replyAppend(
    to: NodeId,
    fields: Partial<Pick<AppendResponse, 'success' | 'matchIndex' | 'rejectedIndex' | 'hintIndex' | 'hintTerm'>>,
  ): void {
    this.send({
      type: 'AppendResponse',
      to,
      success: false,
      matchIndex: 0,
      rejectedIndex: 0,
      hintIndex: 0,
      hintTerm: 0,
      ...fields,
    });
  }

  private handleHeartbeat(heartbeat: Heartbeat): void {
    this.log.commitTo(heartbeat.leaderCommit);
    this.send({ type: 'HeartbeatResponse', to: heartbeat.from, readContext: heartbeat.readContext });
  }

  // ---------------------------------------------------------------- leader

  private tickLeader(): void {
    this.electionElapsed++;
    this.heartbeatElapsed++;
    if (this.transferee !== null && ++this.transferElapsed >= this.options.electionTicks) {
      this.transferee = null;
    }
    if (this.electionElapsed >= this.options.electionTicks) {
      this.electionElapsed = 0;
      if (this.options.checkQuorum) {
        let active = 1;
        for (const progress of this.progress.values()) {
          if (progress.recentlyActive) active++;
          progress.recentlyActive = false;
        }
        if (active < quorumSize(this.voters.length)) {
          this.becomeFollower(
            this.term,
            null,
            `check quorum failed: heard from ${active} of ${this.voters.length} voters in an election timeout`,
          );
          return;
        }
      }
    }
    if (this.heartbeatElapsed >= this.options.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      const context = this.readRounds.latestContext();
      for (const peer of this.peers()) this.sendHeartbeat(peer, context);
    }
  }

  private stepLeader(message: Message): void {
    switch (message.type) {
      case 'AppendResponse':
        this.handleAppendResponse(message);
        return;
      case 'HeartbeatResponse':
        this.handleHeartbeatResponse(message);
        return;
      case 'ReadIndexRequest':
        this.queueLeaderReads(message.requestIds.map((requestId) => ({ requestId, requester: message.from })));
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(response: AppendResponse): void {
    const progress = this.progress.get(response.from);
    if (progress === undefined) return;
    progress.recentlyActive = true;
    if (!response.success) {
      const probeFrom =
        response.hintTerm > 0 ? this.log.findConflictByTerm(response.hintIndex, response.hintTerm) : response.hintIndex;
      if (progress.rejected(response.rejectedIndex, probeFrom)) this.sendAppend(response.from, true);
      return;
    }
    const advanced = progress.acknowledge(response.matchIndex);
    // A probe answered at the index we already knew still proves the logs match there.
    const probeConfirmed = progress.state === 'probe' && response.matchIndex === progress.matchIndex;
    if (!advanced && !probeConfirmed) return;
    if (progress.state === 'probe') progress.becomeReplicate();
    if (this.maybeCommit()) this.appendBroadcastPending = true;
    while (this.sendAppend(response.from, false)) {
      // Fill the pipeline up to the in-flight limit.
    }
    if (this.transferee === response.from && progress.matchIndex === this.log.lastIndex()) {
      this.send({ type: 'TimeoutNow', to: response.from });
    }
  }

  private handleHeartbeatResponse(response: HeartbeatResponse): void {
    const progress = this.progress.get(response.from);
    if (progress === undefined) return;
    progress.recentlyActive = true;
    progress.onHeartbeatResponse();
    // An empty append doubles as a probe: it also uncovers appends that were lost.
    if (progress.matchIndex < this.log.lastIndex()) this.sendAppend(response.from, true);
    if (response.readContext !== null) {
      const confirmed = this.readRounds.acknowledge(
        response.readContext,
        response.from,
        quorumSize(this.voters.length),
      );
      for (const read of confirmed) this.releaseConfirmedRead(read);
    }
  }

  /** Sends the follower what it lacks. Returns false if nothing was sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.progress.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevLogIndex = progress.nextIndex - 1;
    const prevLogTerm = this.log.termAt(prevLogIndex);
    if (prevLogTerm === null) {
      throw new Error(
        `node ${this.id} (term ${this.term}): follower ${to} needs entries from ${progress.nextIndex}, ` +
          `but the log starts at ${this.log.firstIndex()} and snapshots are not supported yet`,
      );
    }
    const lastIndex = this.log.lastIndex();
    const entries =
      progress.nextIndex <= lastIndex
        ? this.log.slice(progress.nextIndex, lastIndex + 1, this.options.maxMessageBytes)
        : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'AppendRequest', to, prevLogIndex, prevLogTerm, entries, leaderCommit: this.log.committed });
    progress.onAppendSent(prevLogIndex + entries.length, entries.length);
    return true;
  }

  private sendHeartbeat(to: NodeId, readContext: number | null): void {
    const progress = this.progress.get(to);
    if (progress === undefined) return;
    // Never tell a follower to commit beyond what it is known to hold.
    const leaderCommit = Math.min(progress.matchIndex, this.log.committed);
    this.send({ type: 'Heartbeat', to, leaderCommit, readContext });
  }

  private maybeCommit(): boolean {
    const matches = [this.log.stableIndex()];
    for (const progress of this.progress.values()) matches.push(progress.matchIndex);
    const index = quorumMatchIndex(matches);
    if (index <= this.log.committed || !this.mayCommitByCounting(index)) return false;
    this.log.commitTo(index);
    if (this.readsAwaitingCommit.length > 0 && this.committedInCurrentTerm()) {
      this.readsToStart.push(...this.readsAwaitingCommit);
      this.readsAwaitingCommit = [];
    }
    return true;
  }

  private committedInCurrentTerm(): boolean {
    return this.log.termAt(this.log.committed) === this.term;
  }

  /** Work a leader batches per output: one append per follower and one heartbeat round for all new reads. */
  private flushLeaderWork(): void {
    if (this.role !== 'leader') return;
    if (this.readsToStart.length > 0) {
      const requests = this.readsToStart;
      this.readsToStart = [];
      if (this.requiresQuorumForRead()) {
        const context = this.readRounds.start(this.log.committed, requests, this.id);
        for (const peer of this.peers()) this.sendHeartbeat(peer, context);
      } else {
        this.releaseConfirmedRead({ index: this.log.committed, requests });
      }
    }
    if (this.appendBroadcastPending) {
      this.appendBroadcastPending = false;
      for (const peer of this.peers()) this.sendAppend(peer, true);
    }
  }

  private queueLeaderReads(requests: readonly ReadRequest[]): void {
    if (this.committedInCurrentTerm()) this.readsToStart.push(...requests);
    else this.readsAwaitingCommit.push(...requests);
  }

  private releaseConfirmedRead(read: ConfirmedRead): void {
    const forwarded = new Map<NodeId, string[]>();
    for (const request of read.requests) {
      if (request.requester === this.id) {
        this.readsAwaitingApply.push({ requestId: request.requestId, index: read.index });
      } else {
        const ids = forwarded.get(request.requester) ?? [];
        ids.push(request.requestId);
        forwarded.set(request.requester, ids);
      }
    }
    for (const [requester, requestIds] of forwarded) {
      this.send({ type: 'ReadIndexResponse', to: requester, requestIds, index: read.index });
    }
  }

  private failLeaderReads(reason: string): void {
    const pending = [...this.readRounds.clear(), ...this.readsAwaitingCommit, ...this.readsToStart];
    this.readsAwaitingCommit = [];
    this.readsToStart = [];
    for (const request of pending) {
      // A follower's forwarded read is not ours to answer; its own deadline ends it.
      if (request.requester === this.id) this.readsFailed.push({ requestId: request.requestId, reason });
    }
  }

  /**
   * Once this node stops following (it campaigns, or the term moves on), the
   * leader's answers are dropped: the reads waiting for them fail now rather
   * than at the caller's deadline.
   */
  private failForwardedReads(reason: string): void {
    for (const wireId of this.forwardedReads) {
      this.readsFailed.push({ requestId: wireId.slice(this.lifeTag.length + 1), reason });
    }
    this.forwardedReads.clear();
  }

  // ---------------------------------------------------------------- helpers

  private peers(): NodeId[] {
    return this.voters.filter((voter) => voter !== this.id);
  }

  private isVoter(): boolean {
    return this.voters.includes(this.id);
  }

  private send(message: Outgoing<Message>): void {
    this.messages.push({ from: this.id, term: this.term, ...message } as Message);
  }

  private noteRoleChange(reason: string): void {
    this.roleChange = { role: this.role, term: this.term, leader: this.leader, reason };
  }

  private currentHardState(): HardState {
    return { term: this.term, votedFor: this.votedFor, commit: this.log.committed };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commit === b.commit;
}
