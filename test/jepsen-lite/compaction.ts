/**
 * What a run did about snapshots and compaction: the settings passed to the
 * nodes, and per node what its log file and its final status show. A run
 * that claims to test compaction is only worth its verdict if snapshots were
 * really taken and installed; this is where that is read.
 */
import type { NodeFinal } from './checkers/log-checks.js';

/** The nodes' --snapshot-entries and --retain-entries; null: not passed, the node's default applies. */
export interface CompactionSettings {
  readonly snapshotEntries: number | null;
  readonly retainEntries: number | null;
}

/** Snapshot events in one node's log file, over all its lives in the run. */
export interface SnapshotEvents {
  /** Own snapshots taken and the log compacted behind them (`"event":"snapshot"`). */
  readonly taken: number;
  /** Snapshots sent to a follower that lacked compacted entries (`snapshot-sent`). */
  readonly sent: number;
  /** Leader snapshots installed (`snapshot-installed`): the follower's log had fallen behind the leader's window. */
  readonly installed: number;
  /** State restored from a snapshot at a restart (`snapshot-restored`). */
  readonly restored: number;
}

export interface NodeCompaction extends SnapshotEvents {
  readonly node: string;
  /** From the node's final status and log read. */
  readonly firstIndex: number;
  readonly snapshotIndex: number;
  readonly commitIndex: number;
}

export interface CompactionReport {
  readonly settings: CompactionSettings;
  readonly nodes: readonly NodeCompaction[];
}

/** The node flags for these settings: only what was asked for, so an unset one keeps the node's default. */
export function compactionArgs(settings: CompactionSettings): string[] {
  return [
    ...(settings.snapshotEntries === null ? [] : ['--snapshot-entries', String(settings.snapshotEntries)]),
    ...(settings.retainEntries === null ? [] : ['--retain-entries', String(settings.retainEntries)]),
  ];
}

/** For the settings table and the summary, e.g. "snapshot every 100 entries, retain 20". */
export function describeCompaction(settings: CompactionSettings): string {
  const { snapshotEntries: every, retainEntries: retain } = settings;
  if (every === 0) return 'never snapshot or compact';
  const snapshot = every === null ? 'snapshot at the node default interval' : `snapshot every ${every} entries`;
  const kept = retain === null ? 'retain the node default' : `retain ${retain}`;
  return every === null && retain === null ? 'node defaults' : `${snapshot}, ${kept}`;
}

const COUNTED: Readonly<Record<string, keyof SnapshotEvents>> = {
  snapshot: 'taken',
  'snapshot-sent': 'sent',
  'snapshot-installed': 'installed',
  'snapshot-restored': 'restored',
};

/** Counts the snapshot events in a node's pino log (JSON lines; other lines, such as a crash's stderr, are skipped). */
export function countSnapshotEvents(logText: string): SnapshotEvents {
  const counts = { taken: 0, sent: 0, installed: 0, restored: 0 };
  for (const line of logText.split('\n')) {
    if (!line.includes('"event":"snapshot')) continue;
    let event: unknown;
    try {
      event = (JSON.parse(line) as { event?: unknown }).event;
    } catch {
      continue;
    }
    const field = typeof event === 'string' ? COUNTED[event] : undefined;
    if (field !== undefined) counts[field]++;
  }
  return counts;
}

export function compactionReport(settings: CompactionSettings, finals: readonly NodeFinal[], logs: ReadonlyMap<string, string>): CompactionReport {
  return {
    settings,
    nodes: finals.map((f) => ({
      node: f.node,
      ...countSnapshotEvents(logs.get(f.node) ?? ''),
      firstIndex: f.firstIndex,
      snapshotIndex: f.snapshotIndex,
      commitIndex: f.commitIndex,
    })),
  };
}

/** One line per run: the settings, then per node its snapshots and the window it ended with. */
export function formatCompaction(report: CompactionReport): string {
  const perNode = report.nodes.map(
    (n) =>
      `${n.node} ${n.taken} taken, ${n.installed} installed, ${n.sent} sent, log ${n.firstIndex}..${n.commitIndex}` +
      (n.snapshotIndex > 0 ? ` over snapshot ${n.snapshotIndex}` : ''),
  );
  return `${describeCompaction(report.settings)}; ${perNode.join('; ')}`;
}
