import { parseArgs } from 'node:util';
import pino from 'pino';
import type { NodeId } from '../raft/types.js';
import { CHANGE_HISTORY_DEFAULTS } from './change-history.js';
import { NODE_DEFAULTS, RaftNode } from './raft-node.js';

/** Compaction defaults (issue 9); etcd keeps a similar catch-up window behind its snapshots. */
export const COMPACTION_DEFAULTS = { snapshotEntries: 10_000, retainEntries: 5_000 } as const;

export const NODE_USAGE = `usage: raftlog node --id ID --listen HOST:PORT (--peers ID=HOST:PORT,... | --join HOST:PORT,...) --data DIR
       [--cluster NAME] [--tick-ms ${NODE_DEFAULTS.tickMs}] [--election-ticks ${NODE_DEFAULTS.electionTicks}]
       [--heartbeat-ticks ${NODE_DEFAULTS.heartbeatTicks}] [--log-level info]
       [--snapshot-entries ${COMPACTION_DEFAULTS.snapshotEntries}] [--retain-entries ${COMPACTION_DEFAULTS.retainEntries}]
       [--max-uncommitted-bytes ${NODE_DEFAULTS.maxUncommittedBytes}] [--max-writes-in-progress ${NODE_DEFAULTS.maxWritesInProgress}]
       [--max-write-wait-ms ${NODE_DEFAULTS.maxWriteWaitMs}] [--change-history-entries ${CHANGE_HISTORY_DEFAULTS.entries}]

Runs one raftlog server: Raft with its peers and the client API on HOST:PORT.
--peers lists every member of a new cluster, this node included. --join instead
names members of a running cluster: the node (with an empty data dir) waits to be
added (raftlog member add ID HOST:PORT --learner), then catches up; a node
removed from its cluster exits. Logs are JSON lines on stdout.
--snapshot-entries N  snapshot the state machine once N entries were applied since
                      the last snapshot, then compact the log; 0 = never snapshot or compact.
--retain-entries M    log entries kept behind the snapshot, so slow followers and
                      readers catch up from the log rather than by InstallSnapshot.
--max-uncommitted-bytes B  as leader, refuse writes with RESOURCE_EXHAUSTED (nothing
                      written; clients retry after a pause) while B bytes of writes
                      wait to commit (a slow or cut-off quorum).
--max-writes-in-progress N  fsync'd log writes in flight at once: the node takes
                      new work from Raft while up to N writes are on their way, and
                      writes queued behind a busy disk share one batch (one fsync).
                      1 = one write at a time.
--max-write-wait-ms MS  as leader, refuse writes with RESOURCE_EXHAUSTED while the
                      oldest waiting write has waited MS to commit (load above
                      capacity): admitted writes keep a bounded latency. 0 = never.
--change-history-entries N  what the last N key-changing entries did (before and
                      after values) is kept in memory for Subscribe's CHANGES view
                      (also at most ${CHANGE_HISTORY_DEFAULTS.bytes / 1024 / 1024} MiB); only entries applied since the node started.
                      0 = no CHANGES view (every such subscription gets OUT_OF_RANGE).
SIGTERM or SIGINT stops it gracefully.`;

export class UsageError extends Error {}

export interface NodeCommandOptions {
  readonly id: NodeId;
  readonly listen: string;
  readonly peers: Map<NodeId, string>;
  /** --join: client endpoints of a running cluster to join (then `peers` holds only this node). */
  readonly join?: readonly string[];
  readonly dataDir: string;
  readonly cluster: string;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly logLevel: string;
  /** Applied entries between snapshots; 0 = never snapshot or compact. */
  readonly snapshotEntries: number;
  /** Entries kept behind the latest snapshot. */
  readonly retainEntries: number;
  readonly maxUncommittedBytes: number;
  readonly maxWritesInProgress: number;
  readonly maxWriteWaitMs: number;
  readonly changeHistoryEntries: number;
}

export function parseNodeArgs(args: readonly string[]): NodeCommandOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        id: { type: 'string' },
        listen: { type: 'string' },
        peers: { type: 'string' },
        join: { type: 'string' },
        data: { type: 'string' },
        cluster: { type: 'string', default: NODE_DEFAULTS.cluster },
        'tick-ms': { type: 'string', default: String(NODE_DEFAULTS.tickMs) },
        'election-ticks': { type: 'string', default: String(NODE_DEFAULTS.electionTicks) },
        'heartbeat-ticks': { type: 'string', default: String(NODE_DEFAULTS.heartbeatTicks) },
        'log-level': { type: 'string', default: 'info' },
        'snapshot-entries': { type: 'string', default: String(COMPACTION_DEFAULTS.snapshotEntries) },
        'retain-entries': { type: 'string', default: String(COMPACTION_DEFAULTS.retainEntries) },
        'max-uncommitted-bytes': { type: 'string', default: String(NODE_DEFAULTS.maxUncommittedBytes) },
        'max-writes-in-progress': { type: 'string', default: String(NODE_DEFAULTS.maxWritesInProgress) },
        'max-write-wait-ms': { type: 'string', default: String(NODE_DEFAULTS.maxWriteWaitMs) },
        'change-history-entries': { type: 'string', default: String(CHANGE_HISTORY_DEFAULTS.entries) },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const required = (name: 'id' | 'listen' | 'peers' | 'data'): string => {
    const value = values[name];
    if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
    return value;
  };
  const id = required('id');
  if (values.join !== undefined && values.peers !== undefined) {
    throw new UsageError('give either --peers (a new cluster) or --join (a running one), not both');
  }
  let peers: Map<NodeId, string>;
  let join: string[] | undefined;
  if (values.join !== undefined) {
    join = values.join.split(',').map((e) => e.trim()).filter(Boolean);
    const bad = join.find((endpoint) => !/^[^=\s]+:\d+$/.test(endpoint));
    if (join.length === 0 || bad !== undefined) throw new UsageError(`--join takes HOST:PORT,... of running members; got "${values.join}"`);
    peers = new Map([[id, required('listen')]]);
  } else {
    peers = parsePeers(required('peers'));
    if (!peers.has(id)) throw new UsageError(`--peers must include this node (${id}); got ${[...peers.keys()].join(', ')}`);
  }
  const positive = (name: 'tick-ms' | 'election-ticks' | 'heartbeat-ticks'): number => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${values[name]}`);
    return n;
  };
  const nonNegative = (
    name: 'snapshot-entries' | 'retain-entries' | 'max-uncommitted-bytes' | 'max-writes-in-progress' | 'max-write-wait-ms' | 'change-history-entries',
  ): number => {
    const text = values[name];
    // Number() would take '', '1e3' and '0x10'; a count of entries is plain digits.
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} must be a non-negative integer, got "${text}"`);
    return n;
  };
  const atLeastOne = (name: 'max-uncommitted-bytes' | 'max-writes-in-progress'): number => {
    const n = nonNegative(name);
    if (n < 1) throw new UsageError(`--${name} must be at least 1, got "${values[name]}"`);
    return n;
  };
  return {
    id,
    listen: required('listen'),
    peers,
    dataDir: required('data'),
    cluster: values.cluster,
    tickMs: positive('tick-ms'),
    electionTicks: positive('election-ticks'),
    heartbeatTicks: positive('heartbeat-ticks'),
    logLevel: values['log-level'],
    snapshotEntries: nonNegative('snapshot-entries'),
    retainEntries: nonNegative('retain-entries'),
    maxUncommittedBytes: atLeastOne('max-uncommitted-bytes'),
    maxWritesInProgress: atLeastOne('max-writes-in-progress'),
    maxWriteWaitMs: nonNegative('max-write-wait-ms'),
    changeHistoryEntries: nonNegative('change-history-entries'),
    ...(join !== undefined ? { join } : {}),
  };
}

export function parsePeers(text: string): Map<NodeId, string> {
  const peers = new Map<NodeId, string>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^([A-Za-z0-9_.-]+)=([^=\s]+:\d+)$/.exec(part);
    if (match === null) throw new UsageError(`--peers entry "${part}" is not ID=HOST:PORT`);
    const [, id, address] = match as unknown as [string, string, string];
    if (peers.has(id)) throw new UsageError(`--peers names ${id} twice`);
    peers.set(id, address);
  }
  if (peers.size === 0) throw new UsageError('--peers is empty');
  return peers;
}

/** Runs a node until SIGTERM/SIGINT. Returns the process exit code. */
export async function runNode(args: readonly string[]): Promise<number> {
  let options: NodeCommandOptions;
  try {
    options = parseNodeArgs(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`raftlog node: ${error.message}\n\n${NODE_USAGE}\n`);
      return 2;
    }
    throw error;
  }
  const logger = pino({ level: options.logLevel, base: { pid: process.pid } });
  let removal: (reason: string) => void = () => undefined;
  const removed = new Promise<string>((resolve) => (removal = resolve));
  let node: RaftNode;
  try {
    node = await RaftNode.start({ ...options, logger, onRemoved: (reason) => removal(reason) });
  } catch (error) {
    logger.fatal({ event: 'start-failed', err: error }, (error as Error).message);
    process.stderr.write(`raftlog node ${options.id}: ${(error as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ event: 'signal', signal }, 'stopping');
      node.stop().then(
        () => resolve(0),
        (error: unknown) => {
          logger.error({ event: 'stop-failed', err: error }, 'stop failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // A member removed from the cluster has nothing left to do: it stops and the process exits cleanly.
    void removed.then((reason) => {
      process.stderr.write(`raftlog node ${options.id}: ${reason}; stopping\n`);
      stop('removed');
    });
  });
}
