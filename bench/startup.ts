/**
 * How long raftlog takes to start: the CLI answering `--help`, and a
 * one-node cluster from spawn to serving (its "started" log line) and to
 * having a leader (its "leader" line), each from the TypeScript sources
 * through tsx (a development checkout, the tests, npm start) and from the
 * compiled dist/ (what an installed package runs). Variants run interleaved,
 * so a machine that gets busier slows them alike; the minimum is the figure
 * least disturbed by other work, the median the typical one. `node -e 0` is
 * the floor: Node's own start on this machine.
 *
 *   npm run build && npm run bench:startup -- [--runs 20] [--node-runs 5]
 *
 * Measures, asserts nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/support/process-cluster.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST_CLI = join(ROOT, 'dist', 'cli', 'main.js');

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    'node-runs': { type: 'string', default: '5' },
  },
});

interface Variant {
  readonly name: string;
  readonly argv: readonly string[];
}

// What bin/raftlog.js runs in an installed package (dist/), without the checkout's choice of the sources.
const distCli = `const { main } = await import(${JSON.stringify(new URL(`file://${DIST_CLI}`).href)}); process.exitCode = await main(process.argv.slice(1));`;

const CLI_VARIANTS: readonly Variant[] = [
  { name: 'node -e 0 (the floor)', argv: ['-e', '0'] },
  { name: 'raftlog --help, sources (bin/raftlog.js, tsx)', argv: [join(ROOT, 'bin', 'raftlog.js'), '--help'] },
  { name: 'raftlog --help, dist/', argv: ['--input-type=module', '-e', distCli, '--help'] },
];

const NODE_VARIANTS: readonly Variant[] = [
  { name: 'node, sources (node --import tsx src/node/main.ts)', argv: ['--import', 'tsx', join(ROOT, 'src', 'node', 'main.ts')] },
  { name: 'node, dist/ (node dist/node/main.js)', argv: [join(ROOT, 'dist', 'node', 'main.js')] },
];

function summary(values: readonly number[]): { min: number; median: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0] ?? Number.NaN, median: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN };
}

function timeCli(variant: Variant): number {
  const started = performance.now();
  const run = spawnSync(process.execPath, variant.argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - started;
  if (run.status !== 0) throw new Error(`${variant.name}: exit code ${run.status}: ${run.stderr.toString()}`);
  return ms;
}

/** Spawn → the "started" line, and spawn → the "leader" line, of a fresh one-node cluster; then SIGTERM. */
async function timeNode(variant: Variant): Promise<{ serving: number; leader: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-startup-'));
  const endpoint = `127.0.0.1:${await freePort()}`;
  const spawnedAt = Date.now();
  const child = spawn(
    process.execPath,
    [...variant.argv, '--id', 'n1', '--listen', endpoint, '--peers', `n1=${endpoint}`, '--data', join(dir, 'data')],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    let serving: number | null = null;
    for await (const line of createInterface({ input: child.stdout })) {
      const event = JSON.parse(line) as { event?: string; role?: string; time: number };
      if (event.event === 'started') serving = event.time - spawnedAt;
      if (event.event === 'role' && event.role === 'leader') {
        if (serving === null) throw new Error(`${variant.name}: a leader before the started line`);
        return { serving, leader: event.time - spawnedAt };
      }
    }
    throw new Error(`${variant.name}: the node exited before it led (exit code ${child.exitCode})`);
  } finally {
    child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
}

function row(name: string, columns: readonly number[]): string {
  return `${name.padEnd(54)}${columns.map((value) => String(Math.round(value)).padStart(10)).join('')}`;
}

if (!existsSync(DIST_CLI)) {
  console.error(`no ${DIST_CLI}: run npm run build first`);
  process.exit(2);
}
const runs = Number(args.runs);
const nodeRuns = Number(args['node-runs']);
console.log(`startup, ms from spawn (load average ${loadavg()[0]?.toFixed(1)} at the start)`);

const cliTimes = new Map(CLI_VARIANTS.map((variant) => [variant.name, [] as number[]]));
for (let i = 0; i < runs; i++) for (const variant of CLI_VARIANTS) cliTimes.get(variant.name)?.push(timeCli(variant));
console.log(`\n${'CLI'.padEnd(54)}${'min'.padStart(10)}${'median'.padStart(10)}   (${runs} runs each)`);
for (const [name, times] of cliTimes) {
  const { min, median } = summary(times);
  console.log(row(name, [min, median]));
}

const nodeTimes = new Map(NODE_VARIANTS.map((variant) => [variant.name, { serving: [] as number[], leader: [] as number[] }]));
for (let i = 0; i < nodeRuns; i++) {
  for (const variant of NODE_VARIANTS) {
    const { serving, leader } = await timeNode(variant);
    nodeTimes.get(variant.name)?.serving.push(serving);
    nodeTimes.get(variant.name)?.leader.push(leader);
  }
}
console.log(
  `\n${'one-node cluster'.padEnd(54)}${'serving'.padStart(10)}${'median'.padStart(10)}${'leader'.padStart(10)}${'median'.padStart(10)}   (${nodeRuns} runs each; min, median)`,
);
for (const [name, times] of nodeTimes) {
  const serving = summary(times.serving);
  const leader = summary(times.leader);
  console.log(row(name, [serving.min, serving.median, leader.min, leader.median]));
}
console.log(`\nload average ${loadavg()[0]?.toFixed(1)} at the end`);
