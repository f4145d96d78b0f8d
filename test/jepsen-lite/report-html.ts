/**
 * A jepsen-lite run as one self-contained HTML page: verdicts, settings,
 * counts, a timeline of every operation against the fault windows, and
 * latency over time. Everything is inline (CSS and SVG, no script) so the
 * file can be mailed, attached to CI, or opened from disk years later.
 *
 * Big runs are drawn aggregated: a browser stays responsive with tens of
 * thousands of SVG elements, not with hundreds of thousands, and the page
 * says exactly what was aggregated or sampled so nobody mistakes a sampled
 * scatter for the whole history.
 */
import { type ClientEvent, type HistoryEvent, isNemesisEvent, type NemesisEvent } from './history.js';

export interface ReportInput {
  /** e.g. "jepsen-lite: register, partition+kill, 3 nodes, seed 7" */
  title: string;
  /** The run's options, shown as a table. */
  settings: Record<string, string | number>;
  events: readonly HistoryEvent[];
  checkers: readonly { name: string; valid: boolean | 'unknown'; summary: string; details?: string }[];
}

/** Above this many operations the timeline is binned and the latency scatter sampled. */
export const DOWNSAMPLE_ABOVE_OPS = 20_000;
/** Sampled ok points in the latency scatter of a downsampled report. */
const SCATTER_OK_BUDGET = 10_000;
/** fail/info points are all kept because they are the interesting ones, up to this safety cap on page size. */
const SCATTER_ABNORMAL_CAP = 40_000;
/** Drawn bins across all lanes of a binned timeline: bounds the element count however many processes there are. */
const TIMELINE_BIN_BUDGET = 30_000;
/** Finest first; 600 bins is about two pixels each across the plot, no point going finer. */
const BINS_PER_LANE_CHOICES = [600, 400, 300, 200, 150, 100, 60, 40] as const;
/** Values and errors are shown in tooltips; a huge value must not blow up every element that mentions it. */
const MAX_SHOWN_CHARS = 120;
const MAX_DETAILS_CHARS = 200_000;

type Outcome = 'ok' | 'fail' | 'info' | 'pending';

/** Severity for binning: info is worse than fail because its effect is unknown, and pending never even timed out. */
const SEVERITY: Record<Outcome, number> = { ok: 0, fail: 1, info: 2, pending: 3 };
const OUTCOMES: readonly Outcome[] = ['ok', 'fail', 'info', 'pending'];
const OUTCOME_LABEL: Record<Outcome, string> = { ok: 'ok', fail: 'fail', info: 'info', pending: 'never completed' };

const COLOUR = { ok: '#2e9d4f', fail: '#d6342c', info: '#e09b00' } as const;
const FAULT_COLOUR: Record<string, string> = {
  partition: '#7b4fc9',
  kill: '#555555',
  pause: '#1f77b4',
  slow: '#12a3b4',
  membership: '#c98a1b',
};
const OTHER_FAULT_COLOUR = '#b07a4f';
const faultColour = (kind: string): string => FAULT_COLOUR[kind] ?? OTHER_FAULT_COLOUR;

interface Op {
  readonly process: number;
  readonly f: string;
  readonly key: string | null;
  readonly value: unknown;
  /** The completion's value when it says something the invocation did not (what a read read). */
  readonly result: unknown;
  readonly start: number;
  readonly end: number;
  readonly outcome: Outcome;
  readonly node: string;
  readonly index: number | undefined;
  readonly error: string | undefined;
}

interface FaultWindow {
  readonly id: number;
  readonly kind: string;
  readonly description: string;
  readonly nodes: readonly string[];
  readonly start: number;
  readonly end: number;
  /** No closing event: the fault was still in force when the run ended. */
  readonly open: boolean;
}

interface Analysis {
  readonly ops: readonly Op[];
  readonly faults: readonly FaultWindow[];
  /** ns: the last event of any kind; incomplete ops and open faults run to here. */
  readonly endTime: number;
  readonly anomalies: readonly string[];
}

// ---------------------------------------------------------------------------
// history → operations and fault windows

function analyse(events: readonly HistoryEvent[]): Analysis {
  let endTime = 0;
  for (const event of events) if (Number.isFinite(event.time) && event.time > endTime) endTime = event.time;

  const pending = new Map<number, ClientEvent>();
  const closed: { invoke: ClientEvent; completion: ClientEvent | null }[] = [];
  const nemesis: NemesisEvent[] = [];
  let orphanCompletions = 0;
  let doubleInvokes = 0;
  for (const event of events) {
    if (isNemesisEvent(event)) {
      nemesis.push(event);
      continue;
    }
    if (event.type === 'invoke') {
      const previous = pending.get(event.process);
      if (previous !== undefined) {
        // A process must not have two ops outstanding; draw the earlier one as never completed rather than guess.
        doubleInvokes++;
        closed.push({ invoke: previous, completion: null });
      }
      pending.set(event.process, event);
    } else {
      const invoke = pending.get(event.process);
      if (invoke === undefined) {
        orphanCompletions++;
        continue;
      }
      pending.delete(event.process);
      closed.push({ invoke, completion: event });
    }
  }
  for (const invoke of pending.values()) closed.push({ invoke, completion: null });

  const ops: Op[] = closed.map(({ invoke, completion }) => {
    const result = completion !== null && completion.value !== undefined && !sameJson(completion.value, invoke.value) ? completion.value : undefined;
    return {
      process: invoke.process,
      f: invoke.f,
      key: invoke.key,
      value: invoke.value,
      result,
      start: invoke.time,
      end: completion === null ? endTime : Math.max(completion.time, invoke.time),
      outcome: completion === null ? 'pending' : (completion.type as Exclude<Outcome, 'pending'>),
      node: completion?.node ?? invoke.node,
      index: completion?.index,
      error: completion?.error,
    };
  });
  ops.sort((a, b) => a.start - b.start || a.process - b.process);

  const anomalies: string[] = [];
  if (orphanCompletions > 0) anomalies.push(`${orphanCompletions} completion(s) without an outstanding invocation were ignored`);
  if (doubleInvokes > 0)
    anomalies.push(`${doubleInvokes} invocation(s) were followed by another invocation of the same process; drawn as never completed`);

  return { ops, faults: faultWindows(nemesis, endTime), endTime, anomalies };
}

function faultWindows(nemesis: readonly NemesisEvent[], endTime: number): FaultWindow[] {
  const byId = new Map<number, NemesisEvent[]>();
  for (const event of nemesis) {
    const list = byId.get(event.value.fault);
    if (list === undefined) byId.set(event.value.fault, [event]);
    else list.push(event);
  }
  const windows: FaultWindow[] = [];
  for (const [id, list] of byId) {
    const first = list[0];
    if (first === undefined) continue;
    const second = list[1];
    windows.push({
      id,
      kind: first.value.kind,
      description: first.value.description,
      nodes: first.value.nodes ?? [],
      start: first.time,
      end: second === undefined ? endTime : Math.max(second.time, first.time),
      open: second === undefined,
    });
  }
  return windows.sort((a, b) => a.start - b.start || a.id - b.id);
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// text

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Safe both as HTML text and inside a double- or single-quoted attribute, in HTML and in inline SVG. */
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more chars)`;
}

function show(value: unknown): string {
  if (value === undefined) return '';
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return truncate(text, MAX_SHOWN_CHARS);
}

/** One decimal is sub-pixel at these sizes and keeps a 30k-element SVG small. */
const n1 = (x: number): string => String(Math.round(x * 10) / 10);

function formatMs(ms: number): string {
  // Thresholds just under the decade so that rounding never prints "1000 ms" or "10.00 ms".
  if (ms < 0.9995) return `${ms.toPrecision(2)} ms`;
  if (ms < 9.995) return `${ms.toFixed(2)} ms`;
  if (ms < 99.95) return `${ms.toFixed(1)} ms`;
  if (ms < 999.5) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(ms < 9995 ? 2 : 1)} s`;
}

const seconds = (ns: number): string => `${(ns / 1e9).toFixed(3)} s`;
const int = (n: number): string => n.toLocaleString('en-US');

function opTooltip(op: Op): string {
  const lines = [`p${op.process} ${op.f}${op.key === null ? '' : ` ${truncate(op.key, MAX_SHOWN_CHARS)}`} ${show(op.value)}`.trimEnd()];
  if (op.result !== undefined) lines.push(`returned ${show(op.result)}`);
  lines.push(
    op.outcome === 'pending'
      ? `never completed (invoked at ${seconds(op.start)}, still outstanding at the end of the run)`
      : `${op.outcome} after ${formatMs((op.end - op.start) / 1e6)} (invoked at ${seconds(op.start)})`,
  );
  lines.push(`node ${op.node}${op.index === undefined ? '' : `, log index ${op.index}`}`);
  if (op.error !== undefined) lines.push(`error: ${truncate(op.error, MAX_SHOWN_CHARS)}`);
  return escapeHtml(lines.join('\n'));
}

// ---------------------------------------------------------------------------
// chart geometry

const CHART_WIDTH = 1200;
const PLOT_LEFT = 64;
const PLOT_RIGHT = CHART_WIDTH - 16;
const PLOT_WIDTH = PLOT_RIGHT - PLOT_LEFT;
const FAULT_LABEL_ROW = 14;
const MAX_FAULT_LABEL_ROWS = 4;
const AXIS_SPACE = 40;

interface XScale {
  readonly domainNs: number;
  (ns: number): number;
}

function xScale(endTime: number): XScale {
  // An empty or instantaneous run still needs a non-zero domain to divide by.
  const domainNs = endTime > 0 ? endTime : 1e9;
  const scale = (ns: number): number => PLOT_LEFT + (Math.min(Math.max(ns, 0), domainNs) / domainNs) * PLOT_WIDTH;
  return Object.assign(scale, { domainNs });
}

function niceStep(range: number, targetTicks: number): number {
  const raw = range / targetTicks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const residual = raw / magnitude;
  return (residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1) * magnitude;
}

function xAxis(x: XScale, top: number, bottom: number): string {
  const rangeS = x.domainNs / 1e9;
  const step = niceStep(rangeS, 10);
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  const parts: string[] = [`<g class="axis">`, `<line x1="${PLOT_LEFT}" y1="${bottom}" x2="${PLOT_RIGHT}" y2="${bottom}"/>`];
  for (let i = 0; i * step <= rangeS + step * 1e-9; i++) {
    const s = i * step;
    const px = n1(x(s * 1e9));
    parts.push(
      `<line class="grid" x1="${px}" y1="${top}" x2="${px}" y2="${bottom}"/>`,
      `<line x1="${px}" y1="${bottom}" x2="${px}" y2="${bottom + 5}"/>`,
      `<text x="${px}" y="${bottom + 17}" text-anchor="middle">${s.toFixed(decimals)}</text>`,
    );
  }
  parts.push(`<text class="label" x="${(PLOT_LEFT + PLOT_RIGHT) / 2}" y="${bottom + 34}" text-anchor="middle">time since start (s)</text>`, `</g>`);
  return parts.join('');
}

/** Rows for fault labels so that overlapping windows do not print over each other. */
function faultLabelRows(faults: readonly FaultWindow[], x: XScale): { rows: number[]; count: number } {
  const rowEnds: number[] = [];
  const rows = faults.map((fault) => {
    const left = x(fault.start);
    const width = Math.min(labelText(fault).length, 48) * 6.2 + 8;
    let row = rowEnds.findIndex((end) => end <= left);
    if (row === -1) row = rowEnds.length < MAX_FAULT_LABEL_ROWS ? rowEnds.length : rowEnds.length - 1;
    rowEnds[row] = Math.max(rowEnds[row] ?? 0, left + width);
    return row;
  });
  return { rows, count: Math.max(rowEnds.length, 1) };
}

const labelText = (fault: FaultWindow): string => `${fault.kind}: ${fault.description}`;

function faultBands(faults: readonly FaultWindow[], x: XScale, labelTop: number, top: number, bottom: number): string {
  const { rows } = faultLabelRows(faults, x);
  const parts: string[] = ['<g class="faults">'];
  faults.forEach((fault, i) => {
    const x0 = x(fault.start);
    // A kill-restart in the same millisecond is still a fault worth seeing.
    const width = Math.max(x(fault.end) - x0, 2);
    const tooltip = escapeHtml(
      [
        `fault ${fault.id}: ${fault.kind}`,
        fault.description,
        fault.nodes.length > 0 ? `nodes ${fault.nodes.join(' ')}` : '',
        `${seconds(fault.start)} → ${fault.open ? 'end of run (never stopped)' : seconds(fault.end)}`,
      ]
        .filter((line) => line !== '')
        .join('\n'),
    );
    const colour = faultColour(fault.kind);
    const y = labelTop + (rows[i] ?? 0) * FAULT_LABEL_ROW;
    parts.push(
      `<g class="fault ${escapeHtml(safeClass(fault.kind))}" data-fault="${fault.id}"><title>${tooltip}</title>`,
      `<rect class="band" x="${n1(x0)}" y="${top}" width="${n1(width)}" height="${bottom - top}" fill="${colour}"/>`,
      `<line x1="${n1(x0)}" y1="${y + 2}" x2="${n1(x0)}" y2="${top}" stroke="${colour}"/>`,
      `<text class="flabel" x="${n1(x0 + 3)}" y="${y + 11}" fill="${colour}">${escapeHtml(truncate(labelText(fault), 48))}</text>`,
      `</g>`,
    );
  });
  parts.push('</g>');
  return parts.join('');
}

/** Fault kinds come from the history; keep them to characters that are harmless in a class list. */
const safeClass = (text: string): string => text.replace(/[^A-Za-z0-9_-]/g, '_');

// ---------------------------------------------------------------------------
// timeline

function timeline(analysis: Analysis, downsampled: boolean): { svg: string; note: string } {
  const { ops, faults, endTime } = analysis;
  const x = xScale(endTime);
  const processes = [...new Set(ops.map((op) => op.process))].sort((a, b) => a - b);
  const laneOf = new Map(processes.map((p, i) => [p, i]));
  const laneHeight = Math.max(4, Math.min(18, Math.floor(720 / Math.max(processes.length, 1))));
  const barHeight = Math.max(2, laneHeight - 4);
  const labelEvery = Math.ceil(10 / laneHeight);

  const { count: labelRows } = faultLabelRows(faults, x);
  const labelTop = 4;
  const top = labelTop + labelRows * FAULT_LABEL_ROW + 4;
  const bottom = top + Math.max(processes.length, 1) * laneHeight;
  const height = bottom + AXIS_SPACE + 4;

  const parts: string[] = [
    `<svg class="chart timeline" viewBox="0 0 ${CHART_WIDTH} ${height}" width="${CHART_WIDTH}" height="${height}" role="img" aria-label="timeline of operations per process">`,
    `<defs><pattern id="hatch-pending" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">`,
    `<rect width="6" height="6" fill="${COLOUR.info}" fill-opacity="0.3"/><rect width="3" height="6" fill="${COLOUR.info}"/></pattern></defs>`,
    faultBands(faults, x, labelTop, top, bottom),
    '<g class="lanes">',
  ];
  processes.forEach((p, i) => {
    const y = top + i * laneHeight;
    parts.push(`<line class="lane-line" x1="${PLOT_LEFT}" y1="${y + laneHeight}" x2="${PLOT_RIGHT}" y2="${y + laneHeight}"/>`);
    if (i % labelEvery === 0) {
      parts.push(`<text class="lane" x="${PLOT_LEFT - 6}" y="${n1(y + laneHeight / 2 + 4)}" text-anchor="end">p${p}</text>`);
    }
  });
  parts.push('</g><g class="ops">');

  let note = '';
  if (!downsampled) {
    for (const op of ops) {
      const lane = laneOf.get(op.process) ?? 0;
      const x0 = x(op.start);
      const width = Math.max(x(op.end) - x0, 1);
      parts.push(
        `<rect class="op ${op.outcome}" x="${n1(x0)}" y="${top + lane * laneHeight + 2}" width="${n1(width)}" height="${barHeight}"><title>${opTooltip(op)}</title></rect>`,
      );
    }
  } else {
    const binsPerLane = chooseBinsPerLane(ops, x.domainNs);
    const binNs = x.domainNs / binsPerLane;
    const binRange = (op: Op): [number, number] => {
      const first = Math.min(binsPerLane - 1, Math.floor(op.start / binNs));
      // An op that ends exactly on a bin boundary does not belong to the next bin.
      return [first, Math.min(binsPerLane - 1, Math.max(first, Math.ceil(op.end / binNs) - 1))];
    };
    // counts[lane][bin][severity], allocated lazily because most processes of a long run live briefly.
    const counts = new Map<number, Map<number, number[]>>();
    for (const op of ops) {
      const lane = laneOf.get(op.process) ?? 0;
      let laneBins = counts.get(lane);
      if (laneBins === undefined) counts.set(lane, (laneBins = new Map()));
      const [first, last] = binRange(op);
      for (let bin = first; bin <= last; bin++) {
        let c = laneBins.get(bin);
        if (c === undefined) laneBins.set(bin, (c = [0, 0, 0, 0]));
        c[SEVERITY[op.outcome]] = (c[SEVERITY[op.outcome]] ?? 0) + 1;
      }
    }
    for (const [lane, laneBins] of [...counts].sort((a, b) => a[0] - b[0])) {
      const p = processes[lane];
      for (const [bin, c] of [...laneBins].sort((a, b) => a[0] - b[0])) {
        let worst = 0;
        c.forEach((n, severity) => {
          if (n > 0) worst = severity;
        });
        const outcome = OUTCOMES[worst] ?? 'ok';
        const total = c.reduce((a, b) => a + b, 0);
        // Worst-outcome colour alone paints every bin red in a workload where some cas always fail;
        // the share of the worst outcome sets the strength, so a bin where everything failed stands out.
        const share = outcome === 'ok' ? 1 : (c[worst] ?? 0) / Math.max(total, 1);
        const opacity = outcome === 'ok' ? '' : ` fill-opacity="${(0.3 + 0.7 * share).toFixed(2)}"`;
        const x0 = x(bin * binNs);
        const x1 = x((bin + 1) * binNs);
        const breakdown = OUTCOMES.map((o, i) => [o, c[i] ?? 0] as const)
          .filter(([, n]) => n > 0)
          .map(([o, n]) => `${OUTCOME_LABEL[o]} ${n}`)
          .join(', ');
        const tooltip = `p${p ?? '?'}, ${((bin * binNs) / 1e9).toFixed(2)}–${(((bin + 1) * binNs) / 1e9).toFixed(2)} s\n${total} op(s) active: ${breakdown}`;
        parts.push(
          `<rect class="bin ${outcome}" x="${n1(x0)}" y="${top + lane * laneHeight + 2}" width="${n1(Math.max(x1 - x0, 1))}" height="${barHeight}"${opacity}><title>${escapeHtml(tooltip)}</title></rect>`,
        );
      }
    }
    note =
      `Downsampled: ${int(ops.length)} operations exceed ${int(DOWNSAMPLE_ABOVE_OPS)}, so the timeline is drawn in bins of ${formatMs(binNs / 1e6)} (${binsPerLane} across the run). ` +
      `A bin takes the colour of the worst operation active during it (never completed > info > fail > ok), stronger the larger that outcome's share of the bin; hover a bin for its counts.`;
  }
  parts.push('</g>', xAxis(x, top, bottom));
  parts.push(`<rect class="frame" x="${PLOT_LEFT}" y="${top}" width="${PLOT_WIDTH}" height="${bottom - top}"/>`);
  parts.push(
    `<text class="label" x="14" y="${n1((top + bottom) / 2)}" transform="rotate(-90 14 ${n1((top + bottom) / 2)})" text-anchor="middle">process</text>`,
  );
  parts.push('</svg>');
  return { svg: parts.join(''), note };
}

/**
 * The finest binning whose non-empty bins fit the budget. Counting the bins
 * actually drawn (not lanes × bins) matters: a run with many timeouts has
 * hundreds of processes that each live for one op and fill one bin.
 */
function chooseBinsPerLane(ops: readonly Op[], domainNs: number): number {
  for (const bins of BINS_PER_LANE_CHOICES) {
    const binNs = domainNs / bins;
    // Ops are sorted by start, so per process the bins touched only move forward.
    const lastCounted = new Map<number, number>();
    let drawn = 0;
    for (const op of ops) {
      const first = Math.min(bins - 1, Math.floor(op.start / binNs));
      const last = Math.min(bins - 1, Math.max(first, Math.ceil(op.end / binNs) - 1));
      const from = Math.max(first, (lastCounted.get(op.process) ?? -1) + 1);
      if (last >= from) {
        drawn += last - from + 1;
        lastCounted.set(op.process, last);
      }
    }
    if (drawn <= TIMELINE_BIN_BUDGET) return bins;
  }
  // Only thousands of processes get here; 20 bins per lane still bounds the page by the process count.
  return 20;
}

// ---------------------------------------------------------------------------
// latency scatter

/** Keeps every `stride`-th element: deterministic, and spread evenly over time because ops are sorted by start. */
function strided<T>(items: readonly T[], budget: number): { kept: T[]; stride: number } {
  const stride = Math.max(1, Math.ceil(items.length / Math.max(budget, 1)));
  const kept: T[] = [];
  for (let i = 0; i < items.length; i += stride) kept.push(items[i] as T);
  return { kept, stride };
}

function marker(f: string, cx: number, cy: number, attrs: string, inner: string): string {
  const x = n1(cx);
  const y = n1(cy);
  switch (f) {
    case 'read':
      return `<circle ${attrs} cx="${x}" cy="${y}" r="2.6">${inner}</circle>`;
    case 'write':
      return `<rect ${attrs} x="${n1(cx - 2.3)}" y="${n1(cy - 2.3)}" width="4.6" height="4.6">${inner}</rect>`;
    case 'cas':
      return `<path ${attrs} d="M${x} ${n1(cy - 3.4)}l3.4 3.4-3.4 3.4-3.4-3.4z">${inner}</path>`;
    case 'append':
      return `<path ${attrs} d="M${x} ${n1(cy - 3.2)}l3 5.4h-6z">${inner}</path>`;
    default:
      return `<path ${attrs} d="M${n1(cx - 3)} ${y}h6M${x} ${n1(cy - 3)}v6" stroke-width="2">${inner}</path>`;
  }
}

const SHAPE_LEGEND: readonly [string, string][] = [
  ['read', 'circle'],
  ['write', 'square'],
  ['cas', 'diamond'],
  ['append', 'triangle'],
];

function latencyScatter(analysis: Analysis, downsampled: boolean): { svg: string; note: string } {
  const { faults, endTime } = analysis;
  const completed = analysis.ops.filter((op) => op.outcome !== 'pending');
  const neverCompleted = analysis.ops.length - completed.length;

  let points: Op[] = completed;
  const notes: string[] = [];
  if (downsampled) {
    const okOps = completed.filter((op) => op.outcome === 'ok');
    const abnormal = completed.filter((op) => op.outcome !== 'ok');
    const ok = strided(okOps, SCATTER_OK_BUDGET);
    const bad = strided(abnormal, SCATTER_ABNORMAL_CAP);
    points = [...ok.kept, ...bad.kept];
    notes.push(
      `Downsampled: ${bad.stride === 1 ? `all ${int(abnormal.length)} fail/info operations are shown` : `fail/info operations exceed ${int(SCATTER_ABNORMAL_CAP)}, so 1 in ${bad.stride} is shown (${int(bad.kept.length)} of ${int(abnormal.length)})`}; ` +
        `ok operations are sampled 1 in ${ok.stride}, evenly over time (${int(ok.kept.length)} of ${int(okOps.length)} shown).`,
    );
  }
  if (neverCompleted > 0) notes.push(`${int(neverCompleted)} operation(s) never completed and have no latency to plot.`);
  // ok first so that the rarer fail/info points are drawn on top.
  points = [...points].sort((a, b) => SEVERITY[a.outcome] - SEVERITY[b.outcome] || a.start - b.start);

  const x = xScale(endTime);
  // Latencies of zero happen with coarse clocks; a log axis needs them nudged to a visible floor.
  const FLOOR_MS = 0.001;
  const latencyMs = (op: Op): number => Math.max((op.end - op.start) / 1e6, FLOOR_MS);
  let minMs = Infinity;
  let maxMs = 0;
  for (const op of points) {
    const ms = latencyMs(op);
    if (ms < minMs) minMs = ms;
    if (ms > maxMs) maxMs = ms;
  }
  if (points.length === 0) {
    minMs = 1;
    maxMs = 1000;
  }
  let lowDecade = Math.floor(Math.log10(minMs));
  let highDecade = Math.ceil(Math.log10(maxMs));
  if (highDecade - lowDecade < 2) {
    lowDecade -= 1;
    highDecade = lowDecade + Math.max(2, highDecade - lowDecade);
  }

  const { count: labelRows } = faultLabelRows(faults, x);
  const labelTop = 4;
  const top = labelTop + labelRows * FAULT_LABEL_ROW + 4;
  const bottom = top + 360;
  const height = bottom + AXIS_SPACE + 4;
  const y = (ms: number): number => bottom - ((Math.log10(ms) - lowDecade) / (highDecade - lowDecade)) * (bottom - top);

  const parts: string[] = [
    `<svg class="chart latency" viewBox="0 0 ${CHART_WIDTH} ${height}" width="${CHART_WIDTH}" height="${height}" role="img" aria-label="latency of each operation against its invocation time">`,
    faultBands(faults, x, labelTop, top, bottom),
    '<g class="axis">',
  ];
  // Decades always; 2 and 5 as well when there are few decades, so the axis is readable without a ruler.
  const multipliers = highDecade - lowDecade <= 3 ? [1, 2, 5] : [1];
  for (let d = lowDecade; d <= highDecade; d++) {
    for (const m of multipliers) {
      const ms = m * 10 ** d;
      if (d === highDecade && m > 1) continue;
      const py = n1(y(ms));
      parts.push(
        `<line class="grid${m === 1 ? '' : ' minor'}" x1="${PLOT_LEFT}" y1="${py}" x2="${PLOT_RIGHT}" y2="${py}"/>`,
        `<line x1="${PLOT_LEFT - 5}" y1="${py}" x2="${PLOT_LEFT}" y2="${py}"/>`,
        `<text x="${PLOT_LEFT - 8}" y="${n1(y(ms) + 4)}" text-anchor="end">${tickLabel(ms)}</text>`,
      );
    }
  }
  parts.push(`<line x1="${PLOT_LEFT}" y1="${top}" x2="${PLOT_LEFT}" y2="${bottom}"/>`, '</g>');
  parts.push(
    `<text class="label" x="14" y="${n1((top + bottom) / 2)}" transform="rotate(-90 14 ${n1((top + bottom) / 2)})" text-anchor="middle">latency (log scale)</text>`,
  );
  parts.push('<g class="points">');
  for (const op of points) {
    parts.push(marker(op.f, x(op.start), y(latencyMs(op)), `class="pt ${op.outcome}"`, `<title>${opTooltip(op)}</title>`));
  }
  parts.push('</g>', xAxis(x, top, bottom));
  parts.push(`<rect class="frame" x="${PLOT_LEFT}" y="${top}" width="${PLOT_WIDTH}" height="${bottom - top}"/>`, '</svg>');
  return { svg: parts.join(''), note: notes.join(' ') };
}

function tickLabel(ms: number): string {
  if (ms >= 1000) return `${ms / 1000} s`;
  if (ms >= 1) return `${ms} ms`;
  if (ms >= 0.001) return `${Math.round(ms * 1000)} µs`;
  return `${Math.round(ms * 1e6)} ns`;
}

// ---------------------------------------------------------------------------
// tables

type Verdict = 'pass' | 'fail' | 'unknown';

function overallVerdict(checkers: ReportInput['checkers']): Verdict {
  if (checkers.some((c) => c.valid === false)) return 'fail';
  // No checkers means nothing was checked, which must not read as a pass.
  if (checkers.length === 0 || checkers.some((c) => c.valid !== true)) return 'unknown';
  return 'pass';
}

const verdictOf = (valid: boolean | 'unknown'): Verdict => (valid === true ? 'pass' : valid === false ? 'fail' : 'unknown');
const verdictBadge = (v: Verdict): string => `<span class="verdict ${v}">${v.toUpperCase()}</span>`;

function checkersTable(checkers: ReportInput['checkers']): string {
  if (checkers.length === 0) return '<p class="note">No checkers ran.</p>';
  const rows = checkers.map((c) => {
    const details =
      c.details === undefined || c.details === ''
        ? ''
        : `<details><summary>details</summary><pre>${escapeHtml(truncate(c.details, MAX_DETAILS_CHARS))}</pre></details>`;
    return `<tr class="checker"><td>${escapeHtml(c.name)}</td><td>${verdictBadge(verdictOf(c.valid))}</td><td>${escapeHtml(c.summary)}${details}</td></tr>`;
  });
  return `<table class="checkers"><thead><tr><th>checker</th><th>verdict</th><th>summary</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function settingsTable(settings: ReportInput['settings']): string {
  const entries = Object.entries(settings);
  if (entries.length === 0) return '<p class="note">No settings recorded.</p>';
  const rows = entries.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`);
  return `<table class="settings"><tbody>${rows.join('')}</tbody></table>`;
}

const F_ORDER = ['read', 'write', 'cas', 'append'];

function countsTable(ops: readonly Op[]): string {
  const byF = new Map<string, number[]>();
  for (const op of ops) {
    let row = byF.get(op.f);
    if (row === undefined) byF.set(op.f, (row = [0, 0, 0, 0]));
    row[SEVERITY[op.outcome]] = (row[SEVERITY[op.outcome]] ?? 0) + 1;
  }
  const fs = [...byF.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const totals = [0, 0, 0, 0];
  const rows = fs.map((f) => {
    const row = byF.get(f) ?? [];
    for (const [i, n] of row.entries()) totals[i] = (totals[i] ?? 0) + n;
    return countRow(escapeHtml(f), row);
  });
  rows.push(countRow('all', totals, 'total'));
  return (
    `<table class="counts"><thead><tr><th>f</th>${OUTCOMES.map((o) => `<th class="${o}">${OUTCOME_LABEL[o]}</th>`).join('')}<th>total</th></tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}

const rank = (f: string): number => {
  const i = F_ORDER.indexOf(f);
  return i === -1 ? F_ORDER.length : i;
};

function countRow(label: string, row: readonly number[], cls = ''): string {
  const cells = OUTCOMES.map((_, i) => `<td>${int(row[i] ?? 0)}</td>`).join('');
  return `<tr${cls === '' ? '' : ` class="${cls}"`}><th>${label}</th>${cells}<td>${int(row.reduce((a, b) => a + b, 0))}</td></tr>`;
}

function faultsTable(faults: readonly FaultWindow[]): string {
  if (faults.length === 0) return '<p class="note">No faults were injected.</p>';
  const byKind = new Map<string, FaultWindow[]>();
  for (const fault of faults) {
    const list = byKind.get(fault.kind);
    if (list === undefined) byKind.set(fault.kind, [fault]);
    else list.push(fault);
  }
  const rows = [...byKind].map(([kind, list]) => {
    const totalNs = list.reduce((a, w) => a + (w.end - w.start), 0);
    return `<tr><th><span class="swatch" style="background:${faultColour(kind)}"></span>${escapeHtml(kind)}</th><td>${list.length}</td><td>${(totalNs / 1e9).toFixed(1)} s</td></tr>`;
  });
  return `<table class="faults"><thead><tr><th>kind</th><th>windows</th><th>total time</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function legend(faults: readonly FaultWindow[], withPending: boolean, shapes: boolean): string {
  const items: string[] = [];
  for (const o of ['ok', 'fail', 'info'] as const) items.push(`<span><span class="swatch ${o}"></span>${o}</span>`);
  if (withPending) items.push(`<span><span class="swatch pending"></span>never completed (runs to the end)</span>`);
  if (shapes) {
    for (const [f, shape] of SHAPE_LEGEND) {
      items.push(
        `<span><svg class="glyph" viewBox="-5 -5 10 10" width="12" height="12">${marker(f, 0, 0, 'class="glyph-mark"', '')}</svg>${f} (${shape})</span>`,
      );
    }
  }
  const kinds = [...new Set(faults.map((f) => f.kind))];
  for (const kind of kinds) {
    items.push(`<span><span class="swatch band" style="background:${faultColour(kind)}"></span>${escapeHtml(kind)} window</span>`);
  }
  return `<div class="legend">${items.join('')}</div>`;
}

// ---------------------------------------------------------------------------

const CSS = `
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#1d1d1f;background:#fff;max-width:1260px}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:4px 0 12px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:#f4f4f6}table.counts td{text-align:right}tr.total{font-weight:600}
.verdict{display:inline-block;padding:1px 8px;border-radius:4px;font-weight:700;color:#fff;font-size:12px;letter-spacing:.04em}
.verdict.pass{background:${COLOUR.ok}}.verdict.fail{background:${COLOUR.fail}}.verdict.unknown{background:${COLOUR.info}}
.overall{font-size:18px;margin:8px 0 16px}.overall .verdict{font-size:18px;padding:3px 14px}
.row{display:flex;flex-wrap:wrap;gap:32px}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f9;padding:8px;max-height:480px;overflow:auto;font-size:12px}
details summary{cursor:pointer;color:#555}
.note{color:#555;font-size:13px}.note.downsampled{background:#fff7e0;border-left:3px solid ${COLOUR.info};padding:4px 8px}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;margin:4px 0 8px;align-items:center}
.legend>span{display:inline-flex;align-items:center;gap:4px}
.swatch{display:inline-block;width:14px;height:10px;border-radius:2px;vertical-align:middle;margin-right:4px}
.swatch.ok{background:${COLOUR.ok}}.swatch.fail{background:${COLOUR.fail}}.swatch.info{background:${COLOUR.info}}
.swatch.pending{background:repeating-linear-gradient(45deg,${COLOUR.info} 0 3px,#f6dfa6 3px 6px)}.swatch.band{opacity:.35}
svg.chart{display:block;max-width:100%;height:auto;font-size:11px;background:#fff}
svg text{fill:#333}svg text.label{font-size:12px;fill:#555}svg text.flabel{font-size:11px}svg text.lane{font-size:10px}
.axis line{stroke:#888}.axis line.grid{stroke:#eee}.axis line.grid.minor{stroke:#f4f4f4}
.frame{fill:none;stroke:#bbb}.lane-line{stroke:#f0f0f0}
.band{fill-opacity:.14}
.op.ok,.bin.ok{fill:${COLOUR.ok}}.op.fail,.bin.fail{fill:${COLOUR.fail}}.op.info,.bin.info{fill:${COLOUR.info}}
.op.pending,.bin.pending{fill:url(#hatch-pending);opacity:.75}
.pt{fill-opacity:.75}.pt.ok{fill:${COLOUR.ok};stroke:${COLOUR.ok};fill-opacity:.45}.pt.fail{fill:${COLOUR.fail};stroke:${COLOUR.fail}}.pt.info{fill:${COLOUR.info};stroke:${COLOUR.info}}
.pt{stroke-width:.5}.glyph-mark{fill:#555;stroke:#555}
`;

/** A complete, self-contained HTML document describing one run. */
export function renderReport(input: ReportInput): string {
  const analysis = analyse(input.events);
  const downsampled = analysis.ops.length > DOWNSAMPLE_ABOVE_OPS;
  const verdict = overallVerdict(input.checkers);
  const tl = timeline(analysis, downsampled);
  const lat = latencyScatter(analysis, downsampled);
  const hasPending = analysis.ops.some((op) => op.outcome === 'pending');
  const processCount = new Set(analysis.ops.map((op) => op.process)).size;
  const title = escapeHtml(input.title);

  const note = (text: string, cls = ''): string => (text === '' ? '' : `<p class="note${cls}">${escapeHtml(text)}</p>`);

  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${title}</title>`,
    `<style>${CSS}</style>`,
    '</head><body>',
    `<header><h1>${title}</h1>`,
    `<div class="overall">Overall: ${verdictBadge(verdict)}</div></header>`,
    '<section id="checkers"><h2>Checkers</h2>',
    checkersTable(input.checkers),
    '</section>',
    '<section id="run"><h2>Run</h2><div class="row">',
    `<div><h3>Settings</h3>${settingsTable(input.settings)}</div>`,
    `<div><h3>Operations</h3>${countsTable(analysis.ops)}` +
      note(
        `${int(analysis.ops.length)} operations by ${int(processCount)} processes over ${(analysis.endTime / 1e9).toFixed(1)} s. ` +
          'Checkers treat an operation that never completed like info: it may or may not have taken effect.',
      ) +
      '</div>',
    `<div><h3>Faults</h3>${faultsTable(analysis.faults)}</div>`,
    '</div>',
    analysis.anomalies.map((a) => note(`History anomaly: ${a}.`, ' anomaly')).join(''),
    '</section>',
    '<section id="timeline"><h2>Timeline</h2>',
    note(
      'One lane per client process, each operation a bar from invocation to completion. A process that crashed (info) is replaced by a new process number, so later lanes start later. Shaded bands are fault windows. Hover for details.',
    ),
    note(tl.note, ' downsampled'),
    legend(analysis.faults, hasPending, false),
    tl.svg,
    '</section>',
    '<section id="latency"><h2>Latency over time</h2>',
    note('Each completed operation at its invocation time, with its latency from invocation to completion on a log scale.'),
    note(lat.note, downsampled ? ' downsampled' : ''),
    legend(analysis.faults, false, true),
    lat.svg,
    '</section>',
    '</body></html>',
    '',
  ].join('\n');
}
