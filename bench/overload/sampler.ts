/**
 * What the nodes hold while they are overloaded, sampled on a fixed period
 * by a thread of its own (sampler-worker.ts): each node process's resident
 * memory (VmRSS from /proc, Linux only) and, from Status, who leads and how
 * many entries the leader has appended but not committed yet (its backlog,
 * which the bound limits in bytes).
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Tracked } from '../cluster/cpu.js';

export interface NodeSample {
  readonly rss_mib: number | null;
  /**
   * How long the node's last Status took to answer (or the pending one has
   * waited so far, if longer), over a connection of its own from a thread of
   * its own. Status does no Raft work: this is how responsive the node's event
   * loop is. It does not see requests still queued on the load's connection.
   */
  readonly status_ms: number | null;
  /** From the node's last Status answer; null while none came within two periods. */
  readonly role: string | null;
  readonly term: number | null;
  /** lastLogIndex − commitIndex, as the node reported it. */
  readonly uncommitted: number | null;
  /** commitIndex − appliedIndex. */
  readonly unapplied: number | null;
}

export interface Sample {
  /** Date.now() when it was taken: the sampler thread and the load share no other clock. */
  readonly at: number;
  readonly nodes: Record<string, NodeSample>;
}

export interface SamplerSetup {
  readonly nodes: readonly Tracked[];
  readonly endpoints: readonly { endpoint: string; name: string }[];
  readonly periodMs: number;
}

export interface ProcMemory {
  readonly rss_mib: number;
  /** VmHWM: the largest RSS since the process started, whatever the sampling missed. */
  readonly hwm_mib: number;
}

const MiB = 1024 * 1024;
const kbToMiB = (kb: string | undefined): number => Math.round(((Number(kb) * 1024) / MiB) * 10) / 10;

/** VmRSS and VmHWM of a process; null once it has exited (or has no memory map any more). */
export function procMemory(pid: number): ProcMemory | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const rss = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  const hwm = /^VmHWM:\s+(\d+)\s+kB$/m.exec(text);
  return rss === null || hwm === null ? null : { rss_mib: kbToMiB(rss[1]), hwm_mib: kbToMiB(hwm[1]) };
}

export interface Sampler {
  /** Ends the sampling (after one last sample) and hands over every sample, oldest first. */
  stop(): Promise<Sample[]>;
}

/**
 * Starts the sampler thread. The worker is TypeScript: it registers tsx in
 * itself first, because node 20 does not carry `--import tsx` into workers.
 */
export function startSampler(setup: SamplerSetup): Sampler {
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./sampler-worker.ts', import.meta.url).href;
  const worker = new Worker(`import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`, {
    eval: true,
    workerData: setup,
  });
  let failure: Error | null = null;
  worker.on('error', (error) => (failure = error));
  return {
    stop: () =>
      new Promise<Sample[]>((resolve, reject) => {
        if (failure !== null) {
          reject(new Error(`the sampler thread failed: ${failure.message}`, { cause: failure }));
          return;
        }
        worker.once('message', (samples: Sample[]) => {
          void worker.terminate();
          resolve(samples);
        });
        worker.once('error', (error) => reject(new Error(`the sampler thread failed: ${error.message}`, { cause: error })));
        worker.once('exit', (code) => reject(new Error(`the sampler thread exited (code ${code}) before handing over its samples`)));
        worker.postMessage('stop');
      }),
  };
}
