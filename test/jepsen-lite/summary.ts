import { formatCompaction } from './compaction.js';
import type { JepsenResult } from './run.js';

/** What a run prints at the end: counts, faults, each checker's verdict, and the details of any that failed. */
export function formatSummary(result: JepsenResult): string {
  const lines: string[] = [];
  lines.push(`jepsen-lite finished in ${result.durationSeconds.toFixed(0)} s: ${result.valid ? 'PASS' : 'FAIL'}`);
  for (const [f, c] of Object.entries(result.counts)) lines.push(`  ${f.padEnd(7)} ok ${c.ok}  fail ${c.fail}  info ${c.info}`);
  const faults = Object.entries(result.faults);
  lines.push(`  faults  ${faults.length === 0 ? 'none' : faults.map(([kind, n]) => `${kind} ${n}`).join(', ')}`);
  if (result.compaction !== null) lines.push(`  compaction  ${formatCompaction(result.compaction)}`);
  for (const checker of result.checkers) {
    const verdict = checker.valid === true ? 'ok' : checker.valid === false ? 'FAIL' : 'UNKNOWN';
    lines.push(`  ${verdict.padEnd(7)} ${checker.name}: ${checker.summary}`);
  }
  for (const checker of result.checkers) {
    if (checker.valid !== true && checker.details !== '') lines.push('', `${checker.name}:`, checker.details);
  }
  lines.push(`  output  ${result.out} (history.jsonl, report.html, results.json, nodes/)`);
  return lines.join('\n');
}
