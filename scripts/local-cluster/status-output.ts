/** The status of the local cluster for people (a table) and for programs (`status --json`). */
import { showOptionalIndex, table } from '../../src/cli/format.js';
import type { ClusterReport, NodeReport } from './cluster-status.js';

const HEADER = ['NODE', 'ADDRESS', 'PID', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'FIRST', 'SNAPSHOT', 'DIGEST'];
const RIGHT_ALIGNED = new Set([2, 4, 6, 7, 8, 9]);
const SHORT_DIGEST = 12;

export function statusTable(report: ClusterReport): string[] {
  const up = report.nodes.filter((entry) => entry.state === 'up').length;
  const leader = report.leader === null ? 'none' : `${report.leader.id} (term ${report.leader.term})`;
  return [...table(HEADER, report.nodes.map(row), RIGHT_ALIGNED), '', `leader: ${leader}; ${up} of ${report.nodes.length} nodes up`];
}

function row(entry: NodeReport): string[] {
  const { id, address } = entry.node;
  const unknown = HEADER.slice(4).map(() => '-');
  if (entry.state === 'down') return [id, address, '-', 'down', ...unknown];
  if (entry.state === 'unreachable') return [id, address, String(entry.pid), 'unreachable', ...unknown];
  const { status } = entry;
  return [
    id,
    address,
    String(entry.pid),
    status.role,
    String(status.term),
    status.leader ?? '-',
    String(status.commitIndex),
    String(status.appliedIndex),
    showOptionalIndex(status.firstLogIndex),
    showOptionalIndex(status.snapshotIndex),
    status.digest === '' ? '-' : status.digest.slice(0, SHORT_DIGEST),
  ];
}

export interface NodeStatusJson {
  readonly id: string;
  readonly address: string;
  /** "up" (answered), "unreachable" (process runs, no answer) or "down" (no process). */
  readonly state: NodeReport['state'];
  readonly pid: number | null;
  readonly role: string | null;
  readonly term: number | null;
  readonly leader: string | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  /** The first index the node's log holds (entries before it were compacted into a snapshot). */
  readonly firstLogIndex: number | null;
  readonly lastLogIndex: number | null;
  /** The node's latest snapshot; 0 for none. */
  readonly snapshotIndex: number | null;
  readonly digest: string | null;
  readonly dataDir: string;
  readonly logFile: string;
  readonly error?: string;
}

export interface ClusterStatusJson {
  readonly dir: string;
  readonly leader: string | null;
  readonly term: number | null;
  readonly nodes: readonly NodeStatusJson[];
}

export function statusJson(dir: string, report: ClusterReport): ClusterStatusJson {
  return {
    dir,
    leader: report.leader?.id ?? null,
    term: report.leader?.term ?? null,
    nodes: report.nodes.map(nodeJson),
  };
}

function nodeJson(entry: NodeReport): NodeStatusJson {
  const { id, address, dataDir, logFile } = entry.node;
  const common = { id, address, state: entry.state, dataDir, logFile };
  const none = {
    role: null,
    term: null,
    leader: null,
    commitIndex: null,
    appliedIndex: null,
    firstLogIndex: null,
    lastLogIndex: null,
    snapshotIndex: null,
    digest: null,
  };
  if (entry.state === 'down') return { ...common, pid: null, ...none };
  if (entry.state === 'unreachable') return { ...common, pid: entry.pid, ...none, error: entry.reason };
  const { status } = entry;
  return {
    ...common,
    pid: entry.pid,
    role: status.role,
    term: status.term,
    leader: status.leader,
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    firstLogIndex: status.firstLogIndex,
    lastLogIndex: status.lastLogIndex,
    snapshotIndex: status.snapshotIndex,
    digest: status.digest,
  };
}
