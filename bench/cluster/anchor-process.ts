/**
 * Running an anchor's scripts (shared/anchors/*: cluster.sh, load.mjs,
 * failover.mjs) from the benchmark: each in the anchor's folder with its own
 * environment, stderr passed on with a prefix, stdout collected for the JSON
 * line the scripts end with.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

export interface RunOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Put before each stderr line, e.g. "etcd". */
  readonly label: string;
  readonly onStdoutLine?: (line: string) => void;
  /** Handed the child as soon as it runs, so a stop can kill it. */
  readonly onChild?: (child: ChildProcess | null) => void;
}

/** Runs a command to its end; resolves with its stdout lines when it exits 0, rejects with the last stderr lines otherwise. */
export function runAnchorProcess(command: string, args: readonly string[], o: RunOptions): Promise<string[]> {
  const what = `${command} ${args.join(' ')}`;
  const child = spawn(command, args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
  o.onChild?.(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout.push(line);
    o.onStdoutLine?.(line);
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    console.error(`${o.label} ${line}`);
  });
  return new Promise((resolveRun, reject) => {
    child.once('error', (error) => reject(new Error(`${what}: ${error.message}`)));
    child.once('close', (code, signal) => {
      o.onChild?.(null);
      if (code === 0) resolveRun(stdout);
      else reject(new Error(`${what} exited with ${signal ?? `code ${code}`}: ${stderr.slice(-3).join(' | ')}`));
    });
  });
}

/** The JSON object an anchor script prints as its last stdout line. */
export function parseLastJson(lines: readonly string[], script: string): Record<string, unknown> {
  const last = [...lines].reverse().find((l) => l.trim() !== '');
  try {
    const parsed: unknown = JSON.parse(last ?? '');
    if (typeof parsed === 'object' && parsed !== null) return parsed as Record<string, unknown>;
  } catch {
    // reported below with the line itself
  }
  throw new Error(`${script}: last stdout line is not a JSON object: ${String(last)}`);
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)));
  });
}

/**
 * A base port for each of `groups` groups of 3 consecutive ports, the groups
 * `stride` apart, all free: tries the anchor's default base first, then random ones.
 */
export async function freePortGroups(defaultBase: number, groups: number, stride: number, what: string): Promise<number> {
  const random = Array.from({ length: 20 }, () => 30_000 + 10 * Math.floor(Math.random() * 2_000));
  for (const base of [defaultBase, ...random]) {
    const ports = Array.from({ length: groups }, (_, g) => [0, 1, 2].map((i) => base + g * stride + i)).flat();
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error(`no free ports for the ${what} cluster (tried 21 bases)`);
}
