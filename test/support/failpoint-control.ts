/**
 * Drives the failpoints of a ProcessCluster's nodes over their HTTP control.
 * Each node listens on a port of its own choosing (RAFTLOG_FAILPOINTS_LISTEN
 * with port 0: ports picked up front could collide with the nodes' own) and
 * says which in its log; a restarted node picks another, found the same way.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProcessCluster } from './process-cluster.js';
import { waitFor } from './wait-for.js';

/** The environment that gives a node failpoint control (and, optionally, failpoints set from the start, planted bugs allowed). */
export function failpointEnvironment(initial?: string): Record<string, string> {
  return {
    RAFTLOG_FAILPOINTS_LISTEN: '127.0.0.1:0',
    ...(initial === undefined ? {} : { RAFTLOG_FAILPOINTS: initial, RAFTLOG_FAILPOINTS_BUGS: '1' }),
  };
}

/**
 * The control address the node's running process logged, or null before it
 * did. The log file outlives restarts: only a line with the running process's
 * pid counts, never the port of a process that is gone.
 */
async function controlAddress(cluster: ProcessCluster, id: string): Promise<string | null> {
  const pid = cluster.pid(id);
  if (pid === undefined) return null;
  const log = await readFile(join(cluster.dir, `${id}.log`), 'utf8').catch(() => '');
  for (const line of log.split('\n').reverse()) {
    if (!line.includes('"event":"failpoints-listening"')) continue;
    const logged = JSON.parse(line) as { pid: number; address: string };
    if (logged.pid === pid) return logged.address;
  }
  return null;
}

/** Sets failpoint `name` of node `id` to `action` ('off' clears it); waits for a starting node's control to answer. */
export async function setFailpoint(cluster: ProcessCluster, id: string, name: string, action: string, timeoutMs = 30_000): Promise<void> {
  const response = await waitFor(
    `the failpoint control of ${id}`,
    async () => {
      if (!cluster.isRunning(id)) throw new Error(`node ${id} is not running`);
      const address = await controlAddress(cluster, id);
      if (address === null) return undefined;
      return fetch(`http://${address}/failpoints/${name}`, { method: 'PUT', body: action, signal: AbortSignal.timeout(5_000) });
    },
    { timeoutMs, intervalMs: 100 },
  );
  if (response.status !== 204) throw new Error(`setting failpoint ${name}=${action} on ${id}: HTTP ${response.status} ${await response.text()}`);
}
