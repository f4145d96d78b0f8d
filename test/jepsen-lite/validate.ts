/**
 * Runs the linearizability checker over a directory of Jepsen etcd logs with
 * known answers, to show that it agrees with them:
 *
 *     tsx test/jepsen-lite/validate.ts <dir> [--windows]
 *
 * `<dir>/EXPECTED.json` maps file names to true (linearizable) or false.
 * Every `*.log` is checked; one without an answer is reported as such.
 * A log that cannot be parsed, or an answer with no log, fails the run too.
 * `--windows` also prints the violation window found in each bad history.
 * Exit code: 0 if every expected answer matches, 1 if not, 2 on bad usage or
 * a missing or malformed EXPECTED.json.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checkLinearizability, formatViolation, type Verdict } from './checkers/linearizability.js';
import { parseEtcdLog } from './etcd-log.js';
import type { ClientEvent } from './history.js';

interface FileReport {
  readonly name: string;
  readonly operations: number;
  readonly expected: boolean | undefined;
  /** `'error'`: the file could not be read or parsed. */
  readonly verdict: Verdict | 'error';
  readonly ms: number;
  readonly windows: string[];
}

function usageError(message: string): never {
  console.error(`validate: ${message}`);
  console.error('usage: tsx test/jepsen-lite/validate.ts <dir> [--windows]');
  process.exit(2);
}

function readExpected(dir: string): Map<string, boolean> {
  const path = join(dir, 'EXPECTED.json');
  if (!existsSync(path)) usageError(`${path} does not exist`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    usageError(`${path} is not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) usageError(`${path} must map file names to true or false`);
  const expected = new Map<string, boolean>();
  for (const [name, answer] of Object.entries(parsed)) {
    if (typeof answer !== 'boolean') usageError(`${path}: ${name} must be true or false, not ${JSON.stringify(answer)}`);
    expected.set(name, answer);
  }
  return expected;
}

function checkFile(dir: string, name: string, expected: boolean | undefined, showWindows: boolean): FileReport {
  const started = performance.now();
  let events: ClientEvent[];
  try {
    events = parseEtcdLog(readFileSync(join(dir, name), 'utf8'));
  } catch (error) {
    return { name, operations: 0, expected, verdict: 'error', ms: performance.now() - started, windows: [(error as Error).message] };
  }
  const result = checkLinearizability(events);
  const ms = performance.now() - started;
  const operations = result.keys.reduce((sum, key) => sum + key.operations, 0);
  const windows = showWindows ? result.keys.filter((key) => key.valid === false).map(formatViolation) : [];
  return { name, operations, expected, verdict: result.valid, ms, windows };
}

function outcome(report: FileReport): string {
  if (report.verdict === 'error') return 'ERROR';
  if (report.expected === undefined) return 'no expected answer';
  return report.verdict === report.expected ? 'match' : 'MISMATCH';
}

const shown = (answer: Verdict | 'error' | undefined): string => (answer === undefined ? '-' : String(answer));

function main(args: readonly string[]): number {
  const showWindows = args.includes('--windows');
  const dir = args.find((arg) => !arg.startsWith('--'));
  if (dir === undefined) usageError('no directory given');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) usageError(`${dir} is not a directory`);
  const expected = readExpected(dir);
  const names = readdirSync(dir)
    .filter((name) => name.endsWith('.log'))
    .sort();

  const nameWidth = Math.max(4, ...names.map((name) => name.length));
  console.log(`${'file'.padEnd(nameWidth)}  ${'ops'.padStart(5)}  expected  verdict  ${'ms'.padStart(8)}  result`);
  const reports: FileReport[] = [];
  for (const name of names) {
    const report = checkFile(dir, name, expected.get(name), showWindows);
    reports.push(report);
    const result = outcome(report);
    console.log(
      `${name.padEnd(nameWidth)}  ${String(report.operations).padStart(5)}  ${shown(report.expected).padEnd(8)}  ` +
        `${shown(report.verdict).padEnd(7)}  ${report.ms.toFixed(1).padStart(8)}  ${result}`,
    );
    for (const window of report.windows) console.log(window.replace(/^/gm, '    '));
  }

  const missing = [...expected.keys()].filter((name) => !names.includes(name));
  for (const name of missing) console.log(`${name.padEnd(nameWidth)}  in EXPECTED.json but not in ${basename(dir)}: MISSING`);
  const answered = reports.filter((r) => r.expected !== undefined);
  const matches = answered.filter((r) => r.verdict === r.expected).length;
  const mismatches = answered.length - matches;
  const unanswered = reports.length - answered.length;
  const errors = reports.filter((r) => r.verdict === 'error').length;
  const totalMs = reports.reduce((sum, r) => sum + r.ms, 0);
  const slowest = reports.reduce<FileReport | undefined>((worst, r) => (worst === undefined || r.ms > worst.ms ? r : worst), undefined);
  console.log(
    `total: ${reports.length} files, ${matches} match, ${mismatches} mismatch, ${missing.length} missing, ` +
      `${unanswered} without expected answer, ${errors} unreadable; ${totalMs.toFixed(0)} ms` +
      (slowest === undefined ? '' : `, slowest ${slowest.name} (${slowest.ms.toFixed(1)} ms)`),
  );
  return mismatches === 0 && missing.length === 0 && errors === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
