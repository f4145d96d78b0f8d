/**
 * Node processes: starting one detached from this script, and recognising,
 * signalling and waiting for one by pid.
 *
 * A pid in the state file may be stale: the node died and the pid went to
 * some unrelated process. So a pid counts as our node only while its command
 * line is src/node/main.ts with this node's --id and --data; nothing is ever
 * signalled without that check.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { NodeRecord } from './cluster-state.js';
import { ClusterScriptError } from './errors.js';
import { NODE_MAIN, PROJECT_ROOT } from './paths.js';
import { pollUntil } from './poll.js';

/** How long a SIGTERM'd node gets to stop gracefully before SIGKILL. */
export const STOP_GRACE_MS = 10_000;
/** How long a SIGKILL'd process may take to disappear. */
const KILL_EXIT_MS = 10_000;

/**
 * Starts the node as its own process group (so the terminal's Ctrl-C does not
 * reach it), with stdout and stderr appended to its log file, and unreferenced
 * so this script can exit and leave it running. The caller may still listen
 * for 'exit' while it waits for the node to come up.
 */
export async function spawnNode(node: NodeRecord): Promise<ChildProcess> {
  await mkdir(node.dataDir, { recursive: true });
  const log = openSync(node.logFile, 'a');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', NODE_MAIN, ...node.args], {
      cwd: PROJECT_ROOT, // where `--import tsx` is resolved
      detached: true,
      stdio: ['ignore', log, log],
    });
    child.unref();
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return child;
  } finally {
    closeSync(log); // the child has its own copy
  }
}

/** Whether `pid` is a live process running this node; false for zombies, other programs, other nodes. */
export async function isNodeProcess(pid: number, node: NodeRecord): Promise<boolean> {
  const args = await commandLine(pid);
  if (args === null || !args.includes(NODE_MAIN)) return false;
  return hasFlag(args, '--id', node.id) && hasFlag(args, '--data', node.dataDir);
}

/** The node's pid if the recorded one still runs this node, else null. */
export async function runningPid(node: NodeRecord): Promise<number | null> {
  return node.pid !== null && (await isNodeProcess(node.pid, node)) ? node.pid : null;
}

/** Sends `signal` if `pid` still runs this node; returns whether it did. */
export async function signalNode(pid: number, node: NodeRecord, signal: NodeJS.Signals): Promise<boolean> {
  if (!(await isNodeProcess(pid, node))) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** Waits until `pid` no longer runs this node; returns false if it still does after the timeout. */
export async function waitForExit(pid: number, node: NodeRecord, timeoutMs: number): Promise<boolean> {
  const gone = await pollUntil(async () => ((await isNodeProcess(pid, node)) ? undefined : true), { timeoutMs, intervalMs: 50 });
  return gone === true;
}

export type KillOutcome = 'not-running' | 'killed';

/** SIGKILL, then waits for the process to be gone. */
export async function killNode(pid: number, node: NodeRecord): Promise<KillOutcome> {
  if (!(await signalNode(pid, node, 'SIGKILL'))) return 'not-running';
  if (!(await waitForExit(pid, node, KILL_EXIT_MS))) {
    throw new ClusterScriptError(`${node.id} (pid ${pid}) is still there ${KILL_EXIT_MS} ms after SIGKILL`);
  }
  return 'killed';
}

export type StopOutcome = 'not-running' | 'stopped' | 'killed';

/** SIGTERM (the node closes its log cleanly), then SIGKILL if it has not exited within the grace period. */
export async function stopNode(pid: number, node: NodeRecord, graceMs = STOP_GRACE_MS): Promise<StopOutcome> {
  if (!(await signalNode(pid, node, 'SIGTERM'))) return 'not-running';
  if (await waitForExit(pid, node, graceMs)) return 'stopped';
  return (await killNode(pid, node)) === 'killed' ? 'killed' : 'stopped';
}

function hasFlag(args: readonly string[], flag: string, value: string): boolean {
  return args.some((arg, i) => arg === flag && args[i + 1] === value);
}

/**
 * The process's arguments, or null when there is no such live process. A
 * zombie (exited, not yet reaped: our detached nodes are reaped by whatever
 * adopted them, if anything) has an empty command line on Linux, so it
 * counts as gone.
 */
async function commandLine(pid: number): Promise<string[] | null> {
  if (process.platform === 'linux') {
    try {
      const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      const args = raw.split('\0').filter((arg) => arg !== '');
      return args.length === 0 ? null : args;
    } catch {
      return null;
    }
  }
  // No /proc (macOS): ps prints the arguments joined by spaces, so compare
  // against the same joining; good enough for paths without spaces.
  try {
    const { stdout } = await promisify(execFile)('ps', ['-o', 'stat=', '-o', 'args=', '-p', String(pid)]);
    const line = stdout.trim();
    if (line === '' || line.startsWith('Z')) return null;
    return line.split(/\s+/).slice(1);
  } catch {
    return null;
  }
}
