import { formatCompaction } from './compaction.js';
import type { MembershipReport } from './membership-nemesis.js';
import { describeConfiguration } from './roster.js';
import { formatRss } from './rss-sampler.js';
import type { JepsenResult } from './run.js';
import { formatSubscriptions } from './workloads/subscribe.js';

/** What a run prints at the end: counts, faults, each checker's verdict, and the details of any that failed. */
export function formatSummary(result: JepsenResult): string {
  const lines: string[] = [];
  lines.push(`jepsen-lite finished in ${result.durationSeconds.toFixed(0)} s: ${result.valid ? 'PASS' : 'FAIL'}`);
  for (const [f, c] of Object.entries(result.counts)) lines.push(`  ${f.padEnd(7)} ok ${c.ok}  fail ${c.fail}  info ${c.info}`);
  const faults = Object.entries(result.faults);
  lines.push(`  faults  ${faults.length === 0 ? 'none' : faults.map(([kind, n]) => `${kind} ${n}`).join(', ')}`);
  if (result.membership !== null) lines.push(`  membership  ${formatMembership(result.membership)}`);
  for (const exit of result.membership?.unexpectedExits ?? []) lines.push(`  UNEXPECTED  ${exit}`);
  if (result.compaction !== null) lines.push(`  compaction  ${formatCompaction(result.compaction)}`);
  if (result.memory !== null) lines.push(`  memory  ${formatRss(result.memory)}`);
  if (result.subscriptions !== null) for (const line of formatSubscriptions(result.subscriptions)) lines.push(`  readers  ${line}`);
  for (const checker of result.checkers) {
    const verdict = checker.valid === true ? 'ok' : checker.valid === false ? 'FAIL' : 'UNKNOWN';
    lines.push(`  ${verdict.padEnd(7)} ${checker.name}: ${checker.summary}`);
  }
  for (const checker of result.checkers) {
    if (checker.valid !== true && checker.details !== '') lines.push('', `${checker.name}:`, checker.details);
  }
  lines.push(`  output  ${result.out} (history.jsonl, report.html, results.json, nodes/${result.subscriptions === null ? '' : ', subscribers/'})`);
  return lines.join('\n');
}

/** "added 3, promoted 3, removed 2 (1 the leader), replaced 1, refused 4, unknown 0; final: voters n1 n3 n4". */
export function formatMembership(report: MembershipReport): string {
  const c = report.counts;
  const exits = c.removed > 0 ? `; removed nodes exited by themselves ${c.exitedByThemselves}, killed ${c.killedAfterRemoval}` : '';
  return (
    `${c.steps} steps: added ${c.added}, promoted ${c.promoted}, removed ${c.removed} (${c.leaderRemoved} the leader), replaced ${c.replaced}, ` +
    `refused ${c.refused}, unknown outcome ${c.unknown}${exits}; final: ${report.final === null ? 'not read' : describeConfiguration(report.final)}`
  );
}
