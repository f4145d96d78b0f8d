/**
 * The consensus core's own cost: proposals committed per second by a 3-node
 * cluster of RaftCore in one process, messages delivered instantly, storage in
 * memory. No I/O is measured here.
 *
 *   npm run bench:core -- [--proposals 200000] [--batch 1,16,256] [--size 100]
 */

import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { InstantCluster } from '../test/support/instant-cluster.js';

const { values } = parseArgs({
  options: {
    proposals: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '1,16,256' },
    size: { type: 'string', default: '100' },
  },
});
const total = Number(values.proposals);
const batches = values.batch.split(',').map(Number);
const size = Number(values.size);
if (!Number.isInteger(total) || total <= 0 || batches.some((b) => !Number.isInteger(b) || b <= 0)) {
  console.error('usage: bench:core [--proposals N] [--batch B1,B2,...] [--size BYTES]');
  process.exit(2);
}

interface Result {
  batch: number;
  proposals: number;
  seconds: number;
  committedPerSecond: number;
  heapMiB: number;
}

function run(batch: number): Result {
  const cluster = new InstantCluster(['n1', 'n2', 'n3']);
  const leader = cluster.waitForLeader();
  const payload = new Uint8Array(size);
  const startIndex = leader.status().commitIndex;
  const started = performance.now();
  let proposed = 0;
  while (proposed < total) {
    const n = Math.min(batch, total - proposed);
    for (let i = 0; i < n; i++) {
      const result = leader.propose(payload);
      if (!result.accepted) throw new Error(`proposal rejected: ${result.message}`);
    }
    proposed += n;
    // One round of outputs and deliveries per batch: what an event-loop turn of a node does.
    cluster.settle();
  }
  const seconds = (performance.now() - started) / 1000;
  const committed = leader.status().commitIndex - startIndex;
  if (committed !== total) throw new Error(`only ${committed} of ${total} proposals committed`);
  return {
    batch,
    proposals: total,
    seconds: Number(seconds.toFixed(3)),
    committedPerSecond: Math.round(committed / seconds),
    heapMiB: Math.round(process.memoryUsage().heapUsed / 1024 / 1024),
  };
}

console.log(`bench:core — 3 nodes in memory, instant delivery, ${total} proposals of ${size} bytes`);
const results: Result[] = [];
for (const batch of batches) {
  const result = run(batch);
  results.push(result);
  console.log(
    `  proposals per turn ${String(batch).padStart(4)}: ${result.committedPerSecond.toLocaleString('en-US').padStart(10)} committed/s  (${result.seconds}s)`,
  );
}
console.log(JSON.stringify({ bench: 'core', size, results }));
