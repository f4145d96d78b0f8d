/**
 * The dashboard against a real 3-node cluster: its server reports what each
 * node's Status says, and, in headless Chromium, the page shows the leader
 * and the indexes Status reports, the consumers with their lag, and marks a
 * killed node down; a screenshot is saved to test-artifacts/dashboard.png.
 *
 * Needs Debian's chromium (.ci/run installs it). Without it the browser test
 * is skipped with a warning, unless RAFTLOG_REQUIRE_BROWSER=1 (as in CI),
 * which makes it fail instead.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RaftLogClient } from '../../src/client/index.js';
import { type Dashboard, type DashboardMessage, startDashboard } from '../../src/dashboard/server.js';
import type { StatusReply } from '../../src/node/client-proto.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';
import { CHROMIUM, CHROMIUM_PACKAGE, launchChromium, missingChromium, openPage, readPage, type ShownNode } from './browser.js';

const REQUIRED = process.env.RAFTLOG_REQUIRE_BROWSER === '1';
const SCREENSHOT = fileURLToPath(new URL('../../test-artifacts/dashboard.png', import.meta.url));
/** The brief's bound for the page to show a killed node down; generous for a loaded machine (the dashboard polls every 500 ms here). */
const DOWN_DEADLINE_MS = 20_000;
const RECORDS = 60;

const missing = missingChromium();
if (missing !== null) {
  console.warn(
    `\n*** dashboard browser test ${REQUIRED ? 'FAILS (RAFTLOG_REQUIRE_BROWSER=1)' : 'SKIPPED'}: ${missing}. ` +
      `Install Debian's ${CHROMIUM_PACKAGE} (apt-get install -y ${CHROMIUM_PACKAGE}) or point RAFTLOG_CHROMIUM at a Chromium. ***\n`,
  );
}

let cluster: ProcessCluster | null = null;
let client: RaftLogClient | null = null;
let dashboard: Dashboard | null = null;
let browser: Browser | null = null;
/** Every node's Status once the writes below have reached all of them; nothing is written afterwards. */
let statuses: StatusReply[] = [];
let leader = '';

beforeAll(async () => {
  cluster = await ProcessCluster.start(3);
  const c = cluster;
  // Generous: CI runs this beside other clusters on 2 cores.
  leader = await c.waitForLeader(c.ids, 90_000);
  client = new RaftLogClient({ endpoints: c.ids.map((id) => `${id}=${c.address(id)}`), deadlineMs: 10_000 });
  for (let i = 1; i <= RECORDS; i++) await client.append(`record ${i}`);
  await client.commitPosition('billing', 20);
  await client.commitPosition('search', 45);
  const written = (await client.status(c.address(leader))).commitIndex;
  statuses = await c.waitForConvergence(written);
  // The leader's last index too: waitForConvergence compares applied indexes and digests only.
  statuses = await waitFor('every node at the same last index', async () => {
    const now = await Promise.all(c.ids.map((id) => c.status(id)));
    return now.every((s) => s.lastLogIndex === now[0]?.lastLogIndex && s.commitIndex === s.lastLogIndex) ? now : undefined;
  });
  dashboard = await startDashboard({ endpoints: c.ids.map((id) => `${id}=${c.address(id)}`), listen: '127.0.0.1:0', intervalMs: 500 });
}, 240_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await dashboard?.close();
  client?.close();
  await cluster?.destroy();
});

/** The fields of a Status reply as the page's data-* attributes show them (strings). */
function shownAs(status: StatusReply): ShownNode {
  return {
    node: status.node,
    state: 'up',
    role: status.role,
    term: String(status.term),
    leader: status.leader,
    first: String(status.firstLogIndex),
    snapshot: String(status.snapshotIndex),
    applied: String(status.appliedIndex),
    commit: String(status.commitIndex),
    last: String(status.lastLogIndex),
    digest: status.digest,
  };
}

const withoutMatch = ({ match: _, ...node }: ShownNode): ShownNode => node;

describe('the dashboard against a real 3-node cluster', () => {
  it("its server reports each node as Status does, the leader's view of its followers, and the consumers with their lag", async () => {
    const d = dashboard as Dashboard;
    const sample = await waitFor('a sample in which every node answered, with the consumers', async () => {
      const message = (await (await fetch(new URL('/state', d.url))).json()) as DashboardMessage;
      return message.sample?.nodes.every((node) => node.up) === true && message.sample.consumers !== null ? message.sample : undefined;
    });
    const byId = new Map(sample.nodes.map((node) => [node.id, node.status]));
    for (const reply of statuses) {
      expect(byId.get(reply.node), reply.node).toMatchObject({
        node: reply.node,
        role: reply.role,
        term: reply.term,
        leader: reply.leader,
        commitIndex: reply.commitIndex,
        appliedIndex: reply.appliedIndex,
        lastLogIndex: reply.lastLogIndex,
        firstLogIndex: reply.firstLogIndex,
        snapshotIndex: reply.snapshotIndex,
        digest: reply.digest,
      });
    }
    expect(sample.leader).toEqual({ id: leader, term: statuses[0]?.term });
    // Status' new field: the leader's progress, one entry per follower, each caught up with its last index.
    const last = statuses[0]?.lastLogIndex;
    const progress = byId.get(leader)?.progress ?? [];
    expect(progress.map((p) => p.id).sort()).toEqual(
      statuses
        .map((s) => s.node)
        .filter((id) => id !== leader)
        .sort(),
    );
    for (const follower of progress)
      expect(follower, follower.id).toMatchObject({ matchIndex: last, nextIndex: (last as number) + 1, state: 'replicate' });
    for (const follower of statuses.filter((s) => s.node !== leader)) expect(byId.get(follower.node)?.progress).toEqual([]);

    const commit = statuses[0]?.commitIndex as number;
    expect(sample.consumers?.consumers.map((c) => [c.name, c.position, c.lag])).toEqual([
      ['billing', 20, commit - 20],
      ['search', 45, commit - 45],
    ]);
    const events = ((await (await fetch(new URL('/state', d.url))).json()) as DashboardMessage).events;
    expect(events.map((e) => `${e.kind} ${e.node}`)).toContain(`leader ${leader}`);
  });

  it('serves the page and its script from itself alone (nothing from the internet), and 404 for anything else', async () => {
    const d = dashboard as Dashboard;
    const page = await fetch(d.url);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await page.text();
    const script = await (await fetch(new URL('/page.js', d.url))).text();
    expect(html).toContain('<script src="/page.js">');
    for (const text of [html, script]) expect(text).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//);
    expect(script).toContain("new EventSource('/events')");
    expect((await fetch(new URL('/nothing', d.url))).status).toBe(404);
  });

  it.skipIf(missing !== null && !REQUIRED)(
    'in Chromium: shows the leader and the indexes Status reports; a killed leader is marked down, the new one shown; a screenshot is saved',
    async () => {
      if (missing !== null)
        throw new Error(`RAFTLOG_REQUIRE_BROWSER=1 but ${missing}: apt-get install -y ${CHROMIUM_PACKAGE} (or set RAFTLOG_CHROMIUM)`);
      const c = cluster as ProcessCluster;
      const d = dashboard as Dashboard;
      browser = await launchChromium();
      const page = await openPage(browser, d.url);
      console.log(`dashboard browser test: ${CHROMIUM} (${await browser.version()}) at ${d.url}`);

      // The page, read through its data-* attributes, against the Status replies read above.
      const last = String(statuses[0]?.lastLogIndex);
      const shown = await waitFor(
        'the page to show every node as its Status reports it',
        async () => {
          const now = await readPage(page);
          const same =
            now.leader === leader &&
            statuses.every((s) => {
              const row = now.nodes.find((node) => node.node === s.node);
              return row !== undefined && JSON.stringify(withoutMatch(row)) === JSON.stringify(shownAs(s));
            });
          return same ? now : undefined;
        },
        30_000,
      );
      expect(shown.term).toBe(String(statuses[0]?.term));
      for (const s of statuses) expect(withoutMatch(shown.nodes.find((n) => n.node === s.node) as ShownNode)).toEqual(shownAs(s));
      // Every node's match index as the leader tracks it (the leader's own: its last index).
      expect(shown.nodes.map((n) => [n.node, n.match])).toEqual(statuses.map((s) => [s.node, last]));
      const commit = statuses[0]?.commitIndex as number;
      expect(shown.consumers).toEqual([
        { consumer: 'billing', position: '20', lag: String(commit - 20) },
        { consumer: 'search', position: '45', lag: String(commit - 45) },
      ]);
      // The axis has a row for every node and consumer.
      const axisRows = await page.$$eval('#axis [data-node], #axis [data-consumer]', (rows) => rows.length);
      expect(axisRows).toBe(statuses.length + 2);

      // The fault: the leader's process is killed.
      const killed = leader;
      await c.kill(killed);
      const marked = await waitFor(
        `the page to mark ${killed} down`,
        async () => {
          const now = await readPage(page);
          return now.nodes.find((n) => n.node === killed)?.state === 'down' ? now : undefined;
        },
        { timeoutMs: DOWN_DEADLINE_MS, intervalMs: 100 },
      );
      // Down, not dropped: its last known values stay on the page.
      expect(marked.nodes.find((n) => n.node === killed)).toMatchObject({ role: 'leader', last });
      expect(marked.nodes).toHaveLength(3);

      const live = c.ids.filter((id) => id !== killed);
      const next = await c.waitForLeader(live);
      const after = await waitFor(
        `the page to show the new leader ${next}`,
        async () => {
          const now = await readPage(page);
          return now.leader === next ? now : undefined;
        },
        30_000,
      );
      const term = Number(after.term);
      expect(term).toBeGreaterThan(statuses[0]?.term as number);
      const kinds = after.events.map((e) => `${e.kind} ${e.node}`);
      expect(kinds).toContain(`down ${killed}`);
      expect(kinds).toContain('election ');
      expect(kinds).toContain(`leader ${next}`);

      await mkdir(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT as `${string}.png` });
      console.log(`dashboard screenshot: ${SCREENSHOT}`);
    },
  );
});
