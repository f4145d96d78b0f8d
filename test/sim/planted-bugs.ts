/**
 * Deliberately broken cores, for proving that the simulator catches real
 * protocol bugs. Test code only: each overrides one of RaftCore's protected
 * hooks (or its output) to remove one safety mechanism.
 */
import { RaftCore } from '../../src/raft/core.js';
import { learnersOf } from '../../src/raft/membership.js';
import { MajorityConfig } from '../../src/raft/quorum.js';
import type { ClusterConfig, Message, RaftOutput, SnapshotMeta } from '../../src/raft/types.js';
import type { PropertyName } from './invariants.js';
import type { CoreFactory } from './sim-core.js';

/** Figure 8 of the Raft paper: a leader commits an entry of an earlier term once it is on a majority. */
class CommitsEarlierTermsByCounting extends RaftCore {
  protected override mayCommitByCounting(_index: number): boolean {
    return true;
  }
}

/** Votes for any candidate, however stale its log. */
class VotesForStaleCandidates extends RaftCore {
  protected override isLogUpToDate(_lastIndex: number, _lastTerm: number): boolean {
    return true;
  }
}

/** Tells the caller to persist "no vote" while the core acts on its vote: a restart forgets whom it voted for. */
class ForgetsItsVote extends RaftCore {
  private readonly originals = new WeakMap<RaftOutput, RaftOutput>();

  override takeOutput(): RaftOutput {
    const output = super.takeOutput();
    if (output.hardState === null || output.hardState.votedFor === null) return output;
    const forgetful: RaftOutput = { ...output, hardState: { ...output.hardState, votedFor: null } };
    this.originals.set(forgetful, output);
    return forgetful;
  }

  override persisted(output: RaftOutput): void {
    super.persisted(this.originals.get(output) ?? output);
  }
}

/**
 * Marks persisted entries stable by their index alone: when a conflicting
 * append replaced entries in memory while the write that carried the old ones
 * was in flight, acknowledging that write takes the new, never written entries
 * for stable, and the core reads the old ones back from storage. Only
 * asynchronous persistence opens that window.
 */
class StableByIndexAlone extends RaftCore {
  constructor(...args: ConstructorParameters<typeof RaftCore>) {
    super(...args);
    const log = this.log;
    const stableTo = log.stableTo.bind(log);
    log.stableTo = (index: number, term: number): void => stableTo(index, log.termAt(index) ?? term);
  }
}

/** Serves ReadIndex without a heartbeat round: a deposed leader that does not know it yet serves stale reads. */
class ReadsWithoutConfirmingLeadership extends RaftCore {
  protected override requiresQuorumForRead(): boolean {
    return false;
  }
}

/**
 * Installs a snapshot from the leader but keeps its own entries after the
 * snapshot's index, although its entry at that index differed from the
 * snapshot's (so everything after it came from another leader's history).
 */
class KeepsConflictingEntriesAfterSnapshot extends RaftCore {
  protected override restoreFromSnapshot(snapshot: SnapshotMeta): void {
    const last = this.log.lastIndex();
    const kept = last > snapshot.index ? this.log.slice(snapshot.index + 1, last + 1, Number.MAX_SAFE_INTEGER) : [];
    super.restoreFromSnapshot(snapshot);
    if (kept.length > 0) this.log.appendNew(kept);
  }
}

/** Puts a configuration in force only once it is committed, not when it is appended (dissertation §4.1 says appended). */
class ConfigInForceAtCommit extends RaftCore {
  protected override currentConfig(): ClusterConfig {
    return this.log.configs.at(this.log.committed);
  }
}

/** Lets a leader propose a configuration change while the previous one is still uncommitted. */
class TwoConfigChangesInFlight extends RaftCore {
  protected override configChangePending(): boolean {
    return false;
  }
}

/**
 * Grants votes while it knows no configuration (an empty data dir waiting to
 * be added), as raftlog did before a soak lost committed writes: a voter cut
 * off through two membership changes won its stale configuration with the
 * vote of a member removed since and back under its old id with a fresh disk.
 * The rule sits in the private handleVoteRequest, which has no hook: while
 * this core steps a VoteRequest, the private knowsNoConfiguration() answers
 * false, which is all the rule (and the membership filter before it, which
 * hears such a candidate anyway) looks at.
 */
class VotesWhileKnowingNoConfiguration extends RaftCore {
  private steppingVoteRequest = false;

  constructor(...args: ConstructorParameters<typeof RaftCore>) {
    super(...args);
    const self = this as unknown as { knowsNoConfiguration?: () => boolean };
    const knowsNone = self.knowsNoConfiguration;
    if (typeof knowsNone !== 'function') throw new Error('RaftCore has no knowsNoConfiguration(): update the vote-while-empty planted bug');
    self.knowsNoConfiguration = () => !this.steppingVoteRequest && knowsNone.call(this);
  }

  override step(message: Message): void {
    this.steppingVoteRequest = message.type === 'VoteRequest';
    try {
      super.step(message);
    } finally {
      this.steppingVoteRequest = false;
    }
  }
}

/** Counts learners towards the commit quorum, as if they were voters. */
class LearnersCountTowardsCommit extends RaftCore {
  protected override commitQuorum(): MajorityConfig {
    const config = this.currentConfig();
    return new MajorityConfig([...config.voters, ...learnersOf(config)]);
  }
}

export type PlantedBugName =
  | 'commit-by-counting'
  | 'vote-without-log-check'
  | 'forget-vote'
  | 'read-without-quorum'
  | 'stable-by-index'
  | 'keep-entries-after-snapshot'
  | 'config-at-commit'
  | 'two-config-changes'
  | 'learner-counts-for-commit'
  | 'vote-while-empty';

export interface PlantedBug {
  readonly name: PlantedBugName;
  readonly description: string;
  readonly coreFactory: CoreFactory;
  /** The property the simulator must report as violated (any of them, when the bug can surface in more than one way). */
  readonly expected: PropertyName | readonly PropertyName[];
  /** Only asynchronous persistence can expose it (with synchronous persistence the code path is never taken). */
  readonly needsAsyncPersist?: boolean;
  /** Only membership changes can expose it: hunted over seeds that change membership. */
  readonly needsMembership?: boolean;
}

export const PLANTED_BUGS: Readonly<Record<PlantedBugName, PlantedBug>> = {
  'commit-by-counting': {
    name: 'commit-by-counting',
    description: 'a leader commits an entry of an earlier term by counting replicas (Raft paper, Figure 8)',
    coreFactory: (options, storage) => new CommitsEarlierTermsByCounting(options, storage),
    expected: 'Leader Completeness',
  },
  'vote-without-log-check': {
    name: 'vote-without-log-check',
    description: 'a node votes for a candidate whose log is behind its own',
    coreFactory: (options, storage) => new VotesForStaleCandidates(options, storage),
    expected: 'Leader Completeness',
  },
  'forget-vote': {
    name: 'forget-vote',
    description: 'the vote is not persisted, so a restarted node can vote twice in one term',
    coreFactory: (options, storage) => new ForgetsItsVote(options, storage),
    expected: 'Election Safety',
  },
  'read-without-quorum': {
    name: 'read-without-quorum',
    description: 'a leader serves ReadIndex without confirming it is still leader',
    coreFactory: (options, storage) => new ReadsWithoutConfirmingLeadership(options, storage),
    expected: 'Read Index Safety',
  },
  'stable-by-index': {
    name: 'stable-by-index',
    description: 'acknowledging a write marks entries stable by index alone, though a conflicting append replaced them while the write was in flight',
    coreFactory: (options, storage) => new StableByIndexAlone(options, storage),
    // The node believes it stored an entry its disk does not hold. Applied, that is a different
    // entry at an index (State Machine Safety); counted by a leader towards a commit, it is a
    // commit no durable majority holds (Commit Quorum, or Leader Completeness once a later
    // leader lacks it), which a leader that replicates while it writes (earlyMessages) reaches
    // first on some seeds.
    expected: ['State Machine Safety', 'Commit Quorum', 'Leader Completeness'],
    needsAsyncPersist: true,
  },
  'keep-entries-after-snapshot': {
    name: 'keep-entries-after-snapshot',
    description: "a follower installs the leader's snapshot but keeps its own conflicting entries after it",
    coreFactory: (options, storage) => new KeepsConflictingEntriesAfterSnapshot(options, storage),
    // The kept entries follow the snapshot's term in this log but another term in the log they came from.
    expected: ['Log Matching', 'State Machine Safety', 'Leader Completeness', 'Committed Entries Never Change'],
  },
  'config-at-commit': {
    name: 'config-at-commit',
    description: 'a node puts a configuration in force when it commits, not when it appends it',
    coreFactory: (options, storage) => new ConfigInForceAtCommit(options, storage),
    expected: ['Commit Quorum', 'Leader Completeness', 'Election Safety', 'State Machine Safety'],
    needsMembership: true,
  },
  'two-config-changes': {
    name: 'two-config-changes',
    description: 'a leader appends a configuration change while the previous one is uncommitted',
    coreFactory: (options, storage) => new TwoConfigChangesInFlight(options, storage),
    // Two changes in flight are a two-server change: old and new majorities need not overlap. The first
    // seed to show it may do so as a cluster that can no longer elect anyone (the real core passes it).
    expected: ['Commit Quorum', 'Leader Completeness', 'Election Safety', 'State Machine Safety', 'Liveness'],
    needsMembership: true,
  },
  'learner-counts-for-commit': {
    name: 'learner-counts-for-commit',
    description: 'a leader counts learners towards the commit quorum',
    coreFactory: (options, storage) => new LearnersCountTowardsCommit(options, storage),
    expected: ['Commit Quorum', 'Leader Completeness'],
    needsMembership: true,
  },
  'vote-while-empty': {
    name: 'vote-while-empty',
    description: 'a node that knows no configuration (an empty data dir waiting to be added) grants votes',
    coreFactory: (options, storage) => new VotesWhileKnowingNoConfiguration(options, storage),
    // A stale voter wins its old configuration with the vote of a member removed since and back with a fresh
    // disk: it lacks the entries committed without it (caught as it is elected, or as it overwrites them), and
    // the term it wins in may have had a leader already (its votes came from nodes that forgot theirs).
    expected: ['Leader Completeness', 'Election Safety', 'Committed Entries Never Change', 'State Machine Safety'],
    needsMembership: true,
  },
};

export function isPlantedBugName(name: string): name is PlantedBugName {
  return Object.hasOwn(PLANTED_BUGS, name);
}
