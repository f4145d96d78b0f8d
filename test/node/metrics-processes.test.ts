/**
 * /metrics of real `raftlog node --metrics-listen 127.0.0.1:0` processes,
 * scraped over HTTP and read as Prometheus reads the text format: the state
 * agrees with what Status says, counters move by what the test did, and the
 * histograms are well formed. Each node's metrics address is the one its
 * start log line names (port 0: the OS chose it). Waits are conditions
 * polled with generous deadlines, never fixed sleeps.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommitPositionReply, StatusReply, WriteReply } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { closeAllSubscriptions, SubscribeStream } from '../support/subscribe-stream.js';
import { waitFor } from '../support/wait-for.js';
import { type Family, histogramProblems, parseExposition, sampleValue } from './metrics-exposition.js';

const WAIT_MS = 60_000;
const CALL_MS = 10_000;
const METRICS = ['--metrics-listen', '127.0.0.1:0'];

let cluster: ProcessCluster | null = null;
const c = (): ProcessCluster => cluster as ProcessCluster;

afterEach(async () => {
  closeAllSubscriptions();
  await cluster?.destroy();
  cluster = null;
});

/** The metrics URL in node `id`'s start log line number `start` (0: its first start; restarts append to the same file). */
async function metricsUrl(id: string, start = 0): Promise<string> {
  return waitFor(
    `the start log line of ${id} naming its metrics address`,
    async () => {
      const lines = (await readFile(join(c().dir, `${id}.log`), 'utf8')).split('\n').filter((line) => line.includes('"event":"started"'));
      const line = lines[start];
      if (line === undefined) return undefined;
      const { metrics } = JSON.parse(line) as { metrics?: string };
      if (metrics === undefined || !/^http:\/\/127\.0\.0\.1:\d+\/metrics$/.test(metrics))
        throw new Error(`the start line names no metrics address: ${line}`);
      return metrics;
    },
    { timeoutMs: WAIT_MS, intervalMs: 50 },
  );
}

async function scrape(url: string): Promise<Map<string, Family>> {
  const response = await fetch(url, { signal: AbortSignal.timeout(CALL_MS) });
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status}`);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await response.text());
}

const put = (id: string, key: string) => c().call<WriteReply>(id, 'put', { key: Buffer.from(key), value: Buffer.from('v') }, CALL_MS);

describe('/metrics of a 3-node cluster of real processes', () => {
  it('after some writes: indexes as Status reports them, one leader, proposals counted on the leader, histograms, peers, subscribers and consumer lag', async () => {
    cluster = await ProcessCluster.start(3, METRICS);
    const urls = new Map(await Promise.all(c().ids.map(async (id) => [id, await metricsUrl(id)] as const)));
    const url = (id: string) => urls.get(id) as string;
    await c().waitForLeader(c().ids, WAIT_MS);

    // Writes through the leader move its committed proposals by exactly their number. An election in
    // between (a loaded machine) sends some to another node; the measurement is then taken again.
    const WRITES = 25;
    const { leader, counted } = await waitFor(
      `${WRITES} writes counted as committed proposals on a leader that led throughout`,
      async () => {
        const leader = await c().waitForLeader(c().ids, WAIT_MS);
        const before = await scrape(url(leader));
        for (let i = 0; i < WRITES; i++) await put(leader, `k${i}`);
        const after = await scrape(url(leader));
        if (sampleValue(after, 'raftlog_term') !== sampleValue(before, 'raftlog_term') || sampleValue(after, 'raftlog_is_leader') !== 1)
          return undefined;
        const committed = (families: Map<string, Family>) => sampleValue(families, 'raftlog_proposals_total', { outcome: 'committed' });
        return { leader, counted: committed(after) - committed(before), after };
      },
      { timeoutMs: 4 * WAIT_MS, intervalMs: 0 },
    );
    expect(counted).toBe(WRITES);

    // Nothing is written now: each node's scrape and Status agree on its indexes and who leads.
    const statuses = await c().waitForConvergence(WRITES, c().ids, WAIT_MS);
    const lastIndex = (statuses[0] as StatusReply).appliedIndex;
    await waitFor(
      "every node's metrics at the indexes its Status reports, with exactly one leader",
      async () => {
        const scrapes = await Promise.all(c().ids.map(async (id) => ({ id, families: await scrape(url(id)), status: await c().status(id) })));
        for (const { id, families, status } of scrapes) {
          const pairs: [string, number, number][] = [
            ['raftlog_term', sampleValue(families, 'raftlog_term'), status.term],
            ['raftlog_commit_index', sampleValue(families, 'raftlog_commit_index'), status.commitIndex],
            ['raftlog_applied_index', sampleValue(families, 'raftlog_applied_index'), status.appliedIndex],
            ['raftlog_last_index', sampleValue(families, 'raftlog_last_index'), status.lastLogIndex],
            ['raftlog_first_index', sampleValue(families, 'raftlog_first_index'), status.firstLogIndex],
            ['raftlog_snapshot_index', sampleValue(families, 'raftlog_snapshot_index'), status.snapshotIndex],
          ];
          const differ = pairs.filter(([, metric, reported]) => metric !== reported);
          if (differ.length > 0)
            throw new Error(`${id}: ${differ.map(([name, metric, reported]) => `${name} ${metric}, Status ${reported}`).join('; ')}`);
        }
        const leaders = scrapes.filter(({ families }) => sampleValue(families, 'raftlog_is_leader') === 1).map(({ id }) => id);
        const roleLeaders = scrapes.filter(({ families }) => sampleValue(families, 'raftlog_role', { role: 'leader' }) === 1).map(({ id }) => id);
        const reported = scrapes.map(({ status }) => status.leader);
        if (leaders.length !== 1 || roleLeaders.join() !== leaders.join() || reported.some((l) => l !== leaders[0])) {
          throw new Error(
            `is_leader 1 on [${leaders.join(', ')}], role leader on [${roleLeaders.join(', ')}], Status names [${reported.join(', ')}]`,
          );
        }
        return true;
      },
      { timeoutMs: WAIT_MS, intervalMs: 100 },
    );

    const onLeader = await scrape(url(leader));
    for (const family of onLeader.values()) {
      if (family.name.startsWith('raftlog_') && family.type === 'counter') expect(family.name).toMatch(/_total$/);
      if (family.type === 'histogram') expect(histogramProblems(family)).toEqual([]);
    }
    expect(onLeader.get('raftlog_log_write_duration_seconds')?.type).toBe('histogram');
    expect(sampleValue(onLeader, 'raftlog_log_write_duration_seconds_count')).toBeGreaterThan(0);
    expect(sampleValue(onLeader, 'raftlog_log_write_outputs_total')).toBeGreaterThanOrEqual(
      sampleValue(onLeader, 'raftlog_log_write_duration_seconds_count'),
    );
    expect(sampleValue(onLeader, 'raftlog_apply_duration_seconds_count')).toBeGreaterThan(0);
    expect(sampleValue(onLeader, 'raftlog_applied_entries_total')).toBeGreaterThanOrEqual(WRITES);
    expect(sampleValue(onLeader, 'raftlog_proposal_duration_seconds_count')).toBeGreaterThanOrEqual(WRITES);
    expect(sampleValue(onLeader, 'raftlog_leader_changes_total')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(onLeader, 'raftlog_has_leader')).toBe(1);
    // The leader's links to both followers carried the writes.
    for (const follower of c().ids.filter((id) => id !== leader)) {
      expect(sampleValue(onLeader, 'raftlog_peer_sent_messages_total', { peer: follower })).toBeGreaterThan(0);
      expect(sampleValue(onLeader, 'raftlog_peer_send_queue_messages', { peer: follower })).toBeGreaterThanOrEqual(0);
      expect(sampleValue(onLeader, 'raftlog_follower_match_index', { peer: follower })).toBe(lastIndex);
    }
    // Node.js's own, under the standard names.
    expect(sampleValue(onLeader, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    // A Subscribe stream is counted on the node that serves it while it is open.
    const follower = c().ids.find((id) => id !== leader) as string;
    const open = (families: Map<string, Family>) => sampleValue(families, 'raftlog_subscribers', { view: 'commands' });
    const stream = SubscribeStream.open(c().address(follower), { fromIndex: 1 });
    await waitFor('the subscriber counted on its node', async () => open(await scrape(url(follower))) === 1, { timeoutMs: WAIT_MS, intervalMs: 50 });
    stream.close();
    await waitFor("the subscriber gone from its node's count", async () => open(await scrape(url(follower))) === 0, {
      timeoutMs: WAIT_MS,
      intervalMs: 50,
    });

    // A consumer's lag is the commit index less its committed position, in one scrape.
    await c().call<CommitPositionReply>(leader, 'commitPosition', { consumer: 'metrics-reader', position: 5, allowBackwards: false }, CALL_MS);
    await waitFor(
      "the consumer's lag on every node",
      async () => {
        for (const id of c().ids) {
          const families = await scrape(url(id));
          const lag = sampleValue(families, 'raftlog_consumer_lag_entries', { consumer: 'metrics-reader' });
          expect(lag).toBe(sampleValue(families, 'raftlog_commit_index') - 5);
          expect(sampleValue(families, 'raftlog_consumers')).toBe(1);
        }
        return true;
      },
      { timeoutMs: WAIT_MS, intervalMs: 100 },
    );
  });

  it("a follower that was down catches up by InstallSnapshot: snapshots taken, sent, received and installed are counted, and the leader's failed streams to it", async () => {
    cluster = await ProcessCluster.start(3, [...METRICS, '--snapshot-entries', '20', '--retain-entries', '5']);
    const leader = await c().waitForLeader(c().ids, WAIT_MS);
    const follower = c().ids.find((id) => id !== leader) as string;
    const leaderUrl = await metricsUrl(leader);

    await c().kill(follower);
    // Enough writes for several snapshots on the leader, each compacting past where the follower stopped.
    for (let i = 0; i < 70; i++)
      await waitFor(
        `write ${i} with ${follower} down`,
        () => put(c().ids.find((id) => id !== follower && c().isRunning(id)) as string, `s${i}`),
        WAIT_MS,
      );
    c().startNode(follower);
    const followerUrl = await metricsUrl(follower, 1);
    await c().waitForConvergence(70, c().ids, 2 * WAIT_MS);

    const statuses = new Map(await Promise.all(c().ids.map(async (id) => [id, await c().status(id)] as const)));
    const leaderNow = (statuses.get(leader) as StatusReply).leader;
    const sender = await scrape(leaderNow === leader ? leaderUrl : await metricsUrl(leaderNow));
    expect(sampleValue(sender, 'raftlog_snapshot_take_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(sender, 'raftlog_snapshot_index')).toBeGreaterThan(0);
    expect(sampleValue(sender, 'raftlog_snapshot_send_duration_seconds_count', { outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(sender, 'raftlog_snapshot_sent_bytes_total')).toBeGreaterThan(0);
    // The follower's death broke the stream to it at least once: a failed stream, then a reconnect.
    if (leaderNow === leader) expect(sampleValue(sender, 'raftlog_peer_stream_failures_total', { peer: follower })).toBeGreaterThanOrEqual(1);

    const receiver = await scrape(followerUrl);
    expect(sampleValue(receiver, 'raftlog_snapshot_receive_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(receiver, 'raftlog_snapshot_received_bytes_total')).toBeGreaterThan(0);
    expect(sampleValue(receiver, 'raftlog_snapshot_install_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(receiver, 'raftlog_snapshot_index')).toBe((await c().status(follower)).snapshotIndex);
    for (const family of [...sender.values(), ...receiver.values()]) if (family.type === 'histogram') expect(histogramProblems(family)).toEqual([]);
  });
});
