import { spawn } from 'node:child_process';
import { request } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConsumerPosition } from '../../src/node/consumer-positions.js';
import { ClientError, NotLeaderError } from '../../src/node/errors.js';
import {
  MAX_LABELLED_CONSUMERS,
  type MetricsSource,
  NodeMetrics,
  type NodeVitals,
  type PeerLinkFigures,
  proposalOutcome,
  serveMetrics,
} from '../../src/node/metrics.js';
import { NODE_USAGE, parseNodeArgs, UsageError } from '../../src/node/node-command.js';
import type { RaftStatus } from '../../src/raft/types.js';
import { freePort } from '../support/process-cluster.js';
import { histogramProblems, parseExposition, sampleValue } from './metrics-exposition.js';

function status(overrides: Partial<RaftStatus> = {}): RaftStatus {
  return {
    id: 'n1',
    role: 'leader',
    term: 7,
    leader: 'n1',
    votedFor: 'n1',
    commitIndex: 120,
    appliedIndex: 118,
    firstIndex: 40,
    lastIndex: 125,
    snapshotIndex: 39,
    voters: ['n1', 'n2', 'n3'],
    learners: ['n4'],
    config: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] },
    configIndex: 0,
    member: true,
    progress: [
      { id: 'n1', matchIndex: 125, nextIndex: 126, state: 'replicate', pendingSnapshot: 0, inflight: 0, recentlyActive: true },
      { id: 'n2', matchIndex: 121, nextIndex: 126, state: 'replicate', pendingSnapshot: 0, inflight: 1, recentlyActive: true },
      { id: 'n3', matchIndex: 30, nextIndex: 31, state: 'snapshot', pendingSnapshot: 39, inflight: 0, recentlyActive: false },
    ],
    transferringTo: null,
    ...overrides,
  };
}

function link(peer: string, overrides: Partial<PeerLinkFigures> = {}): PeerLinkFigures {
  return {
    peer,
    state: 'ok',
    queued: 0,
    streaming: true,
    sentMessages: 0,
    failedCalls: 0,
    droppedOverflow: 0,
    droppedFailed: 0,
    foldedCommitNotices: 0,
    ...overrides,
  };
}

function consumer(name: string, position: number): ConsumerPosition {
  return { name, position, committedAtMs: 0, commitEntryIndex: position };
}

class FakeNode implements MetricsSource {
  vitalsRead = 0;
  constructor(
    public current: NodeVitals,
    public links: PeerLinkFigures[] = [],
    public positions: ConsumerPosition[] = [],
  ) {}
  vitals(): NodeVitals {
    this.vitalsRead++;
    return this.current;
  }
  peerLinks(): readonly PeerLinkFigures[] {
    return this.links;
  }
  consumers(): { consumers: readonly ConsumerPosition[] } {
    return { consumers: this.positions };
  }
}

const vitals = (overrides: Partial<RaftStatus> = {}, appliedIndex = 118): NodeVitals => ({
  status: status(overrides),
  appliedIndex,
  removed: false,
  stopped: false,
  leaderSilenceMs: 0,
});

async function scrape(metrics: NodeMetrics) {
  return parseExposition(await metrics.exposition());
}

describe('NodeMetrics: what a scrape shows', () => {
  it("reads the node's state at scrape time under raftlog_ names, each of its Prometheus type, with base units and _total counters", async () => {
    const node = new FakeNode(vitals(), [
      link('n2', { queued: 3, sentMessages: 900, failedCalls: 2, droppedOverflow: 5, foldedCommitNotices: 7 }),
      link('n3', { state: 'unreachable', streaming: false, failedCalls: 9, droppedFailed: 40 }),
    ]);
    const metrics = new NodeMetrics(() => node);
    const families = await scrape(metrics);

    for (const family of families.values()) {
      expect(family.name).toMatch(/^raftlog_[a-z_]+$/);
      expect(family.help).not.toBe('');
      if (family.type === 'counter') expect(family.name).toMatch(/_total$/);
      else expect(family.name).not.toMatch(/_total$/);
      if (family.type === 'histogram') {
        expect(family.name).toMatch(/_seconds$/);
        expect(histogramProblems(family)).toEqual([]);
      }
    }
    expect(families.get('raftlog_term')?.type).toBe('gauge');
    expect(sampleValue(families, 'raftlog_term')).toBe(7);
    expect(sampleValue(families, 'raftlog_is_leader')).toBe(1);
    expect(sampleValue(families, 'raftlog_has_leader')).toBe(1);
    expect(sampleValue(families, 'raftlog_is_member')).toBe(1);
    expect(sampleValue(families, 'raftlog_commit_index')).toBe(120);
    expect(sampleValue(families, 'raftlog_applied_index')).toBe(118);
    expect(sampleValue(families, 'raftlog_last_index')).toBe(125);
    expect(sampleValue(families, 'raftlog_first_index')).toBe(40);
    expect(sampleValue(families, 'raftlog_snapshot_index')).toBe(39);
    expect(sampleValue(families, 'raftlog_voters')).toBe(3);
    expect(sampleValue(families, 'raftlog_learners')).toBe(1);
    // A state set: every role present, only the current one at 1.
    expect(families.get('raftlog_role')?.samples.map((s) => [s.labels.role, s.value])).toEqual([
      ['follower', 0],
      ['pre-candidate', 0],
      ['candidate', 0],
      ['leader', 1],
    ]);
    // The leader's view of the others, not of itself.
    expect(families.get('raftlog_follower_match_index')?.samples.map((s) => [s.labels.peer, s.value])).toEqual([
      ['n2', 121],
      ['n3', 30],
    ]);
    expect(sampleValue(families, 'raftlog_peer_send_queue_messages', { peer: 'n2' })).toBe(3);
    expect(sampleValue(families, 'raftlog_peer_connected', { peer: 'n2' })).toBe(1);
    expect(sampleValue(families, 'raftlog_peer_connected', { peer: 'n3' })).toBe(0);
    expect(families.get('raftlog_peer_stream_failures_total')?.type).toBe('counter');
    expect(sampleValue(families, 'raftlog_peer_stream_failures_total', { peer: 'n3' })).toBe(9);
    expect(sampleValue(families, 'raftlog_peer_sent_messages_total', { peer: 'n2' })).toBe(900);
    expect(sampleValue(families, 'raftlog_peer_dropped_messages_total', { peer: 'n2', reason: 'overflow' })).toBe(5);
    expect(sampleValue(families, 'raftlog_peer_dropped_messages_total', { peer: 'n3', reason: 'failed' })).toBe(40);
    expect(sampleValue(families, 'raftlog_peer_folded_commit_notices_total', { peer: 'n2' })).toBe(7);
    // Every outcome has a series from the start, so that rate() sees the first one.
    expect(families.get('raftlog_proposals_total')?.samples.map((s) => s.labels.outcome)).toContain('resource_exhausted');
  });

  it('reads the node once per scrape, and afresh at the next one', async () => {
    const node = new FakeNode(vitals());
    const metrics = new NodeMetrics(() => node);
    await metrics.exposition();
    expect(node.vitalsRead).toBe(1);
    node.current = vitals({ role: 'follower', leader: 'n2', term: 8, progress: null });
    await new Promise((resolve) => setImmediate(resolve));
    const families = await scrape(metrics);
    expect(node.vitalsRead).toBe(2);
    expect(sampleValue(families, 'raftlog_term')).toBe(8);
    expect(sampleValue(families, 'raftlog_is_leader')).toBe(0);
    expect(sampleValue(families, 'raftlog_role', { role: 'follower' })).toBe(1);
    expect(families.get('raftlog_follower_match_index')?.samples).toEqual([]);
  });

  it('while the node is starting (no state yet) labelled state has no series and counters still show', async () => {
    const metrics = new NodeMetrics(() => null);
    const families = await scrape(metrics);
    expect(families.get('raftlog_role')?.samples).toEqual([]);
    expect(families.get('raftlog_peer_send_queue_messages')?.samples).toEqual([]);
    expect(sampleValue(families, 'raftlog_proposals_total', { outcome: 'committed' })).toBe(0);
  });

  it('labels the most lagging consumers, at most MAX_LABELLED_CONSUMERS, and counts them all', async () => {
    // 60 consumers at positions 1..60 against commit index 120: lags 119 down to 60.
    const positions = Array.from({ length: 60 }, (_, i) => consumer(`c${String(i + 1).padStart(2, '0')}`, i + 1));
    const metrics = new NodeMetrics(() => new FakeNode(vitals(), [], positions));
    const families = await scrape(metrics);
    expect(sampleValue(families, 'raftlog_consumers')).toBe(60);
    expect(sampleValue(families, 'raftlog_consumer_max_lag_entries')).toBe(119);
    const lags = families.get('raftlog_consumer_lag_entries')?.samples ?? [];
    expect(lags).toHaveLength(MAX_LABELLED_CONSUMERS);
    expect(sampleValue(families, 'raftlog_consumer_lag_entries', { consumer: 'c01' })).toBe(119);
    expect(sampleValue(families, 'raftlog_consumer_lag_entries', { consumer: 'c50' })).toBe(70);
    expect(lags.some((s) => s.labels.consumer === 'c51')).toBe(false);
  });

  it("a consumer ahead of this node's commit index (a lagging replica) has lag 0, not a negative one", async () => {
    const metrics = new NodeMetrics(() => new FakeNode(vitals({ commitIndex: 100 }), [], [consumer('ahead', 110)]));
    expect(sampleValue(await scrape(metrics), 'raftlog_consumer_lag_entries', { consumer: 'ahead' })).toBe(0);
  });
});

describe('NodeMetrics: events', () => {
  it('counts proposals by outcome: committed (timed), refused at once, failed later; errors pass through unchanged', async () => {
    const metrics = new NodeMetrics(() => null);
    const committed = await metrics.proposal(() => Promise.resolve('done'));
    expect(committed).toBe('done');
    const notLeader = new NotLeaderError('n1', 3, 'n2');
    // A refusal thrown at once is thrown at once again, as the node's propose() did before it was counted.
    expect(() =>
      metrics.proposal(() => {
        throw notLeader;
      }),
    ).toThrow(notLeader);
    const busy = new ClientError(grpc.status.RESOURCE_EXHAUSTED, 'busy');
    await expect(metrics.proposal(() => Promise.reject(busy))).rejects.toBe(busy);
    await expect(metrics.proposal(() => Promise.reject(new ClientError(grpc.status.DEADLINE_EXCEEDED, 'late')))).rejects.toThrow('late');
    await expect(metrics.proposal(() => Promise.reject(new Error('disk on fire')))).rejects.toThrow('disk on fire');

    const families = await scrape(metrics);
    expect(sampleValue(families, 'raftlog_proposals_total', { outcome: 'committed' })).toBe(1);
    expect(sampleValue(families, 'raftlog_proposals_total', { outcome: 'not_leader' })).toBe(1);
    expect(sampleValue(families, 'raftlog_proposals_total', { outcome: 'resource_exhausted' })).toBe(1);
    expect(sampleValue(families, 'raftlog_proposals_total', { outcome: 'deadline_exceeded' })).toBe(1);
    expect(sampleValue(families, 'raftlog_proposals_total', { outcome: 'failed' })).toBe(1);
    expect(sampleValue(families, 'raftlog_proposal_duration_seconds_count')).toBe(1);
  });

  it('maps each refusal to the outcome operators alert on', () => {
    expect(proposalOutcome(new NotLeaderError('n1', 1, null))).toBe('not_leader');
    expect(proposalOutcome(new ClientError(grpc.status.INVALID_ARGUMENT, 'too large'))).toBe('invalid_argument');
    expect(proposalOutcome(new ClientError(grpc.status.UNAVAILABLE, 'leadership changed'))).toBe('unavailable');
    expect(proposalOutcome(new ClientError(grpc.status.UNKNOWN, 'shutting down'))).toBe('unknown');
    expect(proposalOutcome(new ClientError(grpc.status.FAILED_PRECONDITION, 'refused'))).toBe('failed');
    expect(proposalOutcome('not even an error')).toBe('failed');
  });

  it("counts a new leader once however many role changes report it, as etcd's leader_changes_seen does", async () => {
    const metrics = new NodeMetrics(() => null);
    for (const leader of ['n1', 'n1', null, 'n1', 'n2', null, null, 'n3', 'n3']) metrics.roleChanged(leader);
    expect(sampleValue(await scrape(metrics), 'raftlog_leader_changes_total')).toBe(3);
  });

  it('keeps the open Subscribe streams per view; closing one twice counts once', async () => {
    const metrics = new NodeMetrics(() => null);
    const first = metrics.subscriberOpened('commands');
    metrics.subscriberOpened('commands');
    const changes = metrics.subscriberOpened('changes');
    first();
    first();
    changes();
    const families = await scrape(metrics);
    expect(sampleValue(families, 'raftlog_subscribers', { view: 'commands' })).toBe(1);
    expect(sampleValue(families, 'raftlog_subscribers', { view: 'changes' })).toBe(0);
    expect(sampleValue(families, 'raftlog_subscriptions_total', { view: 'commands' })).toBe(2);
  });

  it('times log writes, applies and snapshots into histograms, and counts what they carried', async () => {
    const metrics = new NodeMetrics(() => null);
    metrics.logWritten(0.003, 4);
    metrics.logWritten(0.2, 1);
    metrics.applied(0, performance.now());
    metrics.applied(12, performance.now());
    metrics.snapshotTaken(1.5);
    metrics.snapshotTakeFailed();
    metrics.snapshotSent(true, 2, 4096);
    metrics.snapshotSent(false, 0.5, 0);
    metrics.snapshotReceived(3, 8192);
    metrics.snapshotInstalled(0.25);
    const families = await scrape(metrics);
    expect(sampleValue(families, 'raftlog_log_write_duration_seconds_count')).toBe(2);
    expect(sampleValue(families, 'raftlog_log_write_duration_seconds_bucket', { le: '0.004' })).toBe(1);
    expect(sampleValue(families, 'raftlog_log_write_outputs_total')).toBe(5);
    // An empty batch is no apply.
    expect(sampleValue(families, 'raftlog_apply_duration_seconds_count')).toBe(1);
    expect(sampleValue(families, 'raftlog_applied_entries_total')).toBe(12);
    expect(sampleValue(families, 'raftlog_snapshot_take_duration_seconds_count')).toBe(1);
    expect(sampleValue(families, 'raftlog_snapshot_take_failures_total')).toBe(1);
    expect(sampleValue(families, 'raftlog_snapshot_send_duration_seconds_count', { outcome: 'ok' })).toBe(1);
    expect(sampleValue(families, 'raftlog_snapshot_send_duration_seconds_count', { outcome: 'failed' })).toBe(1);
    expect(sampleValue(families, 'raftlog_snapshot_sent_bytes_total')).toBe(4096);
    expect(sampleValue(families, 'raftlog_snapshot_receive_duration_seconds_sum')).toBe(3);
    expect(sampleValue(families, 'raftlog_snapshot_received_bytes_total')).toBe(8192);
    expect(sampleValue(families, 'raftlog_snapshot_install_duration_seconds_count')).toBe(1);
    for (const family of families.values()) if (family.type === 'histogram') expect(histogramProblems(family)).toEqual([]);
  });

  it("adds Node.js's process metrics under their standard names only when asked (a node that serves /metrics)", async () => {
    const metrics = new NodeMetrics(() => null);
    expect([...(await scrape(metrics)).keys()].filter((name) => !name.startsWith('raftlog_'))).toEqual([]);
    metrics.collectProcessMetrics();
    const families = await scrape(metrics);
    expect(families.get('process_resident_memory_bytes')?.type).toBe('gauge');
    expect(families.get('process_cpu_seconds_total')?.type).toBe('counter');
    expect(families.has('nodejs_eventloop_lag_seconds')).toBe(true);
  });
});

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveMetrics: /metrics over HTTP', () => {
  const shutdowns: AbortController[] = [];
  afterEach(() => {
    for (const shutdown of shutdowns.splice(0)) shutdown.abort();
  });

  it('serves the exposition at /metrics only, GET or HEAD, on the port the OS gave for port 0, until shutdown', async () => {
    const shutdown = new AbortController();
    shutdowns.push(shutdown);
    const metrics = new NodeMetrics(() => new FakeNode(vitals()));
    const address = await serveMetrics(metrics, '127.0.0.1:0', shutdown.signal);
    expect(address).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);

    const ok = await get(`http://${address}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(sampleValue(parseExposition(ok.body), 'raftlog_term')).toBe(7);
    expect((await get(`http://${address}/`)).status).toBe(404);
    expect((await get(`http://${address}/metrics`, 'POST')).status).toBe(405);
    expect((await get(`http://${address}/metrics`, 'HEAD')).status).toBe(200);

    shutdown.abort();
    await expect(get(`http://${address}/metrics`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses an address already in use, naming it', async () => {
    const shutdown = new AbortController();
    shutdowns.push(shutdown);
    const metrics = new NodeMetrics(() => null);
    const address = await serveMetrics(metrics, '127.0.0.1:0', shutdown.signal);
    await expect(serveMetrics(new NodeMetrics(() => null), address, shutdown.signal)).rejects.toThrow(
      `cannot serve metrics on ${address}: listen EADDRINUSE`,
    );
  });
});

const REQUIRED = ['--id', 'n1', '--listen', '127.0.0.1:7001', '--peers', 'n1=127.0.0.1:7001', '--data', '/tmp/n1'];

describe('raftlog node --metrics-listen', () => {
  it('is off unless given, takes HOST:PORT, [IPv6]:PORT and port 0, and is documented', () => {
    expect(parseNodeArgs(REQUIRED).metricsListen).toBeUndefined();
    expect(parseNodeArgs([...REQUIRED, '--metrics-listen', '127.0.0.1:9101']).metricsListen).toBe('127.0.0.1:9101');
    expect(parseNodeArgs([...REQUIRED, '--metrics-listen=0.0.0.0:0']).metricsListen).toBe('0.0.0.0:0');
    expect(parseNodeArgs([...REQUIRED, '--metrics-listen', '[::1]:9101']).metricsListen).toBe('[::1]:9101');
    expect(parseNodeArgs([...REQUIRED, '--metrics-listen', 'metrics.local:9101']).metricsListen).toBe('metrics.local:9101');
    expect(NODE_USAGE).toContain('--metrics-listen HOST:PORT');
  });

  it.each(['9101', ':9101', 'localhost', 'localhost:', 'localhost:99999', 'local host:9101', 'http://127.0.0.1:9101', '127.0.0.1:9101/metrics', ''])(
    'rejects "%s" with a usage error that names the flag, the form and the value',
    (value) => {
      const parse = () => parseNodeArgs([...REQUIRED, `--metrics-listen=${value}`]);
      expect(parse).toThrow(UsageError);
      expect(parse).toThrow(`--metrics-listen takes HOST:PORT (e.g. 127.0.0.1:9101, [::1]:9101, 0.0.0.0:9101; port 0..65535), got "${value}"`);
    },
  );

  it('refuses the gRPC address itself', () => {
    expect(() => parseNodeArgs([...REQUIRED, '--metrics-listen', '127.0.0.1:7001'])).toThrow(
      '--metrics-listen must differ from --listen (127.0.0.1:7001)',
    );
  });

  it('a node process given a bad value exits with status 2 and the usage, before touching anything', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        new URL('../../src/node/main.ts', import.meta.url).pathname,
        '--id',
        'n1',
        '--listen',
        `127.0.0.1:${port}`,
        '--peers',
        `n1=127.0.0.1:${port}`,
        '--data',
        '/nonexistent/raftlog-metrics-flag-test',
        '--metrics-listen',
        'localhost',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('raftlog node: --metrics-listen takes HOST:PORT');
    expect(stderr).toContain('usage: raftlog node');
  });
});
