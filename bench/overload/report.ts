/** The overload benchmark's human-readable output: a timeline per variant, then every variant side by side. */
import type { NodeSample } from './sampler.js';
import type { VariantResult } from './variant.js';

const fmt = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : String(x));

export function boundLabel(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024 && bytes % (1024 * 1024 * 1024) === 0) return `${bytes / (1024 * 1024 * 1024)} GiB`;
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/**
 * One row per second of the window: what was sent in that second and how it
 * was answered (whenever the answer came), next to the leader's memory and
 * backlog sampled in that second (the largest value).
 */
export function timelineLines(v: VariantResult): string[] {
  const lines = [
    '  | s | sent | skipped | ok | refused | errors | ok p50 ms | ok p99 | ok max | leader RSS MiB | leader uncommitted entries | leader Status ms |',
    '  | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const sampled = (s: number, pick: (n: NodeSample) => number | null): number | null => {
    let m: number | null = null;
    for (const x of v.samples) {
      const n = x.nodes[v.leader];
      if (x.t_s < s || x.t_s >= s + 1 || n === undefined) continue;
      const value = pick(n);
      if (value !== null && (m === null || value > m)) m = value;
    }
    return m;
  };
  for (const b of v.open_loop.seconds) {
    lines.push(
      `  | ${b.s} | ${b.sent} | ${b.skipped} | ${b.ok} | ${b.refused} | ${b.errors} | ${fmt(b.ok_p50_ms)} | ${fmt(b.ok_p99_ms)} | ` +
        `${fmt(b.ok_max_ms)} | ${fmt(sampled(b.s, (n) => n.rss_mib))} | ${fmt(sampled(b.s, (n) => n.uncommitted))} | ` +
        `${fmt(sampled(b.s, (n) => n.status_ms))} |`,
    );
  }
  return lines;
}

export function summaryLine(v: VariantResult): string {
  const r = v.open_loop;
  const ok = r.ok_lat_ms;
  const m = v.leader_memory;
  return (
    `  open loop ${r.rate_per_s}/s for ${r.window_s} s: ok ${r.ok_per_s}/s, refused ${r.refused_per_s}/s, ` +
    `deadline exceeded ${r.deadline_exceeded}, other errors ${r.other_errors}, skipped at cap ${r.skipped_at_cap}; ` +
    `ok p50 ${fmt(ok.p50)} p90 ${fmt(ok.p90)} p99 ${fmt(ok.p99)} max ${fmt(ok.max)} ms; refused p50 ${fmt(r.refused_lat_ms.p50)} ` +
    `p99 ${fmt(r.refused_lat_ms.p99)} ms; leader ${v.leader} RSS ${fmt(m.rss_start_mib)} -> peak ${fmt(m.rss_peak_mib)} -> ` +
    `end ${fmt(m.rss_end_mib)} -> drained ${fmt(m.rss_after_drain_mib)} MiB (VmHWM ${fmt(m.hwm_mib)}); cpu loadgen ${v.cpu.loadgen_pct}%, ` +
    `its send lag p99 ${fmt(r.send_lag_ms.p99)} ms, event-loop delay p99 ${r.loadgen_loop_delay_ms.p99} ms`
  );
}

/** What each kind of failure said, once. */
export function errorLines(v: VariantResult): string[] {
  return Object.entries(v.open_loop.error_examples).map(([code, example]) => {
    const l = v.open_loop.error_lat_ms[code];
    return `  ${code} × ${v.open_loop.error_codes[code]} after p50 ${fmt(l?.p50)} max ${fmt(l?.max)} ms, e.g. ${example}`;
  });
}

/** Every variant in a column, one metric per row. */
export function sideBySide(vs: readonly VariantResult[]): string[] {
  const rows: [string, (v: VariantResult) => string][] = [
    ['bound (entries of this Put)', (v) => `${boundLabel(v.bound_bytes)} (${v.bound_entries} × ${v.entry_bytes} B)`],
    ['closed loop ops/s (p99 ms)', (v) => (v.closed_loop === null ? '-' : `${v.closed_loop.ops_per_s} (${fmt(v.closed_loop.lat_ms.p99)})`)],
    [
      'offered /s: due, sent, skipped at cap',
      (v) => `${v.open_loop.rate_per_s}: ${v.open_loop.due}, ${v.open_loop.sent}, ${v.open_loop.skipped_at_cap}`,
    ],
    ['admitted (ok) ops/s', (v) => String(v.open_loop.ok_per_s)],
    ['refused (RESOURCE_EXHAUSTED) ops/s', (v) => String(v.open_loop.refused_per_s)],
    ['deadline exceeded / other errors', (v) => `${v.open_loop.deadline_exceeded} / ${v.open_loop.other_errors}`],
    ['ok latency p50 / p90 / p99 / max ms', (v) => latencies(v.open_loop.ok_lat_ms)],
    [
      'refusal latency p50 / p99 / max ms',
      (v) => `${fmt(v.open_loop.refused_lat_ms.p50)} / ${fmt(v.open_loop.refused_lat_ms.p99)} / ${fmt(v.open_loop.refused_lat_ms.max)}`,
    ],
    ['loadgen send lag p99 / max ms', (v) => `${fmt(v.open_loop.send_lag_ms.p99)} / ${fmt(v.open_loop.send_lag_ms.max)}`],
    ['loadgen event-loop delay p99 / max ms', (v) => `${v.open_loop.loadgen_loop_delay_ms.p99} / ${v.open_loop.loadgen_loop_delay_ms.max}`],
    ['peak in flight; drain ms', (v) => `${v.open_loop.peak_in_flight}; ${v.open_loop.drain_ms}`],
    [
      'leader RSS MiB start / peak / end / drained',
      (v) => {
        const m = v.leader_memory;
        return `${fmt(m.rss_start_mib)} / ${fmt(m.rss_peak_mib)} / ${fmt(m.rss_end_mib)} / ${fmt(m.rss_after_drain_mib)}`;
      },
    ],
    ['leader VmHWM MiB', (v) => fmt(v.leader_memory.hwm_mib)],
    [
      'followers RSS peak (VmHWM) MiB',
      (v) =>
        Object.entries(v.follower_rss_peak_mib)
          .map(([n, p]) => `${fmt(p)} (${fmt(v.follower_hwm_mib[n])})`)
          .join(', '),
    ],
    ['leader Status round trip max ms (own connection)', (v) => fmt(v.leader_status_max_ms)],
    ['leader uncommitted / unapplied max entries', (v) => `${fmt(v.leader_uncommitted_max)} / ${fmt(v.leader_unapplied_max)}`],
    ['leaders seen (node@term)', (v) => v.leaders_seen.join(' ')],
    [
      'CPU % loadgen / leader / followers / machine',
      (v) => {
        const c = v.cpu;
        const followers = Object.entries(c.node_pct)
          .filter(([n]) => n !== v.leader)
          .map(([, p]) => p)
          .join(', ');
        return `${c.loadgen_pct} / ${fmt(c.node_pct[v.leader])} / ${followers} / ${c.machine_busy_pct}`;
      },
    ],
    ['CPU % other tenants', (v) => `${v.cpu.other_pct} [${v.cpu.other_top.join(' ')}]`],
  ];
  const lines = [`| metric | ${vs.map((v) => boundLabel(v.bound_bytes)).join(' | ')} |`, `| --- |${vs.map(() => ' --- |').join('')}`];
  for (const [label, cell] of rows) lines.push(`| ${label} | ${vs.map(cell).join(' | ')} |`);
  return lines;
}

function latencies(l: VariantResult['open_loop']['ok_lat_ms']): string {
  return `${fmt(l.p50)} / ${fmt(l.p90)} / ${fmt(l.p99)} / ${fmt(l.max)}`;
}
