/**
 * Makes the README's dashboard screenshot (docs/dashboard.png): a 3-node
 * cluster that snapshots every 1,500 entries, two durable consumers, a few
 * thousand writes, and the leader killed halfway, seen by headless Chromium
 * at 1366x768. Run it again after changing the page:
 *
 *   npx tsx test/dashboard/readme-screenshot.ts [OUT.png]
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RaftLogClient } from '../../src/client/index.js';
import { startDashboard } from '../../src/dashboard/server.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';
import { launchChromium, missingChromium, openPage, readPage } from './browser.js';

const OUT = process.argv[2] ?? fileURLToPath(new URL('../../docs/dashboard.png', import.meta.url));
const WRITES_BEFORE_KILL = 3_000;
const WRITES_AFTER_KILL = 1_200;
const CONCURRENCY = 32;

async function write(client: RaftLogClient, count: number, label: string): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        if (i % 3 === 0) await client.put(`user/${i % 200}`, `${label} ${i}`);
        else await client.append(`${label} event ${i}`);
      }
    }),
  );
}

const missing = missingChromium();
if (missing !== null) throw new Error(`cannot take the screenshot: ${missing}`);

const cluster = await ProcessCluster.start(3, ['--snapshot-entries', '1500', '--retain-entries', '500'], { logLevel: 'info' });
const endpoints = cluster.ids.map((id) => `${id}=${cluster.address(id)}`);
// Exactly-once: writes under way when the leader dies are retried on the next one.
const client = new RaftLogClient({ endpoints, deadlineMs: 15_000, exactlyOnce: true });
const dashboard = await startDashboard({ endpoints, listen: '127.0.0.1:0' });
const browser = await launchChromium();
try {
  const leader = await cluster.waitForLeader();
  const page = await openPage(browser, dashboard.url);
  await write(client, WRITES_BEFORE_KILL, 'before');
  await client.commitPosition('billing', (await client.consumers()).commitIndex - 400);
  await cluster.kill(leader);
  await write(client, WRITES_AFTER_KILL, 'after');
  const commit = (await client.consumers()).commitIndex;
  await client.commitPosition('search', commit - 150);
  await client.commitPosition('billing', commit - 900);
  await waitFor(
    'the page to show the new leader and both consumers',
    async () => {
      const shown = await readPage(page);
      return shown.leader !== '' && shown.leader !== leader && shown.consumers.length === 2 && shown.nodes.some((n) => n.state === 'down');
    },
    30_000,
  );
  // Two more polls, so that the indexes on the page have settled.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  await mkdir(dirname(OUT), { recursive: true });
  await page.screenshot({ path: OUT as `${string}.png` });
  console.log(`screenshot: ${OUT} (dashboard ${dashboard.url}, killed ${leader})`);
} finally {
  await browser.close();
  await dashboard.close();
  client.close();
  await cluster.destroy();
}
