/**
 * Starting nodes and waiting until they answer, shared by `start` and
 * `restart`. A node that exits or stays silent during startup fails the whole
 * launch and the nodes of that launch are stopped again, so a failed start
 * leaves nothing half-running.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { type ClusterState, findNode, type NodeRecord, withPid, writeState } from './cluster-state.js';
import { queryCluster } from './cluster-status.js';
import { ClusterScriptError } from './errors.js';
import { spawnNode, stopNode } from './node-process.js';
import { type ClusterLayout, displayPath } from './paths.js';
import { pollUntil } from './poll.js';

/** Generous: tsx compiles the node on first start, and the machine may be busy. */
export const STARTUP_TIMEOUT_MS = 60_000;
/** A node stopped because its launch failed gets this long to exit before SIGKILL. */
const ROLLBACK_GRACE_MS = 5_000;
const LOG_TAIL_LINES = 3;
const LOG_SCAN_LINES = 40;

/**
 * Starts the nodes `ids` of `state` and waits until each answers Status.
 * Records each pid in the state file as soon as the process exists, so that
 * `stop` finds it even if this script dies meanwhile. Returns the updated state.
 */
export async function launchNodes(layout: ClusterLayout, initial: ClusterState, ids: readonly string[]): Promise<ClusterState> {
  let state = initial;
  const exits = new Map<string, string>();
  const children = new Map<string, ChildProcess>();
  try {
    for (const id of ids) {
      const child = await spawnNode(findNode(state, id));
      children.set(id, child);
      child.once('exit', (code, signal) => exits.set(id, signal === null ? `exit code ${code}` : `signal ${signal}`));
      state = withPid(state, id, child.pid ?? null);
      await writeState(layout, state);
    }
  } catch (error) {
    await rollBack(layout, state, ids);
    throw error;
  }
  const current = state;
  const outcome = await pollUntil(
    async () => {
      if (exits.size > 0) return 'exited' as const;
      const report = await queryCluster(current);
      const launched = report.nodes.filter((entry) => ids.includes(entry.node.id));
      return launched.every((entry) => entry.state === 'up') ? ('up' as const) : undefined;
    },
    { timeoutMs: STARTUP_TIMEOUT_MS, intervalMs: 200 },
  );
  for (const child of children.values()) child.removeAllListeners('exit');
  if (outcome === 'up') return state;

  const reasons =
    outcome === 'exited'
      ? await Promise.all([...exits].map(async ([id, how]) => `${id} exited during startup (${how})${await logTail(findNode(state, id))}`))
      : [
          `not every node answered within ${STARTUP_TIMEOUT_MS / 1000} s (see ${ids.map((id) => displayPath(findNode(state, id).logFile)).join(', ')})`,
        ];
  await rollBack(layout, state, ids);
  const others = ids.length > 1 ? '\nStopped the nodes started with it; nothing is left running.' : '';
  throw new ClusterScriptError(`${reasons.join('\n')}${others}`);
}

async function rollBack(layout: ClusterLayout, state: ClusterState, ids: readonly string[]): Promise<void> {
  let rolledBack = state;
  await Promise.all(
    ids.map(async (id) => {
      const node = findNode(state, id);
      if (node.pid !== null) await stopNode(node.pid, node, ROLLBACK_GRACE_MS);
    }),
  );
  for (const id of ids) rolledBack = withPid(rolledBack, id, null);
  await writeState(layout, rolledBack);
}

/**
 * Why the node stopped, from the end of its log: the lines that name an error
 * (the node prints "raftlog node n2: cannot listen on ..." before exiting),
 * else the last few lines.
 */
async function logTail(node: NodeRecord): Promise<string> {
  let text: string;
  try {
    text = await readFile(node.logFile, 'utf8');
  } catch {
    return '';
  }
  const last = text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(-LOG_SCAN_LINES);
  const errors = last.filter((line) => !/^\s+at /.test(line) && /error|cannot|refus|fail/i.test(line));
  const lines = (errors.length > 0 ? errors : last).slice(-LOG_TAIL_LINES);
  const shown = lines.map((line) => `\n    ${line.length > 300 ? `${line.slice(0, 300)}…` : line}`).join('');
  return `; from ${displayPath(node.logFile)}:${shown}`;
}
