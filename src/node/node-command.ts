import { parseArgs } from 'node:util';
import pino from 'pino';
import { parseHostPort } from '../api/host-port.js';
import type { NodeId } from '../raft/types.js';
import { CHANGE_HISTORY_DEFAULTS } from './change-history.js';
import { FAILPOINTS_LISTEN_VARIABLE, Failpoints } from './failpoints.js';
import { AUTO_SNAPSHOTS } from './node-snapshots.js';
import { type JournalMode, NODE_DEFAULTS, RaftNode } from './raft-node.js';
import type { NodeTlsFiles } from './tls-config.js';

/** Compaction defaults (issue 9); etcd keeps a similar catch-up window behind its snapshots. */
export const COMPACTION_DEFAULTS = { snapshotEntries: 'auto', retainEntries: 5_000 } as const;

export const NODE_USAGE = `usage: raftlog node --id ID --listen HOST:PORT (--peers ID=HOST:PORT,... | --join HOST:PORT,...) --data DIR
       [--cluster NAME] [--tick-ms ${NODE_DEFAULTS.tickMs}] [--election-ticks ${NODE_DEFAULTS.electionTicks}]
       [--heartbeat-ticks ${NODE_DEFAULTS.heartbeatTicks}] [--log-level info]
       [--snapshot-entries ${COMPACTION_DEFAULTS.snapshotEntries}] [--retain-entries ${COMPACTION_DEFAULTS.retainEntries}]
       [--max-uncommitted-bytes ${NODE_DEFAULTS.maxUncommittedBytes}] [--max-writes-in-progress ${NODE_DEFAULTS.maxWritesInProgress}]
       [--max-write-wait-ms ${NODE_DEFAULTS.maxWriteWaitMs}] [--change-history-entries ${CHANGE_HISTORY_DEFAULTS.entries}]
       [--commit-notice-ms ${NODE_DEFAULTS.commitNoticeDelayMs}] [--journal on|followers|off]
       [--hold-without-leader-ms MS]
       [--metrics-listen HOST:PORT]
       [--tls-cert FILE --tls-key FILE [--tls-ca FILE]]

Runs one raftlog server: Raft with its peers and the client API on HOST:PORT.
--peers lists every member of a new cluster, this node included. --join instead
names members of a running cluster: the node (with an empty data dir) waits to be
added (raftlog member add ID HOST:PORT --learner), then catches up; a node
removed from its cluster exits. Logs are JSON lines on stdout.
--snapshot-entries auto|N  auto (default): snapshot the state machine once the log
                      since the last snapshot holds ${AUTO_SNAPSHOTS.minEntries.toLocaleString('en-US')} entries and
                      ${AUTO_SNAPSHOTS.logToSnapshot} times the last snapshot's bytes (or ${AUTO_SNAPSHOTS.maxEntries.toLocaleString('en-US')} entries or
                      ${AUTO_SNAPSHOTS.maxLogBytes / 1024 / 1024} MiB), then compact the log: writing snapshots costs
                      the disk at most a quarter of the log's own writes. N: once N
                      entries were applied since the last snapshot; 0 = never
                      snapshot or compact.
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
--commit-notice-ms MS  as leader, let an append without entries (which tells a
                      follower its new commit index) wait up to MS for the next
                      append to it, which carries the commit index too: a client
                      writing one at a time then wakes each follower one time fewer
                      per write. Followers apply up to MS later when writes stop.
                      0 = send it at once.
--journal on|followers|off  on (default): log writes are made durable in the data
                      directory's journal/ (an append and fdatasync) and handed to
                      LevelDB without fsync afterwards: a follower's on its main
                      thread, answered at once; a leader's on the disk queue, the
                      fdatasync on another thread while its appends travel.
                      followers: only a follower's; a leader's are fsync'd LevelDB
                      batches. off: every write is a fsync'd LevelDB batch on the
                      disk queue, answered when it completes.
--change-history-entries N  what the last N key-changing entries did (before and
                      after values) is kept in memory for Subscribe's CHANGES view
                      (also at most ${CHANGE_HISTORY_DEFAULTS.bytes / 1024 / 1024} MiB); only entries applied since the node started.
                      0 = no CHANGES view (every such subscription gets OUT_OF_RANGE).
--hold-without-leader-ms MS  a client request that cannot be served now because the
                      leadership is changing waits up to MS (and its own deadline) for
                      a steady leader before it is answered UNAVAILABLE: while no leader
                      is known (an election), while the leader hands over (or has just
                      handed over and refused a forwarded call), and while the leader
                      cannot be reached. Default: 10 election timeouts
                      (${10 * NODE_DEFAULTS.electionTicks * NODE_DEFAULTS.tickMs} ms with the default ticks). 0 = answer at once.
--metrics-listen HOST:PORT  serve Prometheus metrics over plain HTTP at
                      http://HOST:PORT/metrics (port 0: any free port, named in the
                      start log line). Absent: no metrics server.
--tls-cert FILE --tls-key FILE  serve HOST:PORT (clients and peers) with TLS, with this
                      certificate (PEM, optionally followed by intermediates) and its key;
                      the node's own connections to peers check them against --tls-ca.
--tls-ca FILE         mutual TLS: clients and peers must present a certificate this CA
                      signed, and a peer's must name the member it speaks for (the URI
                      urn:raftlog:node:ID among its subject alternative names; this
                      node's own certificate must name --id). Without TLS flags, any
                      process that reaches HOST:PORT can send Raft messages.
SIGTERM or SIGINT stops it gracefully; a leader first hands leadership to its most
caught-up voter and lets its writes in flight be answered (5 election timeouts at most).`;

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
  /** Applied entries between snapshots; 0 = never snapshot or compact; 'auto' = AUTO_SNAPSHOTS. */
  readonly snapshotEntries: number | 'auto';
  /** Entries kept behind the latest snapshot. */
  readonly retainEntries: number;
  readonly maxUncommittedBytes: number;
  readonly maxWritesInProgress: number;
  /** --journal (RaftNodeOptions.journal). */
  readonly journal: JournalMode;
  readonly maxWriteWaitMs: number;
  readonly changeHistoryEntries: number;
  /** --commit-notice-ms (RaftNodeOptions.commitNoticeDelayMs). */
  readonly commitNoticeDelayMs: number;
  /** --metrics-listen: where /metrics is served; absent, no metrics server. */
  readonly metricsListen?: string;
  /** Absent: the node's default (10 election timeouts). */
  readonly holdWithoutLeaderMs?: number;
  /** --tls-cert, --tls-key, --tls-ca; absent: plaintext. */
  readonly tls?: NodeTlsFiles;
}

/** The flags of `raftlog node` as parseArgs reads them (strings; checked by parseNodeArgs). */
function parseNodeFlags(args: readonly string[]) {
  return parseArgs({
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
      journal: { type: 'string', default: NODE_DEFAULTS.journal },
      'change-history-entries': { type: 'string', default: String(CHANGE_HISTORY_DEFAULTS.entries) },
      'commit-notice-ms': { type: 'string', default: String(NODE_DEFAULTS.commitNoticeDelayMs) },
      'metrics-listen': { type: 'string' },
      'hold-without-leader-ms': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
    },
    strict: true,
  });
}

export function parseNodeArgs(args: readonly string[]): NodeCommandOptions {
  let values: ReturnType<typeof parseNodeFlags>['values'];
  try {
    ({ values } = parseNodeFlags(args));
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
    join = values.join
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
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
    name:
      | 'snapshot-entries'
      | 'retain-entries'
      | 'max-uncommitted-bytes'
      | 'max-writes-in-progress'
      | 'max-write-wait-ms'
      | 'change-history-entries'
      | 'commit-notice-ms'
      | 'hold-without-leader-ms',
    expected = 'a non-negative integer',
  ): number => {
    const text = values[name] ?? '';
    // Number() would take '', '1e3' and '0x10'; a count of entries is plain digits.
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} must be ${expected}, got "${text}"`);
    return n;
  };
  const snapshotEntries = (): number | 'auto' =>
    values['snapshot-entries'] === 'auto' ? 'auto' : nonNegative('snapshot-entries', 'auto or a non-negative integer');
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
    snapshotEntries: snapshotEntries(),
    retainEntries: nonNegative('retain-entries'),
    maxUncommittedBytes: atLeastOne('max-uncommitted-bytes'),
    maxWritesInProgress: atLeastOne('max-writes-in-progress'),
    journal: journalMode(values.journal),
    maxWriteWaitMs: nonNegative('max-write-wait-ms'),
    changeHistoryEntries: nonNegative('change-history-entries'),
    commitNoticeDelayMs: nonNegative('commit-notice-ms'),
    ...(values['hold-without-leader-ms'] !== undefined ? { holdWithoutLeaderMs: nonNegative('hold-without-leader-ms') } : {}),
    ...(join !== undefined ? { join } : {}),
    ...metricsListen(values['metrics-listen'], required('listen')),
    ...tlsFiles(values['tls-cert'], values['tls-key'], values['tls-ca']),
  };
}

function journalMode(text: string): JournalMode {
  if (text === 'on' || text === 'followers' || text === 'off') return text;
  throw new UsageError(`--journal takes on, followers or off, got "${text}"`);
}

function tlsFiles(cert: string | undefined, key: string | undefined, ca: string | undefined): { tls?: NodeTlsFiles } {
  if (cert === undefined && key === undefined && ca === undefined) return {};
  if (cert === undefined || key === undefined || cert === '' || key === '') {
    throw new UsageError(
      `TLS needs both --tls-cert and --tls-key (and --tls-ca for mutual TLS); got ${cert === undefined || cert === '' ? '' : '--tls-cert '}${key === undefined || key === '' ? '' : '--tls-key '}${ca === undefined ? '' : '--tls-ca'}`.trimEnd(),
    );
  }
  if (ca === '') throw new UsageError('--tls-ca is empty');
  return { tls: ca === undefined ? { cert, key } : { cert, key, ca } };
}

function metricsListen(address: string | undefined, listen: string): { metricsListen?: string } {
  if (address === undefined) return {};
  if (parseHostPort(address) === null) {
    throw new UsageError(`--metrics-listen takes HOST:PORT (e.g. 127.0.0.1:9101, [::1]:9101, 0.0.0.0:9101; port 0..65535), got "${address}"`);
  }
  // Port 0 twice is two ports; anything else twice is one.
  if (address === listen && parseHostPort(address)?.port !== 0)
    throw new UsageError(`--metrics-listen must differ from --listen (${listen}): gRPC serves there`);
  return { metricsListen: address };
}

export function parsePeers(text: string): Map<NodeId, string> {
  const peers = new Map<NodeId, string>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^([A-Za-z0-9_.-]+)=([^=\s]+:\d+)$/.exec(part);
    if (match === null) throw new UsageError(`--peers entry "${part}" is not ID=HOST:PORT`);
    const [, id, address] = match as unknown as [string, string, string];
    if (peers.has(id)) throw new UsageError(`--peers names ${id} twice`);
    peers.set(id, address);
  }
  if (peers.size === 0) throw new UsageError('--peers is empty');
  return peers;
}

/**
 * Runs a node until SIGTERM/SIGINT, its removal from the cluster, or a
 * fail-stop. Returns the process exit code: 1 when the node fail-stopped
 * (even during a graceful stop) or did not stop cleanly, else 0.
 */
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
  let failure: (reason: string) => void = () => undefined;
  const failed = new Promise<string>((resolve) => (failure = resolve));
  let node: RaftNode;
  try {
    const failpoints = Failpoints.fromEnvironment(process.env, logger);
    const control = process.env[FAILPOINTS_LISTEN_VARIABLE];
    if (failpoints !== null && control !== undefined) await failpoints.listen(control);
    node = await RaftNode.start({ ...options, logger, failpoints, onRemoved: (reason) => removal(reason), onFatal: (reason) => failure(reason) });
  } catch (error) {
    logger.fatal({ event: 'start-failed', err: error }, (error as Error).message);
    process.stderr.write(`raftlog node ${options.id}: ${(error as Error).message}\n`);
    return 1;
  }
  // One stop, whatever asks for it first: a second signal, or a fail-stop during the handover, waits for the same end.
  let exit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (exit = resolve));
  let stopping = false;
  const stop = (why: string): void => {
    logger.info({ event: 'signal', signal: why }, stopping ? 'already stopping' : 'stopping');
    if (stopping) return;
    stopping = true;
    void (async () => {
      try {
        // A leader hands over first: the others need not wait an election timeout to notice it is gone.
        await node.handOverLeadership();
        await node.stop();
      } catch {
        // stop() logged why.
        return 1;
      }
      // A fail-stop at any time, during this stop included, is a failure of the process.
      return node.fatal === null ? 0 : 1;
    })().then(exit);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // A member removed from the cluster has nothing left to do: it stops and the process exits cleanly.
  void removed.then((reason) => {
    process.stderr.write(`raftlog node ${options.id}: ${reason}; stopping\n`);
    stop('removed');
  });
  // A node that fail-stopped is stopping already; this waits for it to finish and exits 1.
  void failed.then((reason) => {
    process.stderr.write(`raftlog node ${options.id}: ${reason}; stopping\n`);
    stop('fatal');
  });
  return await exited;
}
