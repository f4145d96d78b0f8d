/**
 * Status' progress field (the leader's view of each follower's log, which
 * the dashboard shows as match indexes) from a node's real client service to
 * the real client, with a stand-in node whose status() is what the core
 * reports: every field arrives on the leader, and other nodes send none.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClientServiceHarness } from '../support/client-service-harness.js';
import { type NodeReport, nodeReport } from '../support/node-status-fixtures.js';

const wire = new ClientServiceHarness();
afterEach(() => wire.close());

async function statusOf(report: NodeReport) {
  return wire.client(await wire.serveNodeReporting(report)).status();
}

/** A follower with its log 1..5_000 committed, in a cluster with learner n4. */
const follower = nodeReport({
  commitIndex: 5_000,
  appliedIndex: 5_000,
  lastIndex: 5_000,
  learners: ['n4'],
  config: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] },
});

describe("Status' progress", () => {
  it("from the leader: each follower's match and next index, replication state, snapshot being sent, appends in flight and whether it answered lately", async () => {
    const status = await statusOf({
      ...follower,
      id: 'n1',
      role: 'leader',
      progress: [
        { id: 'n2', matchIndex: 5_000, nextIndex: 5_001, state: 'replicate', pendingSnapshot: 0, inflight: 2, recentlyActive: true },
        { id: 'n3', matchIndex: 4_200, nextIndex: 4_201, state: 'probe', pendingSnapshot: 0, inflight: 0, recentlyActive: false },
        { id: 'n4', matchIndex: 0, nextIndex: 1, state: 'snapshot', pendingSnapshot: 4_096, inflight: 0, recentlyActive: true },
      ],
    });
    expect(status.progress).toEqual([
      { id: 'n2', matchIndex: 5_000, nextIndex: 5_001, state: 'replicate', pendingSnapshotIndex: 0, inflight: 2, recentlyActive: true },
      { id: 'n3', matchIndex: 4_200, nextIndex: 4_201, state: 'probe', pendingSnapshotIndex: 0, inflight: 0, recentlyActive: false },
      { id: 'n4', matchIndex: 0, nextIndex: 1, state: 'snapshot', pendingSnapshotIndex: 4_096, inflight: 0, recentlyActive: true },
    ]);
  });

  it('from a follower: empty (only the leader tracks its followers)', async () => {
    expect((await statusOf(follower)).progress).toEqual([]);
  });
});
