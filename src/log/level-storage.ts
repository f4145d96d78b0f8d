import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type RaftStorage, StorageRangeError, takeWithinBytes } from '../raft/storage.js';
import type { ClusterConfig, Entry, HardState, SnapshotMeta } from '../raft/types.js';
import {
  CLUSTER_IDENTITY_KEY,
  COMPACTED_KEY,
  CONFIG_KEY,
  type CompactedPoint,
  DELETED_BEFORE_KEY,
  decodeClusterIdentity,
  decodeCompactedPoint,
  decodeConfig,
  decodeDeletedBefore,
  decodeEntry,
  decodeHardState,
  decodeJournalApplied,
  decodeMemberIdentity,
  decodeSnapshotRecord,
  ENTRY_RANGE,
  encodeClusterIdentity,
  encodeCompactedPoint,
  encodeConfig,
  encodeDeletedBefore,
  encodeEntry,
  encodeHardState,
  encodeJournalApplied,
  encodeMemberIdentity,
  encodeSnapshotRecord,
  entryKey,
  HARD_STATE_KEY,
  indexOfEntryKey,
  JOURNAL_APPLIED_KEY,
  MEMBER_IDENTITY_KEY,
  RecordError,
  SNAPSHOT_KEY,
} from './codec.js';
import { type Bytes, type Db, openStore } from './data-dir.js';
import { DataDirError, LogCorruptionError } from './errors.js';
import { type EncodedRecord, Journal, type JournalContents, type JournalRecord } from './journal.js';
import {
  checkRecordedSnapshotFile,
  checkRefShape,
  checkSnapshotFileBeforeRecord,
  removeLeftoverFiles,
  removeObsoleteFiles,
  syncDirectory,
} from './snapshot-files.js';

type BatchOp = { type: 'put'; key: Bytes; value: Bytes } | { type: 'del'; key: Bytes };

export interface OpenOptions {
  /**
   * The voters of a new cluster: written on first open only. Once the
   * directory holds a configuration, that one wins (the caller compares and
   * reports a difference: the cluster may have changed its members since).
   */
  readonly voters?: readonly string[];
  /** Each founding voter's address, recorded with `voters` so that members added later learn where the founders listen. */
  readonly addresses?: Readonly<Record<string, string>>;
  /**
   * The member opening the directory. A directory without an identity
   * becomes this member's, of this cluster, for good (with a new random
   * incarnation); one with an identity must name the same member id and
   * cluster name, or the open is refused (DataDirError). Without it, the
   * stored identity (if any) is read and nothing is written.
   */
  readonly member?: MemberToBind;
  /**
   * A node joining a running cluster (`--join`): a new directory gets an
   * empty configuration, and the node learns its cluster's from the log.
   */
  readonly joining?: boolean;
}

/** Who opens a data directory, and the cluster id a directory without one gets. */
export interface MemberToBind {
  /** The node id (--id). */
  readonly id: string;
  /** The cluster's name (--cluster). */
  readonly clusterName: string;
  /** 16 lowercase hex digits: recorded when the directory has no identity yet; a stored one wins. */
  readonly clusterId: string;
}

/** The member and cluster a data directory belongs to: written once, never changed. */
export interface DataDirIdentity {
  /** 16 lowercase hex digits. */
  readonly clusterId: string;
  /** The cluster's name (--cluster) when the directory was bound. */
  readonly clusterName: string;
  readonly memberId: string;
  /** 16 lowercase hex digits drawn at random when the directory was bound. */
  readonly incarnation: string;
}

/** A snapshot's state, as a file the node wrote into the log's `snapshotDir`. */
export interface SnapshotFileRef {
  /** Index, term and the cluster configuration at that index. */
  readonly meta: SnapshotMeta;
  /** The file's name inside `snapshotDir` (no directories). */
  readonly file: string;
  /** The file's size. */
  readonly bytes: number;
  /** Hex SHA-256 of the whole file. */
  readonly sha256: string;
}

/** The snapshot folder's name inside the data directory. */
export const SNAPSHOT_DIR_NAME = 'snapshots';

const FLUSHING = 'flushing journaled writes';
const EMPTY_HARD_STATE: HardState = { term: 0, votedFor: null, commit: 0 };
const NOTHING_COMPACTED: CompactedPoint = { index: 0, term: 0 };

/**
 * The Raft log and hard state in LevelDB, serving the core's synchronous reads
 * from an in-memory copy that is written through. Every save is one atomic
 * LevelDB batch written with sync (fsync) before it resolves, so an entry, a
 * term or a vote is on disk before anything that depends on it leaves the node.
 * Every record carries a checksum, verified when the log is opened; a bad
 * record stops the node with the file and index named.
 *
 * Memory: only the entries still held (firstIndex()..lastIndex()) are kept,
 * in an array indexed from the compacted point. Compaction drops entries
 * from memory at once and from LevelDB just after, so it is compaction that
 * bounds the held window; there is nothing older to read back from LevelDB.
 *
 * Compaction records the new compacted point (one small fsync'd batch) and
 * deletes the entries before it in the background, with LevelDB's own range
 * delete (`clear`, off the main thread): deleting some 10,000 entries in the
 * batch itself held every write of the node behind it for 25-35 ms, at every
 * snapshot. A DeletedBefore record says how far the deletion has got; the
 * entries between it and the compacted point are leftovers that open()
 * skips and deletes, and anything stored before it is corruption, as before.
 *
 * Snapshots: the node writes each snapshot's state as a file in
 * `snapshotDir`; this log records which file is the latest (name, size,
 * SHA-256), deletes the files of older ones, and checks at open that the
 * latest is there with its size. A snapshot from the leader replaces the
 * whole log in the same atomic batch as the entries and hard state that
 * follow it.
 */
export class LevelLogStorage implements RaftStorage {
  /** Where the node writes snapshot files; `incoming/` inside it is the node's own. */
  readonly snapshotDir: string;
  /** Files of the snapshot dir that open() deleted: leftovers of a crash. */
  readonly leftoversRemoved: readonly string[];
  /**
   * What open() did about the identity: 'created' bound a new directory,
   * 'adopted' bound one that already held a log from before identities
   * existed; null when it was bound already (or no member was given).
   */
  readonly identityBound: 'created' | 'adopted' | null;
  private readonly boundIdentity: DataDirIdentity | null;
  /** held[i] is the entry at compacted.index + 1 + i. */
  private held: Entry[];
  private compacted: CompactedPoint;
  private latest: SnapshotFileRef | null;
  private config: ClusterConfig;
  private hardState: HardState;
  /** Snapshot files replaced by a newer one, deleted after the next compaction or install. */
  private readonly obsoleteFiles = new Set<string>();
  /** The write in progress: writes must not overlap, each one's checks read the state the previous one left. */
  private writing: string | null = null;
  /** Entries from here up to the compacted point may still be stored: deleting them is under way or due. */
  private deletedBefore: number;
  /** The background deletion of compacted entries, while it runs. */
  private deleting: Promise<void> | null = null;
  private deleteFailure: Error | null = null;
  private closing = false;
  /** Writes made durable in the journal (appendJournaled) and not yet handed to LevelDB, in order. */
  private journaledOps: BatchOp[] = [];
  /** The last journal record in journaledOps. */
  private journaledSeq = 0;
  /** The size of the journal records in journaledOps. */
  private journaledSize = 0;
  /** The last journal record handed to LevelDB (durable there once a fsync'd write has followed). */
  private flushedSeq: number;

  private constructor(
    private readonly db: Db,
    readonly path: string,
    state: {
      config: ClusterConfig;
      hardState: HardState;
      compacted: CompactedPoint;
      deletedBefore: number;
      latest: SnapshotFileRef | null;
      held: Entry[];
      leftoversRemoved: string[];
      identity: { stored: DataDirIdentity | null; bound: 'created' | 'adopted' | null };
      journal: Journal;
      journalApplied: number;
      journalTorn: JournalContents['torn'];
    },
  ) {
    this.snapshotDir = join(path, SNAPSHOT_DIR_NAME);
    this.config = state.config;
    this.hardState = state.hardState;
    this.compacted = state.compacted;
    this.deletedBefore = state.deletedBefore;
    this.latest = state.latest;
    this.held = state.held;
    this.leftoversRemoved = state.leftoversRemoved;
    this.boundIdentity = state.identity.stored;
    this.identityBound = state.identity.bound;
    this.journal = state.journal;
    this.flushedSeq = state.journalApplied;
    this.journalTorn = state.journalTorn;
  }

  private readonly journal: Journal;
  /** The cut-short last journal record open() found and dropped (a crash during its append; never acknowledged). */
  readonly journalTorn: JournalContents['torn'];

  static async open(path: string, options: OpenOptions = {}): Promise<LevelLogStorage> {
    const db = await openStore(path);
    try {
      const snapshotDir = join(path, SNAPSHOT_DIR_NAME);
      await mkdir(snapshotDir, { recursive: true });
      // Before anything is written: a directory of another member or cluster is left as it was.
      const storedIdentity = await readIdentity(db, path, options.member);
      const config = await readConfig(db, path, options, options.joining === true);
      let hardState = (await readRecord(db, HARD_STATE_KEY, path, 'hard state', decodeHardState)) ?? EMPTY_HARD_STATE;
      const compacted = (await readRecord(db, COMPACTED_KEY, path, 'compacted point', decodeCompactedPoint)) ?? NOTHING_COMPACTED;
      const deletedBefore = (await readRecord(db, DELETED_BEFORE_KEY, path, 'deleted-before record', decodeDeletedBefore)) ?? compacted.index + 1;
      if (deletedBefore > compacted.index + 1) {
        throw new LogCorruptionError(
          path,
          'deleted-before record',
          `says every entry before ${deletedBefore} is deleted, but the log is compacted only up to ${compacted.index}`,
        );
      }
      const latest = await readRecord(db, SNAPSHOT_KEY, path, 'snapshot record', decodeSnapshotRecord);
      const held = await readEntries(db, path, compacted, deletedBefore);
      const journalApplied = (await readRecord(db, JOURNAL_APPLIED_KEY, path, 'journal position', decodeJournalApplied)) ?? 0;
      const { contents, segments } = await Journal.read(path);
      const lastSeq = Math.max(journalApplied, contents.records[contents.records.length - 1]?.seq ?? 0);
      if (segments.length > 0) {
        const replayed = replayJournal(path, contents.records, journalApplied, compacted, held, hardState);
        replayed.ops.push({ type: 'put', key: JOURNAL_APPLIED_KEY, value: encodeJournalApplied(lastSeq) });
        // fsync'd: what LevelDB recovered from its own unsynced writes is on disk too before the files go.
        await writeBatch(db, replayed.ops, true);
        hardState = replayed.hardState;
      }
      const journal = Journal.open(path, segments, lastSeq + 1);
      journal.release(lastSeq);
      const lastIndex = compacted.index + held.length;
      if (hardState.commit > lastIndex) {
        throw new LogCorruptionError(path, 'hard state', `commit index ${hardState.commit} is beyond the last stored entry ${lastIndex}`);
      }
      checkSnapshotRecord(path, latest, compacted, held);
      if (latest !== null) await checkRecordedSnapshotFile(snapshotDir, latest, path);
      // Only once everything checks out: an operator looking into a bad directory finds it as it was.
      const leftoversRemoved = await removeLeftoverFiles(snapshotDir, latest?.file ?? null);
      const heldAnything = latest !== null || compacted.index > 0 || held.length > 0 || hardState.term > 0;
      const identity =
        storedIdentity === null && options.member !== undefined
          ? { stored: await bindIdentity(db, options.member), bound: heldAnything ? ('adopted' as const) : ('created' as const) }
          : { stored: storedIdentity, bound: null };
      const storage = new LevelLogStorage(db, path, {
        config,
        // Whatever is compacted was committed, even if the stored commit index (not always fsync'd) lags.
        hardState: { ...hardState, commit: Math.max(hardState.commit, compacted.index) },
        compacted,
        deletedBefore,
        latest,
        held,
        leftoversRemoved,
        identity,
        journal,
        journalApplied: lastSeq,
        journalTorn: contents.torn,
      });
      // A compaction that a stop or crash interrupted finishes now.
      storage.deleteCompacted();
      return storage;
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  /** The member and cluster this directory belongs to; null for a directory no node has opened as a member yet. */
  identity(): DataDirIdentity | null {
    return this.boundIdentity;
  }

  initialState(): { hardState: HardState; config: ClusterConfig } {
    return { hardState: this.hardState, config: this.config };
  }

  snapshot(): SnapshotMeta | null {
    return this.latest?.meta ?? null;
  }

  snapshotFile(): SnapshotFileRef | null {
    return this.latest;
  }

  firstIndex(): number {
    return this.compacted.index + 1;
  }

  lastIndex(): number {
    return this.compacted.index + this.held.length;
  }

  term(index: number): number {
    if (index === this.compacted.index) return this.compacted.term;
    const entry = index > this.compacted.index ? this.held[index - this.compacted.index - 1] : undefined;
    if (entry === undefined) {
      throw new StorageRangeError(`term(${index}) is outside the stored range ${this.compacted.index}..${this.lastIndex()} (log in ${this.path})`);
    }
    return entry.term;
  }

  entries(from: number, to: number, maxBytes: number): Entry[] {
    if (from < this.firstIndex() || to > this.lastIndex() + 1 || from > to) {
      throw new StorageRangeError(
        `entries [${from}, ${to}) are outside the stored range ${this.firstIndex()}..${this.lastIndex()} (log in ${this.path})`,
      );
    }
    const offset = this.compacted.index + 1;
    return takeWithinBytes(from, to, maxBytes, (index) => this.held[index - offset] as Entry);
  }

  /**
   * Records a snapshot the node took of its own state machine at an index it
   * has applied. Its file is already written and fsync'd in snapshotDir, and
   * the directory fsync'd after the rename (writeKvSnapshot does both), so
   * its name is durable before the record that points to it. With
   * `compactTo`, the log is compacted up to there in the same fsync'd batch
   * (as compact() does): one durable write on the node's queue, not two.
   */
  async saveSnapshot(ref: SnapshotFileRef, compactTo?: number): Promise<void> {
    await this.exclusively('saveSnapshot', async () => {
      checkRefShape(ref, this.path);
      const { index, term } = ref.meta;
      this.checkNewerSnapshot(ref);
      if (index < this.compacted.index || index > this.lastIndex()) {
        throw new StorageRangeError(
          `log in ${this.path}: snapshot at ${index} is outside the stored range ${this.compacted.index}..${this.lastIndex()}`,
        );
      }
      const storedTerm = this.term(index);
      if (storedTerm !== term) {
        throw new StorageRangeError(`log in ${this.path}: snapshot at ${index} says term ${term}, the log holds term ${storedTerm} there`);
      }
      await checkSnapshotFileBeforeRecord(this.snapshotDir, ref, this.path);
      const point = compactTo === undefined ? null : this.compactionPoint(compactTo, index);
      const ops: BatchOp[] = [{ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshotRecord(ref) }];
      if (point !== null) ops.push(...this.compactionOps(point));
      await this.writeOps(ops, true);
      this.replaceLatest(ref);
      if (point !== null) {
        this.dropCompacted(point);
        await removeObsoleteFiles(this.snapshotDir, this.obsoleteFiles);
      }
    });
    if (compactTo !== undefined) this.deleteCompacted();
  }

  /**
   * Compacts the log up to and including `index`, which the latest snapshot
   * must cover: records the new compacted point (fsync'd) and drops the
   * entries from memory; then deletes the files of snapshots older than the
   * latest. The entries are deleted from LevelDB in the background
   * (deletionSettled() waits for that).
   */
  async compact(index: number): Promise<void> {
    await this.exclusively('compact', async () => {
      const point = this.compactionPoint(index, this.latest?.meta.index ?? 0);
      if (point === null) return;
      await this.writeOps(this.compactionOps(point), true);
      this.dropCompacted(point);
      await removeObsoleteFiles(this.snapshotDir, this.obsoleteFiles);
    });
    this.deleteCompacted();
  }

  /** The compacted point at `index` (null if the log is compacted that far already), which a snapshot at `covered` must cover. */
  private compactionPoint(index: number, covered: number): CompactedPoint | null {
    if (index <= this.compacted.index) return null;
    if (index > covered) {
      throw new StorageRangeError(`log in ${this.path}: cannot compact up to ${index}: the latest snapshot only covers up to ${covered}`);
    }
    if (index > this.lastIndex()) {
      throw new StorageRangeError(`log in ${this.path}: cannot compact up to ${index}: the log ends at ${this.lastIndex()}`);
    }
    return { index, term: this.term(index) };
  }

  /**
   * The point, and how far the deletion has got: a record written by the
   * deletion itself may still be on its way, and one from before
   * DeletedBefore records is absent (which would mean "nothing left to
   * delete").
   */
  private compactionOps(point: CompactedPoint): BatchOp[] {
    return [
      { type: 'put', key: COMPACTED_KEY, value: encodeCompactedPoint(point) },
      { type: 'put', key: DELETED_BEFORE_KEY, value: encodeDeletedBefore(this.deletedBefore) },
    ];
  }

  private dropCompacted(point: CompactedPoint): void {
    this.held = this.held.slice(point.index - this.compacted.index);
    this.compacted = point;
  }

  /** Resolves once no compacted entry is left to delete (or the log is closing); rejects if deleting failed. */
  async deletionSettled(): Promise<void> {
    while (this.deleting !== null) await this.deleting;
    if (this.deleteFailure !== null) throw this.deleteFailure;
  }

  /**
   * Deletes the compacted entries still stored, one range at a time, in the
   * background; a compaction meanwhile extends the work. Each range is
   * followed by a DeletedBefore record written without fsync: LevelDB's
   * write-ahead log keeps it behind the deletes it vouches for, and a record
   * lost in a crash only makes open() delete the range again.
   */
  private deleteCompacted(): void {
    if (this.deleting !== null || this.closing || this.deleteFailure !== null) return;
    if (this.deletedBefore > this.compacted.index) return;
    this.deleting = (async () => {
      while (!this.closing && this.deletedBefore <= this.compacted.index) {
        const through = this.compacted.index;
        await this.db.clear({ gte: entryKey(this.deletedBefore), lte: entryKey(through) });
        this.deletedBefore = through + 1;
        await this.db.put(DELETED_BEFORE_KEY, encodeDeletedBefore(this.deletedBefore));
      }
    })()
      .catch((error: unknown) => {
        this.deleteFailure = new Error(
          `log in ${this.path}: deleting the compacted entries from ${this.deletedBefore} failed: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      })
      .finally(() => {
        this.deleting = null;
        // A compaction that came in as the last range finished.
        this.deleteCompacted();
      });
  }

  /**
   * Persists one output of the core, in one atomic batch: a snapshot from the
   * leader (its file already in snapshotDir) replaces the whole log and the
   * cluster configuration; the entries then replace the log from
   * entries[0].index onward; then the hard state. Fsync'd — except when all
   * that changed is the commit index: Raft does not need it durable (a
   * restarted node relearns it from the leader), so that batch is written
   * without waiting for the disk, and the next fsync'd batch, which goes to
   * the same LevelDB write-ahead log after it, makes it durable too.
   */
  async save(hardState: HardState | null, entries: readonly Entry[], snapshot: SnapshotFileRef | null = null): Promise<void> {
    if (snapshot === null && entries.length === 0 && hardState === null) return;
    await this.exclusively('save', async () => {
      const ops: BatchOp[] = [];
      let base = this.compacted;
      let heldCount = this.held.length;
      if (snapshot !== null) {
        checkRefShape(snapshot, this.path);
        this.checkNewerSnapshot(snapshot);
        await checkSnapshotFileBeforeRecord(this.snapshotDir, snapshot, this.path);
        await syncDirectory(this.snapshotDir);
        for (let i = this.firstIndex(); i <= this.lastIndex(); i++) ops.push({ type: 'del', key: entryKey(i) });
        base = { index: snapshot.meta.index, term: snapshot.meta.term };
        heldCount = 0;
        ops.push({ type: 'put', key: COMPACTED_KEY, value: encodeCompactedPoint(base) });
        ops.push({ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshotRecord(snapshot) });
        ops.push({ type: 'put', key: CONFIG_KEY, value: encodeConfig(snapshot.meta.config) });
      }
      const first = entries[0];
      if (first !== undefined) {
        this.checkAppend(entries, base.index + 1, base.index + heldCount);
        const end = first.index + entries.length - 1;
        for (let index = end + 1; index <= base.index + heldCount; index++) ops.push({ type: 'del', key: entryKey(index) });
        for (const entry of entries) ops.push({ type: 'put', key: entryKey(entry.index), value: encodeEntry(entry) });
      }
      if (hardState !== null) ops.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardState(hardState) });
      const newLast = first === undefined ? base.index + heldCount : first.index + entries.length - 1;
      const newCommit = hardState?.commit ?? this.hardState.commit;
      if (newCommit > newLast) {
        // open() would refuse this state: refuse to write it.
        throw new StorageRangeError(`log in ${this.path}: this save would leave the commit index ${newCommit} beyond the last entry ${newLast}`);
      }
      await this.writeOps(ops, !changesOnlyCommit(this.hardState, hardState, entries, snapshot));

      if (snapshot !== null) {
        this.held = [];
        this.compacted = base;
        this.config = snapshot.meta.config;
        this.replaceLatest(snapshot);
      }
      if (first !== undefined) {
        this.held.length = first.index - this.compacted.index - 1;
        for (const entry of entries) this.held.push(entry);
      }
      // Whatever a snapshot covers is committed (as open() reports it too).
      const stored = hardState ?? this.hardState;
      this.hardState = { ...stored, commit: Math.max(stored.commit, this.compacted.index) };
      if (snapshot !== null) await removeObsoleteFiles(this.snapshotDir, this.obsoleteFiles);
    });
  }

  /**
   * Makes a write durable in the journal at once, on the calling thread (an
   * append and fdatasync), and applies it to what the log serves; LevelDB
   * gets it later, from flushJournaled or the next write of any kind, which
   * must come in the order the writes were made. Not while another write of
   * the log is in progress: that one's changes are not in memory yet, and
   * this write's checks read them. Same arguments and checks as save().
   */
  appendJournaled(hardState: HardState | null, entries: readonly Entry[]): void {
    if (entries.length === 0 && hardState === null) return;
    // A flush changes nothing in memory: only a write that does may not be under way.
    if (this.writing !== null && this.writing !== FLUSHING) {
      throw new Error(`log in ${this.path}: journaled write while ${this.writing} is in progress`);
    }
    if (this.deleteFailure !== null) throw this.deleteFailure;
    const sync = this.checkJournaled(hardState, entries);
    const { seq, encoded } = this.journal.append(hardState, entries, sync);
    this.holdJournaled(hardState, entries, seq, encoded);
  }

  /**
   * As appendJournaled, but the journal's fdatasync runs on a libuv thread and
   * the log serves the write once it is durable, as save() does: for writes
   * that wait on the node's disk queue (a leader's), so its appends travel
   * while the disk works.
   */
  async saveJournaled(hardState: HardState | null, entries: readonly Entry[]): Promise<void> {
    if (entries.length === 0 && hardState === null) return;
    await this.exclusively('journaled save', async () => {
      const sync = this.checkJournaled(hardState, entries);
      const { seq, encoded } = await this.journal.appendAsync(hardState, entries, sync);
      this.holdJournaled(hardState, entries, seq, encoded);
    });
  }

  /** save()'s checks for a journaled write; whether it needs an fdatasync (not when only the commit index changes). */
  private checkJournaled(hardState: HardState | null, entries: readonly Entry[]): boolean {
    const first = entries[0];
    const lastHeld = this.compacted.index + this.held.length;
    if (first !== undefined) this.checkAppend(entries, this.compacted.index + 1, lastHeld);
    const newLast = first === undefined ? lastHeld : first.index + entries.length - 1;
    const newCommit = hardState?.commit ?? this.hardState.commit;
    if (newCommit > newLast) {
      throw new StorageRangeError(`log in ${this.path}: this write would leave the commit index ${newCommit} beyond the last entry ${newLast}`);
    }
    return !changesOnlyCommit(this.hardState, hardState, entries, null);
  }

  /** A journaled write reaches what the log serves, and joins what LevelDB is handed next. */
  private holdJournaled(hardState: HardState | null, entries: readonly Entry[], seq: number, encoded: EncodedRecord): void {
    const ops = this.journaledOps;
    const first = entries[0];
    if (first !== undefined) {
      const lastHeld = this.compacted.index + this.held.length;
      for (let index = first.index + entries.length; index <= lastHeld; index++) ops.push({ type: 'del', key: entryKey(index) });
      entries.forEach((entry, i) => {
        ops.push({ type: 'put', key: entryKey(entry.index), value: encoded.entries[i] as Uint8Array });
      });
      this.held.length = first.index - this.compacted.index - 1;
      for (const entry of entries) this.held.push(entry);
    }
    if (hardState !== null) {
      ops.push({ type: 'put', key: HARD_STATE_KEY, value: encoded.hardState as Uint8Array });
      this.hardState = { ...hardState, commit: Math.max(hardState.commit, this.compacted.index) };
    }
    this.journaledSeq = seq;
    this.journaledSize += encoded.bytes.byteLength;
  }

  /** Bytes of journaled writes LevelDB has not been handed yet. */
  get journaledBytes(): number {
    return this.journaledSize;
  }

  /**
   * Hands the journaled writes to LevelDB in one batch, without fsync unless
   * a journal file was started since the last fsync'd write (then the older
   * files are deleted once it completes). Nothing to do when another write
   * took them along.
   */
  async flushJournaled(): Promise<void> {
    if (this.journaledOps.length === 0) return;
    // fsync'd when the journal has older files, which it then deletes.
    await this.exclusively(FLUSHING, () => this.writeOps([], this.journal.files > 1));
  }

  async close(): Promise<void> {
    // The range being deleted is finished first; the rest waits for the next open.
    this.closing = true;
    await this.deletionSettled().catch(() => undefined);
    // Journaled writes not flushed stay in the journal: the next open replays them.
    this.journal.close();
    await this.db.close();
  }

  /** Every LevelDB write of the log goes through here (writeBatch), after the journaled writes not yet flushed. */
  private async writeOps(ops: readonly BatchOp[], sync: boolean): Promise<void> {
    // Journaled writes not yet flushed go first: LevelDB must hold the log's writes in the order they were made.
    const { journaled, seq } = this.takeJournaled();
    await writeBatch(this.db, journaled.length === 0 ? ops : [...journaled, ...ops], sync);
    this.flushedSeq = seq;
    // Durable in LevelDB now: the journal files whose records it holds go.
    if (sync) this.journal.release(this.flushedSeq);
  }

  /** The journaled writes not yet handed to LevelDB, with the record saying how far they go; empties the list. */
  private takeJournaled(): { journaled: BatchOp[]; seq: number } {
    if (this.journaledOps.length === 0) return { journaled: [], seq: this.flushedSeq };
    const journaled = this.journaledOps;
    this.journaledOps = [];
    this.journaledSize = 0;
    journaled.push({ type: 'put', key: JOURNAL_APPLIED_KEY, value: encodeJournalApplied(this.journaledSeq) });
    return { journaled, seq: this.journaledSeq };
  }

  private async exclusively(operation: string, write: () => Promise<void>): Promise<void> {
    if (this.writing !== null) {
      throw new Error(`log in ${this.path}: ${operation} called while ${this.writing} is in progress`);
    }
    // The store failed under the background deletion: no write of it can be trusted to land either.
    if (this.deleteFailure !== null) throw this.deleteFailure;
    this.writing = operation;
    try {
      await write();
    } finally {
      this.writing = null;
    }
  }

  private checkNewerSnapshot(ref: SnapshotFileRef): void {
    const current = this.latest?.meta.index ?? 0;
    if (ref.meta.index <= current) {
      throw new StorageRangeError(`log in ${this.path}: snapshot at ${ref.meta.index} is not newer than the stored one at ${current}`);
    }
  }

  private replaceLatest(ref: SnapshotFileRef): void {
    if (this.latest !== null && this.latest.file !== ref.file) this.obsoleteFiles.add(this.latest.file);
    this.obsoleteFiles.delete(ref.file);
    this.latest = ref;
  }

  private checkAppend(entries: readonly Entry[], firstIndex: number, lastIndex: number): void {
    const first = entries[0] as Entry;
    if (first.index < firstIndex || first.index > lastIndex + 1) {
      throw new StorageRangeError(
        `log in ${this.path}: append at index ${first.index} would leave a gap or rewrite compacted entries (held ${firstIndex}..${lastIndex})`,
      );
    }
    entries.forEach((entry, i) => {
      if (entry.index !== first.index + i) {
        throw new StorageRangeError(`log in ${this.path}: entries to append are not contiguous at index ${entry.index}`);
      }
    });
  }
}

/**
 * save()'s sync rule: a write that changes nothing but the commit index
 * (against the stored hard state `stored`) is written without fsync.
 */
export function changesOnlyCommit(
  stored: HardState,
  hardState: HardState | null,
  entries: readonly Entry[],
  snapshot: SnapshotFileRef | null,
): boolean {
  return snapshot === null && entries.length === 0 && hardState !== null && hardState.term === stored.term && hardState.votedFor === stored.votedFor;
}

async function readRecord<T>(db: Db, key: Bytes, path: string, record: string, decode: (value: Bytes) => T): Promise<T | null> {
  let value: Bytes | undefined;
  try {
    value = await db.get(key);
  } catch (error) {
    throw storeReadError(path, `LevelDB store, reading the ${record}`, error);
  }
  if (value === undefined) return null;
  try {
    return decode(value);
  } catch (error) {
    if (error instanceof RecordError) throw new LogCorruptionError(path, record, error.message);
    throw error;
  }
}

/**
 * The stored identity, checked against the member opening the directory. Both
 * records are written in one batch, so one without the other is corruption.
 */
async function readIdentity(db: Db, path: string, member: MemberToBind | undefined): Promise<DataDirIdentity | null> {
  const cluster = await readRecord(db, CLUSTER_IDENTITY_KEY, path, 'cluster identity', decodeClusterIdentity);
  const self = await readRecord(db, MEMBER_IDENTITY_KEY, path, 'member identity', decodeMemberIdentity);
  if (cluster === null && self === null) return null;
  if (cluster === null)
    throw new LogCorruptionError(path, 'cluster identity', 'missing, though the member identity is stored (both are written together)');
  if (self === null)
    throw new LogCorruptionError(path, 'member identity', 'missing, though the cluster identity is stored (both are written together)');
  const stored: DataDirIdentity = { clusterId: cluster.clusterId, clusterName: cluster.name, memberId: self.memberId, incarnation: self.incarnation };
  if (member === undefined) return stored;
  const owner = `member ${stored.memberId} of cluster "${stored.clusterName}" (cluster id ${stored.clusterId})`;
  if (member.id !== stored.memberId) {
    throw new DataDirError(
      path,
      `it belongs to ${owner}: it was created with --id ${stored.memberId}, and this node was started with --id ${member.id}. ` +
        `A data directory is bound to the member it was created for: start ${stored.memberId} on it, or give ${member.id} a directory of its own`,
    );
  }
  if (member.clusterName !== stored.clusterName) {
    throw new DataDirError(
      path,
      `it belongs to ${owner}, but this node was started with --cluster "${member.clusterName}" (cluster id ${member.clusterId}): ` +
        `it holds another cluster's data, or the cluster's name was changed`,
    );
  }
  return stored;
}

/** Binds the directory to `member`, with a new random incarnation: one fsync'd batch. */
async function bindIdentity(db: Db, member: MemberToBind): Promise<DataDirIdentity> {
  const identity: DataDirIdentity = {
    clusterId: member.clusterId,
    clusterName: member.clusterName,
    memberId: member.id,
    incarnation: randomBytes(8).toString('hex'),
  };
  await db.batch(
    [
      { type: 'put', key: CLUSTER_IDENTITY_KEY, value: encodeClusterIdentity({ clusterId: identity.clusterId, name: identity.clusterName }) },
      { type: 'put', key: MEMBER_IDENTITY_KEY, value: encodeMemberIdentity({ memberId: identity.memberId, incarnation: identity.incarnation }) },
    ],
    { sync: true },
  );
  return identity;
}

async function readConfig(db: Db, path: string, seed: Pick<OpenOptions, 'voters' | 'addresses'>, joining: boolean): Promise<ClusterConfig> {
  const stored = await readRecord(db, CONFIG_KEY, path, 'cluster configuration', decodeConfig);
  if (stored !== null) return stored;
  let config: ClusterConfig;
  if (joining) {
    config = { voters: [] };
  } else {
    const { voters, addresses } = seed;
    if (voters === undefined || voters.length === 0) {
      throw new Error(`the raft log in ${path} has no cluster configuration and none was given (--peers)`);
    }
    config = { voters: [...voters], ...(addresses !== undefined ? { addresses: { ...addresses } } : {}) };
  }
  await db.put(CONFIG_KEY, encodeConfig(config), { sync: true });
  return config;
}

/** The entries after the compacted point: contiguous, each under its own index, terms never decreasing. */
async function readEntries(db: Db, path: string, compacted: CompactedPoint, deletedBefore: number): Promise<Entry[]> {
  const entries: Entry[] = [];
  try {
    await readEntriesInto(entries, db, path, compacted, deletedBefore);
  } catch (error) {
    throw storeReadError(path, `LevelDB store, reading the entries after index ${compacted.index + entries.length}`, error);
  }
  return entries;
}

async function readEntriesInto(entries: Entry[], db: Db, path: string, compacted: CompactedPoint, deletedBefore: number): Promise<void> {
  let previousTerm = compacted.term;
  for await (const [key, value] of db.iterator(ENTRY_RANGE)) {
    const expected = compacted.index + entries.length + 1;
    let index: number;
    try {
      index = indexOfEntryKey(key);
    } catch (error) {
      throw new LogCorruptionError(path, `entry after index ${expected - 1}`, (error as Error).message);
    }
    if (index < deletedBefore) {
      throw new LogCorruptionError(
        path,
        `entry at index ${index}`,
        `still stored, though compaction deleted everything up to ${Math.min(deletedBefore - 1, compacted.index)}`,
        index,
      );
    }
    // Compacted, and left for the deletion that a stop or crash interrupted (it resumes after open).
    if (index <= compacted.index) continue;
    if (index !== expected) {
      throw new LogCorruptionError(path, `entry at index ${expected}`, `missing (the next stored entry is ${index})`, expected);
    }
    let entry: Entry;
    try {
      entry = decodeEntry(value);
    } catch (error) {
      if (error instanceof RecordError) throw new LogCorruptionError(path, `entry at index ${index}`, error.message, index);
      throw error;
    }
    if (entry.index !== index) {
      throw new LogCorruptionError(path, `entry at index ${index}`, `record says index ${entry.index}`, index);
    }
    if (entry.term < previousTerm) {
      throw new LogCorruptionError(
        path,
        `entry at index ${index}`,
        `term ${entry.term} is lower than the previous entry's term ${previousTerm}`,
        index,
      );
    }
    previousTerm = entry.term;
    entries.push(entry);
  }
}

/**
 * LevelDB's own checks failed while reading (a damaged block or table file,
 * one it cannot read): reported as corruption, with what was being read.
 */
function storeReadError(path: string, record: string, error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'LEVEL_CORRUPTION' && code !== 'LEVEL_IO_ERROR') return error;
  return new LogCorruptionError(path, record, (error as Error).message);
}

/** The latest snapshot covers the compacted point and sits on a position of the log. */
function checkSnapshotRecord(path: string, latest: SnapshotFileRef | null, compacted: CompactedPoint, held: readonly Entry[]): void {
  if (latest === null) {
    if (compacted.index > 0) {
      throw new LogCorruptionError(path, 'snapshot record', `missing, though entries up to ${compacted.index} are compacted`);
    }
    return;
  }
  const { index, term } = latest.meta;
  const lastIndex = compacted.index + held.length;
  if (index < compacted.index || index > lastIndex) {
    throw new LogCorruptionError(path, 'snapshot record', `snapshot at ${index} is outside the log's range ${compacted.index}..${lastIndex}`);
  }
  const logTerm = index === compacted.index ? compacted.term : (held[index - compacted.index - 1] as Entry).term;
  if (logTerm !== term) {
    throw new LogCorruptionError(path, 'snapshot record', `snapshot at ${index} says term ${term}, the log holds term ${logTerm} there`);
  }
}

/**
 * One atomic batch, fsync'd when `sync`. Built as a chained batch:
 * abstract-level's array form copies and re-validates every operation in
 * JavaScript first, which cost some 7 µs per entry on the write path (about
 * five times the chained form for a batch of 32 entries).
 */
async function writeBatch(db: Db, ops: readonly BatchOp[], sync: boolean): Promise<void> {
  const batch = db.batch();
  try {
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
  } catch (error) {
    await batch.close();
    throw error;
  }
  await batch.write({ sync });
}

/**
 * Lays the journal records LevelDB does not hold (those after `applied`) over
 * the log read from LevelDB, as save() would have: `held` is changed in place.
 * Returns the LevelDB operations that store the result and the hard state.
 */
function replayJournal(
  path: string,
  records: readonly JournalRecord[],
  applied: number,
  compacted: CompactedPoint,
  held: Entry[],
  hardState: HardState,
): { ops: BatchOp[]; hardState: HardState } {
  const ops: BatchOp[] = [];
  const pending = records.filter((record) => record.seq > applied);
  const first = pending[0];
  if (first === undefined) return { ops, hardState };
  if (first.seq !== applied + 1) {
    throw new LogCorruptionError(
      path,
      'journal',
      `LevelDB holds the journal's records up to ${applied}, and the journal's next record is ${first.seq}: records ${applied + 1}..${first.seq - 1} are missing`,
    );
  }
  const lastBefore = compacted.index + held.length;
  let lowest = Number.POSITIVE_INFINITY;
  let state = hardState;
  for (const record of pending) {
    const start = record.entries[0]?.index;
    if (start !== undefined) {
      const last = compacted.index + held.length;
      if (start <= compacted.index || start > last + 1) {
        throw new LogCorruptionError(
          path,
          `journal record ${record.seq}`,
          `its entries start at ${start}, which would leave a gap or rewrite compacted entries (held ${compacted.index + 1}..${last})`,
          start,
        );
      }
      held.length = start - compacted.index - 1;
      for (const entry of record.entries) held.push(entry);
      lowest = Math.min(lowest, start);
    }
    if (record.hardState !== null) state = record.hardState;
  }
  const lastAfter = compacted.index + held.length;
  for (let index = lastAfter + 1; index <= lastBefore; index++) ops.push({ type: 'del', key: entryKey(index) });
  for (let index = lowest; index <= lastAfter; index++) {
    ops.push({ type: 'put', key: entryKey(index), value: encodeEntry(held[index - compacted.index - 1] as Entry) });
  }
  if (state !== hardState) ops.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardState(state) });
  return { ops, hardState: state };
}
