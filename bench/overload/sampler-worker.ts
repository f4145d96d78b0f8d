/**
 * The body of the sampler thread (see sampler.ts): every period, each node's
 * VmRSS, and its Status as last answered. It runs on a thread of its own
 * because the load generator's event loop is itself saturated under
 * overload: timers there fire seconds late.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { StatusReply } from '../../src/node/client-proto.js';
import { BenchClient } from '../cluster/client.js';
import type { Tracked } from '../cluster/cpu.js';
import { type NodeSample, procMemory, type Sample, type SamplerSetup } from './sampler.js';

const setup = workerData as SamplerSetup;
const port = parentPort;
if (port === null) throw new Error('sampler-worker.ts runs as a worker thread (started by startSampler)');

const client = new BenchClient(setup.endpoints);
const lastStatus = new Map<string, { reply: StatusReply; at: number; rttMs: number }>();
/** Node → when its pending Status poll was sent. */
const polling = new Map<string, number>();
const samples: Sample[] = [];

function sample(): void {
  const at = Date.now();
  const nodes: Record<string, NodeSample> = {};
  for (const { name, pid } of setup.nodes as readonly Tracked[]) {
    const last = lastStatus.get(name);
    // A Status older than two periods describes another moment: leave it out.
    const s = last !== undefined && at - last.at <= 2 * setup.periodMs ? last.reply : null;
    const pendingSince = polling.get(name);
    // A poll still unanswered is at least as slow as its age.
    const rtt = Math.max(last?.rttMs ?? 0, pendingSince === undefined ? 0 : at - pendingSince);
    nodes[name] = {
      rss_mib: procMemory(pid)?.rss_mib ?? null,
      status_ms: last === undefined && pendingSince === undefined ? null : rtt,
      role: s?.role ?? null,
      term: s?.term ?? null,
      uncommitted: s === null ? null : s.lastLogIndex - s.commitIndex,
      unapplied: s === null ? null : s.commitIndex - s.appliedIndex,
    };
  }
  samples.push({ at, nodes });
  poll();
}

/** A node that has not answered the previous poll is not asked again until it does. */
function poll(): void {
  for (const member of client.members) {
    if (polling.has(member.name)) continue;
    const sentAt = Date.now();
    polling.set(member.name, sentAt);
    client
      .status(member, 30_000)
      .then(
        (reply) => lastStatus.set(member.name, { reply, at: Date.now(), rttMs: Date.now() - sentAt }),
        () => {},
      )
      .finally(() => polling.delete(member.name));
  }
}

sample();
const timer = setInterval(sample, setup.periodMs);
port.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  sample();
  client.close();
  port.postMessage(samples);
  port.close();
});
