/**
 * The subscriber: follows the CHANGES view as a durable consumer and keeps
 * the key directory in step with it, each entry applied exactly once across
 * crashes (README.md explains why it takes a journal as well as the
 * consumer's position).
 *
 * For each batch of entries:
 *   1. drop the entries at or below the journal's last index (applied before a crash);
 *   2. journal the others, and fsync;
 *   3. write or remove their key files (idempotent, fsync'd);
 *   4. commit the consumer's position: the batch's last index.
 * A crash between any two steps is repaired on start: a torn journal line
 * is cut off, the last journaled batch is applied to the files again, and
 * the entries the cluster delivers again (its position may lag the journal)
 * are dropped by step 1.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RaftLogClient, type SubscribedEntry } from '../../src/client/index.js';
import { BatchReader } from './batch-reader.js';
import { DirectoryLock } from './directory-lock.js';
import { Journal, type JournalEntry, lastBatch } from './journal.js';
import { KeyFileDirectory, type KeyState } from './key-files.js';

export const JOURNAL_FILE = 'journal.log';
export const KEYS_DIR = 'keys';
export const LOCK_FILE = 'lock';

export interface KeyFilesOptions {
  readonly endpoints: readonly string[];
  /** The directory of the view: the journal and the key directory. */
  readonly dir: string;
  /** The durable consumer whose position is committed. */
  readonly consumer: string;
  /** Where a consumer with no position starts. */
  readonly from: number;
  /** Only keys starting with these bytes (all when null). */
  readonly keyPrefix: Uint8Array | null;
  readonly maxBatchEntries: number;
  /**
   * The planted bug (RAFTLOG_EXAMPLE_BUG=skip-journal-check): entries at or
   * below the journal's last index are applied again instead of dropped.
   */
  readonly skipJournalCheck: boolean;
  /** Aborting it stops the subscriber once the batch under way is durable and committed. */
  readonly signal: AbortSignal;
  readonly print: (line: string) => void;
}

export interface KeyFilesSummary {
  /** Entries applied by this run. */
  readonly applied: number;
  /** Entries dropped because the journal held them already. */
  readonly skipped: number;
  /** The journal's last index when the run ended. */
  readonly lastApplied: number;
  /** The consumer's position as last committed by this run, or as found at start; null if it has none. */
  readonly committed: number | null;
}

/** The durable view as recovered on start, held by this process until close(). */
export interface RecoveredView {
  readonly journal: Journal;
  readonly keys: KeyFileDirectory;
  close(): Promise<void>;
}

/**
 * Takes the view's directory (one subscriber at a time) and repairs what a
 * crash may have left: a torn journal line is cut off, and the key files of
 * the last journaled batch are written again (a crash may have come before
 * or while they were).
 */
export async function recoverView(dir: string, print: (line: string) => void): Promise<RecoveredView> {
  await mkdir(dir, { recursive: true });
  const lock = await DirectoryLock.take(join(dir, LOCK_FILE));
  let journal: Journal | null = null;
  try {
    const keys = await KeyFileDirectory.open(join(dir, KEYS_DIR));
    const opened = await Journal.open(join(dir, JOURNAL_FILE));
    journal = opened.journal;
    const { recovered } = opened;
    if (recovered.tornBytes > 0) {
      print(`journal: cut off a torn last line (${recovered.tornBytes} bytes after offset ${recovered.completeBytes}); that entry was never applied`);
    }
    const batch = lastBatch(recovered.entries);
    await keys.apply(batch.flatMap(statesOf));
    const reapplied = batch.length === 0 ? '' : `; re-applied the key files of its last batch (indexes ${batch[0]?.index}..${batch.at(-1)?.index})`;
    print(`journal: ${recovered.entries.length} entries, last applied index ${journal.lastIndex}${reapplied}`);
    const held = journal;
    return {
      journal: held,
      keys,
      close: async () => {
        await held.close();
        await lock.release();
      },
    };
  } catch (error) {
    await journal?.close();
    await lock.release();
    throw error;
  }
}

/** Runs the subscriber until options.signal is aborted (resolves) or the subscription fails (rejects). */
export async function runKeyFiles(options: KeyFilesOptions): Promise<KeyFilesSummary> {
  const { consumer, print } = options;
  const view = await recoverView(options.dir, print);
  const { journal, keys } = view;
  const client = new RaftLogClient({ endpoints: options.endpoints, deadlineMs: 15_000 });
  let applied = 0;
  let skipped = 0;
  try {
    const position = await positionOf(client, consumer);
    let committed = position;
    if (position !== null && position > journal.lastIndex) {
      throw new Error(
        `consumer ${consumer} is at position ${position}, past the last entry journaled in ${journal.path} (${journal.lastIndex}): ` +
          `its entries were applied to another directory. Use that directory, or a new consumer name to build this one from the start`,
      );
    }
    if (options.skipJournalCheck) print("BUG ENABLED (skip-journal-check): entries at or below the journal's last index are applied again");
    print(
      position === null
        ? `consumer ${consumer} has no position: starting at index ${options.from}`
        : `consumer ${consumer} at position ${position}: resuming at ${position + 1}, ` +
            (options.skipJournalCheck
              ? `NOT dropping entries up to ${journal.lastIndex} (the bug)`
              : `dropping entries up to ${journal.lastIndex} (applied before)`),
    );

    const subscription = client.subscribe({
      consumer,
      from: options.from,
      view: 'changes',
      signal: options.signal,
      ...(options.keyPrefix === null ? {} : { keyPrefix: options.keyPrefix }),
    });
    const reader = new BatchReader(subscription, options.maxBatchEntries);
    try {
      for (let batch = await reader.next(); batch !== null; batch = await reader.next()) {
        const fresh = batch.filter((entry) => entry.changes.length > 0 && (options.skipJournalCheck || entry.index > journal.lastIndex));
        const applying = new Set(fresh);
        for (const entry of batch) {
          if (applying.has(entry)) continue;
          print(`skipped ${entry.index} (${entry.changes.length === 0 ? 'changed no key' : `journaled before: at or below ${journal.lastIndex}`})`);
        }
        skipped += batch.length - fresh.length;

        if (fresh.length > 0) {
          const entries = fresh.map((entry) => journalEntryOf(entry, (fresh[0] as SubscribedEntry).index));
          await journal.append(entries);
          await keys.apply(entries.flatMap(statesOf));
          for (const entry of entries) print(describeApplied(entry));
          applied += entries.length;
        }

        const through = (batch.at(-1) as SubscribedEntry).index;
        if (committed === null || through > committed) {
          try {
            committed = (await client.commitPosition(consumer, through)).position;
          } catch (error) {
            // The journal keeps the view right meanwhile: a later commit covers this batch too.
            print(`commit of position ${through} failed, left to the next batch: ${(error as Error).message}`);
          }
        }
      }
    } finally {
      await subscription.close();
    }
    return { applied, skipped, lastApplied: journal.lastIndex, committed };
  } finally {
    client.close();
    await view.close();
  }
}

/** The consumer's committed position, read linearizably; null when it has none. */
async function positionOf(client: RaftLogClient, consumer: string): Promise<number | null> {
  const { consumers } = await client.consumers({ deadlineMs: 30_000 });
  return consumers.find((status) => status.name === consumer)?.position ?? null;
}

function journalEntryOf(entry: SubscribedEntry, batch: number): JournalEntry {
  return { index: entry.index, batch, kind: entry.kind, changes: entry.changes.map(({ key, after }) => ({ key, after })) };
}

function statesOf(entry: JournalEntry): KeyState[] {
  return entry.changes.map((change) => ({ key: change.key, value: change.after }));
}

function describeApplied(entry: JournalEntry): string {
  const changes = entry.changes.map((change) => `${printableKey(change.key)}=${change.after === null ? 'deleted' : `${change.after.byteLength}B`}`);
  return `applied ${entry.index} ${entry.kind} ${changes.join(' ')}`;
}

function printableKey(key: Uint8Array): string {
  const text = Buffer.from(key).toString('utf8');
  return key.byteLength <= 64 && /^[\x21-\x7e]+$/.test(text)
    ? text
    : `0x${Buffer.from(key.subarray(0, 32)).toString('hex')}${key.byteLength > 32 ? '…' : ''}`;
}
