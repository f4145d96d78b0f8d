/**
 * A node's snapshots: taking its own on a schedule and compacting the log
 * behind them, restoring the latest at start, sending the latest to
 * followers the leader's core names, and installing the ones that arrive from
 * a leader. The core decides when a follower needs a snapshot and when one
 * that arrived is to be installed; this module does the file work around it.
 */
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { LevelLogStorage, SnapshotFileRef } from '../log/level-storage.js';
import { INCOMING_DIR, syncDirectory } from '../log/snapshot-files.js';
import type { ClusterConfig, Entry, InstallSnapshot, NodeId, SnapshotMeta } from '../raft/types.js';
import type { Failpoints } from './failpoints.js';
import { readKvSnapshot, readSnapshotHeader, SnapshotCorruptionError, snapshotFileName, writeKvSnapshot } from './kv-snapshot.js';
import { KvStateMachine } from './kv-state-machine.js';
import type { NodeMetrics } from './metrics.js';
import type { ReceivedSnapshot, SnapshotSender } from './snapshot-transfer.js';
import { learnerMark } from './wire-codec.js';

/** The snapshot events a node's metrics count. */
export type SnapshotMetrics = Pick<NodeMetrics, 'snapshotTaken' | 'snapshotTakeFailed' | 'snapshotSent' | 'snapshotReceived' | 'snapshotInstalled'>;

const secondsSince = (startedMs: number): number => (performance.now() - startedMs) / 1000;

/** When a node snapshots its own state machine and how much log it keeps behind a snapshot. */
export interface SnapshotPolicy {
  /**
   * Snapshot once this many entries were applied since the latest snapshot;
   * 0: never (nor compact); 'auto': as AUTO_SNAPSHOTS says (snapshotDue).
   */
  readonly everyEntries: number | 'auto';
  /** Entries kept behind the snapshot for slow followers and log readers. */
  readonly retainEntries: number;
}

export const SNAPSHOT_POLICY_DEFAULTS: SnapshotPolicy = { everyEntries: 'auto', retainEntries: 5_000 };

/**
 * The 'auto' policy. Writing a snapshot writes the whole state, so a fixed
 * count of entries makes the snapshots cost the disk as much as the log
 * itself once the state is as large as that many entries (10,000 Puts of
 * 100-byte values beside a 10,000-key state: about 1.1 MB of log for a
 * 1.15 MB snapshot). The Raft dissertation (section 5.1.1) sizes the interval in
 * bytes instead, well above the snapshot's size: here the log since the
 * latest snapshot must hold `logToSnapshot` times its bytes, so snapshots
 * cost at most a quarter of the log's writes. `minEntries` keeps small
 * states from snapshotting on every few entries; `maxEntries` and
 * `maxLogBytes` bound the log a node keeps in memory when the state is large.
 */
export const AUTO_SNAPSHOTS = { minEntries: 10_000, maxEntries: 100_000, logToSnapshot: 4, maxLogBytes: 64 * 1024 * 1024 } as const;

/** What was applied since the latest snapshot: entries, and the bytes of their data. */
export interface AppliedSince {
  readonly entries: number;
  readonly bytes: number;
}

/** Whether a node that applied `since` after its latest snapshot (of `latestBytes`; 0 if none) should take the next one. */
export function snapshotDue(policy: SnapshotPolicy, since: AppliedSince, latestBytes: number): boolean {
  const every = policy.everyEntries;
  if (every === 0) return false;
  if (every !== 'auto') return since.entries >= every;
  if (since.entries < AUTO_SNAPSHOTS.minEntries) return false;
  if (since.entries >= AUTO_SNAPSHOTS.maxEntries) return true;
  return since.bytes >= Math.min(AUTO_SNAPSHOTS.logToSnapshot * latestBytes, AUTO_SNAPSHOTS.maxLogBytes);
}

/** A snapshot of this node's own state, written in the background, until it is recorded (or dropped). */
interface WrittenSnapshot {
  readonly ref: SnapshotFileRef;
  /** NodeSnapshots.appliedBytes when the state was captured. */
  readonly appliedBytes: number;
}

/**
 * Restores the state machine from the log's latest snapshot (or starts it
 * empty). A damaged snapshot file stops the node with its path: the entries it
 * covers are compacted, so there is nothing to fall back to.
 */
export async function restoreStateMachine(storage: LevelLogStorage, logger: Logger): Promise<KvStateMachine> {
  const ref = storage.snapshotFile();
  if (ref === null) return new KvStateMachine();
  const path = join(storage.snapshotDir, ref.file);
  const started = performance.now();
  const restored = await readKvSnapshot(path);
  if (restored.meta.index !== ref.meta.index || restored.meta.term !== ref.meta.term) {
    throw new SnapshotCorruptionError(
      path,
      `the file holds snapshot ${restored.meta.index}/${restored.meta.term}, the log recorded ${ref.meta.index}/${ref.meta.term}`,
    );
  }
  logger.info(
    {
      event: 'snapshot-restored',
      index: ref.meta.index,
      term: ref.meta.term,
      file: path,
      bytes: ref.bytes,
      keys: restored.kv.size,
      ms: Math.round(performance.now() - started),
    },
    `state machine restored from snapshot ${ref.meta.index}`,
  );
  return restored.kv;
}

export class NodeSnapshots {
  /** The background write of this node's own next snapshot, while it runs. */
  private writing: Promise<void> | null = null;
  private written: WrittenSnapshot | null = null;
  /** Snapshots that arrived whole from a leader, by index/term, until the core asks for them or moves past them. */
  private readonly received = new Map<string, ReceivedSnapshot>();
  private readonly incomingDir: string;
  /** Bytes of entry data applied since this process started, and that count where the latest snapshot stands. */
  private appliedBytes = 0;
  private appliedBytesAtLatest = 0;

  constructor(
    private readonly id: NodeId,
    private readonly storage: LevelLogStorage,
    private readonly policy: SnapshotPolicy,
    private readonly sender: SnapshotSender,
    private readonly logger: Logger,
    private readonly metrics?: SnapshotMetrics,
    private readonly failpoints: Failpoints | null = null,
  ) {
    this.incomingDir = join(storage.snapshotDir, INCOMING_DIR);
  }

  get incomingDirectory(): string {
    return this.incomingDir;
  }

  // ------------------------------------------------------------ own snapshots

  /**
   * Starts writing a snapshot of `kv` once enough was applied since the latest
   * one. The state is captured now (applies go on meanwhile); the file is
   * written in the background, then `onWritten` has the caller queue
   * `recordWritten` behind the log writes already queued (those of the entries
   * the snapshot covers among them). `term` is the term of the entry at
   * kv.appliedIndex, `config` the configuration in force there. Returns
   * whether it started one.
   */
  maybeStart(kv: KvStateMachine, term: number | null, config: ClusterConfig, onWritten: () => void): boolean {
    if (this.writing !== null || this.written !== null) return false;
    const latest = this.storage.snapshotFile();
    const index = kv.appliedIndex;
    const since = { entries: index - (latest?.meta.index ?? 0), bytes: this.appliedBytes - this.appliedBytesAtLatest };
    if (index === 0 || !snapshotDue(this.policy, since, latest?.bytes ?? 0)) return false;
    const appliedBytes = this.appliedBytes;
    if (term === null) {
      throw new Error(`node ${this.id}: applied index ${index} has no term in the log; cannot snapshot there`);
    }
    const meta: SnapshotMeta = { index, term, config };
    const started = performance.now();
    const failpoints = this.failpoints;
    const atFailpoint = failpoints === null ? undefined : () => failpoints.hit('snapshot-write');
    this.writing = writeKvSnapshot(this.storage.snapshotDir, kv, meta, atFailpoint).then(
      (info) => {
        this.writing = null;
        this.written = { ref: { meta, file: info.file, bytes: info.bytes, sha256: info.sha256 }, appliedBytes };
        this.metrics?.snapshotTaken(secondsSince(started));
        this.logger.debug(
          { event: 'snapshot-written', index, term, bytes: info.bytes, ms: Math.round(performance.now() - started) },
          `snapshot ${index} written`,
        );
        onWritten();
      },
      (error: unknown) => {
        this.writing = null;
        this.metrics?.snapshotTakeFailed();
        // A snapshot is an optimisation: the log still holds everything. Log it and try again later.
        this.logger.error({ event: 'snapshot-write-failed', index, err: error }, `writing snapshot ${index} failed`);
      },
    );
    return true;
  }

  /**
   * Records the snapshot written in the background as the latest and deletes
   * the log behind it but for the retained window, in one durable write (the
   * entries themselves are deleted in the background). Runs on the node's
   * disk queue, never beside a save. A snapshot
   * overtaken by one installed from the leader meanwhile is dropped.
   */
  async recordWritten(): Promise<void> {
    const written = this.written;
    if (written === null) return;
    try {
      if (await this.record(written.ref)) this.appliedBytesAtLatest = written.appliedBytes;
    } finally {
      // Only now may the next snapshot start: until the record is stored, the policy measures from the previous one.
      this.written = null;
    }
  }

  /** Records `ref` and compacts; false when it was dropped (a newer snapshot got there first). */
  private async record(ref: SnapshotFileRef): Promise<boolean> {
    const { meta } = ref;
    const latest = this.storage.snapshot();
    if ((latest !== null && meta.index <= latest.index) || meta.index < this.storage.firstIndex() - 1) {
      await rm(join(this.storage.snapshotDir, ref.file), { force: true });
      return false;
    }
    const before = this.storage.firstIndex();
    const compactTo = Math.max(before - 1, meta.index - this.policy.retainEntries);
    await this.storage.saveSnapshot(ref, compactTo >= before ? compactTo : undefined);
    this.logger.info(
      {
        event: 'snapshot',
        index: meta.index,
        term: meta.term,
        bytes: ref.bytes,
        compactedTo: compactTo,
        firstIndex: this.storage.firstIndex(),
        lastIndex: this.storage.lastIndex(),
        // What the history costs in memory once compacted: operators watch these stay flat.
        memory: memoryFigures(),
      },
      `snapshot at ${meta.index}; log now ${this.storage.firstIndex()}..${this.storage.lastIndex()}`,
    );
    return true;
  }

  /** Committed entries were applied to the state machine: their bytes count towards the next snapshot. */
  applied(entries: readonly Entry[]): void {
    for (const entry of entries) this.appliedBytes += entry.data.byteLength;
  }

  /** A leader's snapshot replaced the state machine: the log since it starts from nothing. */
  installed(): void {
    this.appliedBytesAtLatest = this.appliedBytes;
  }

  // ------------------------------------------------------------ sending

  /**
   * Sends a follower the latest snapshot (it may be newer than the one the
   * core named: older files are deleted once replaced). `done` reports the
   * outcome to the core.
   */
  send(message: InstallSnapshot, done: (ok: boolean) => void): void {
    const ref = this.storage.snapshotFile();
    if (ref === null || ref.meta.index < message.snapshot.index) {
      throw new Error(
        `node ${this.id} (term ${message.term}): the core asks to send snapshot ${message.snapshot.index} to ${message.to}, ` +
          `but the latest stored snapshot is ${ref === null ? 'none' : ref.meta.index}`,
      );
    }
    const path = join(this.storage.snapshotDir, ref.file);
    this.logger.info(
      { event: 'snapshot-send', peer: message.to, index: ref.meta.index, term: message.term, bytes: ref.bytes },
      `sending snapshot ${ref.meta.index} to ${message.to}`,
    );
    const sending = performance.now();
    const { to, term, toLearner } = message;
    this.sender.send({ to, term, meta: ref.meta, path, bytes: ref.bytes, sha256: ref.sha256, ...learnerMark(toLearner) }).then(
      (sent) => {
        this.metrics?.snapshotSent(true, secondsSince(sending), ref.bytes);
        this.logger.info(
          { event: 'snapshot-sent', peer: message.to, index: ref.meta.index, resumedFrom: sent.resumedFrom, sentBytes: sent.sentBytes },
          `snapshot ${ref.meta.index} delivered to ${message.to}`,
        );
        done(true);
      },
      (error: unknown) => {
        this.metrics?.snapshotSent(false, secondsSince(sending), 0);
        this.logger.warn(
          { event: 'snapshot-send-failed', peer: message.to, index: ref.meta.index, err: error },
          `sending snapshot ${ref.meta.index} to ${message.to} failed`,
        );
        done(false);
      },
    );
  }

  // ------------------------------------------------------------ receiving

  /**
   * A snapshot arrived whole and verified: keep it for the core's decision.
   * Returns the message to step, with the configuration the file's header
   * records (the offer names only the voters), or null if the file is not
   * the snapshot that was offered.
   */
  async arrived(offered: ReceivedSnapshot): Promise<InstallSnapshot | null> {
    let header: Awaited<ReturnType<typeof readSnapshotHeader>>;
    try {
      header = await readSnapshotHeader(offered.path);
    } catch (error) {
      this.logger.error({ event: 'snapshot-unreadable', peer: offered.from, file: offered.path, err: error }, 'a received snapshot cannot be read');
      await rm(offered.path, { force: true });
      return null;
    }
    if (header.meta.index !== offered.meta.index || header.meta.term !== offered.meta.term) {
      this.logger.error(
        { event: 'snapshot-mismatch', peer: offered.from, file: offered.path, offered: offered.meta, header: header.meta },
        `${offered.from} offered snapshot ${offered.meta.index}/${offered.meta.term} but sent ${header.meta.index}/${header.meta.term}`,
      );
      await rm(offered.path, { force: true });
      return null;
    }
    const snapshot = { ...offered, meta: header.meta };
    this.received.set(keyOf(snapshot.meta), snapshot);
    if (offered.receiveSeconds !== undefined) this.metrics?.snapshotReceived(offered.receiveSeconds, offered.bytes);
    this.logger.info(
      { event: 'snapshot-received', peer: snapshot.from, index: snapshot.meta.index, term: snapshot.term, bytes: snapshot.bytes },
      `snapshot ${snapshot.meta.index} received from ${snapshot.from}`,
    );
    return {
      type: 'InstallSnapshot',
      from: snapshot.from,
      to: this.id,
      term: snapshot.term,
      snapshot: snapshot.meta,
      ...learnerMark(offered.toLearner),
    };
  }

  /**
   * The core installs `meta`: moves the file that arrived into the snapshot
   * dir and reads the state machine from it, verified. Runs on the node's
   * disk queue, after the writes queued before it. The caller stores the
   * returned ref in the same write as the output's entries and hard state; a
   * crash before that leaves a file the log does not name, removed at open.
   */
  async prepareInstall(meta: SnapshotMeta): Promise<{ ref: SnapshotFileRef; kv: KvStateMachine }> {
    await this.failpoints?.hit('snapshot-install');
    const received = this.received.get(keyOf(meta));
    if (received === undefined) {
      throw new Error(`node ${this.id}: the core installs snapshot ${meta.index}/${meta.term}, which never arrived`);
    }
    const installing = performance.now();
    const file = snapshotFileName(meta);
    const path = join(this.storage.snapshotDir, file);
    await rename(received.path, path);
    await syncDirectory(this.storage.snapshotDir);
    const restored = await readKvSnapshot(path);
    if (restored.meta.index !== meta.index || restored.meta.term !== meta.term) {
      throw new SnapshotCorruptionError(
        path,
        `the file holds snapshot ${restored.meta.index}/${restored.meta.term}, the leader offered ${meta.index}/${meta.term}`,
      );
    }
    await this.forgetReceivedUpTo(meta.index);
    this.metrics?.snapshotInstalled(secondsSince(installing));
    return { ref: { meta, file, bytes: received.bytes, sha256: received.sha256 }, kv: restored.kv };
  }

  /** Deletes arrived snapshots the log has moved past: a newer one was installed, or the core had the entries. */
  async forgetReceivedUpTo(index: number): Promise<void> {
    for (const [key, snapshot] of this.received) {
      if (snapshot.meta.index > index) continue;
      this.received.delete(key);
      await rm(snapshot.path, { force: true });
    }
  }

  /** At start: arrived snapshots of an earlier life were never installed, and their senders will offer again. */
  async clearIncoming(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.incomingDir);
    } catch {
      return;
    }
    for (const name of names) if (name.endsWith('.snap')) await rm(join(this.incomingDir, name), { force: true });
  }

  /** Lets a snapshot being written finish (its file is then recorded at the next start, or removed as a leftover). */
  async close(): Promise<void> {
    await this.sender.close();
    await this.writing;
  }
}

function memoryFigures(): { rssMiB: number; heapUsedMiB: number; heapTotalMiB: number; externalMiB: number } {
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;
  return { rssMiB: mib(rss), heapUsedMiB: mib(heapUsed), heapTotalMiB: mib(heapTotal), externalMiB: mib(external) };
}

function keyOf(meta: SnapshotMeta): string {
  return `${meta.index}/${meta.term}`;
}
