/**
 * Where a process's CPU went, from a `node --cpu-prof` profile: self time per
 * function (name + file:line) and per package, as a percentage of all samples
 * and of the non-idle ones. DevTools shows the same, but not in a form that
 * fits in a report or a diff.
 *
 *   node --import tsx bench/cpuprofile-top.ts FILE.cpuprofile [--top 15] [--skip-seconds 0]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '15' },
    // Startup (module loading, tsx compiling) is not what a load test is about.
    'skip-seconds': { type: 'string', default: '0' },
  },
});
const file = positionals[0];
if (file === undefined) {
  console.error('usage: cpuprofile-top FILE.cpuprofile [--top 15] [--skip-seconds 0]');
  process.exit(2);
}
const top = Number(values.top);
const skipUs = Number(values['skip-seconds']) * 1e6;
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

/** Shortens a script URL to what identifies it: the package, or the path inside the repo. */
function where(url: string): string {
  if (url === '') return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const repo = url.indexOf('/work/main/');
  if (repo >= 0) return url.slice(repo + '/work/main/'.length);
  return url.replace(/^file:\/\//, '');
}

/** Package-level bucket: the npm package, node's own internals, our src/ dirs, or V8's pseudo-frames. */
function bucket(frame: CallFrame): string {
  const w = where(frame.url);
  if (w === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (w.startsWith('node:')) return w.split('/').slice(0, 2).join('/');
  if (frame.url.includes('/node_modules/')) {
    const parts = w.split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
  }
  return w.split('/').slice(0, 2).join('/');
}

const self = new Map<string, number>();
const buckets = new Map<string, number>();
let t = 0;
let total = 0;
let idle = 0;
// timeDeltas[i] is the time before sample i; the sample's cost is the gap to the next one.
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  if (t < skipUs) continue;
  const node = byId.get(profile.samples[i] as number);
  if (node === undefined) continue;
  const f = node.callFrame;
  total += dt;
  if (f.functionName === '(idle)') idle += dt;
  // Column too: tsx hands V8 our TypeScript compiled onto one line, so the line alone says nothing.
  const key = `${f.functionName || '(anonymous)'}  ${where(f.url)}${f.url ? `:${f.lineNumber + 1}:${f.columnNumber + 1}` : ''}`;
  self.set(key, (self.get(key) ?? 0) + dt);
  const b = bucket(f);
  buckets.set(b, (buckets.get(b) ?? 0) + dt);
}

const busy = total - idle;
const pct = (x: number, of: number): string => (of > 0 ? ((x / of) * 100).toFixed(1) : '-').padStart(5);
/** Idle is not part of the busy time, so it gets no share of it. */
const busyPct = (key: string, x: number): string => (key.startsWith('(idle)') ? '    -' : pct(x, busy));
console.log(
  `${file}: ${(total / 1e6).toFixed(1)} s sampled (after skipping ${values['skip-seconds']} s), ` +
    `${(busy / 1e6).toFixed(1)} s not idle (${pct(busy, total).trim()}%)`,
);
console.log(`\n  %all  %busy  self ms  function  location`);
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${pct(us, total)}  ${busyPct(key, us)}  ${(us / 1000).toFixed(0).padStart(7)}  ${key}`);
}
console.log(`\n  %all  %busy  self ms  package`);
for (const [key, us] of [...buckets].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${pct(us, total)}  ${busyPct(key, us)}  ${(us / 1000).toFixed(0).padStart(7)}  ${key}`);
}
