/** Renders a key's verdict, and for a violation its window, for people. */
import type { ClientEvent } from '../history.js';
import type { KeyVerdict } from './linearizability.js';
import type { WindowOp } from './violation-window.js';

const CROSSING_MARK = '*';

export function formatViolation(verdict: KeyVerdict): string {
  const name = JSON.stringify(verdict.key);
  if (verdict.valid === true) return `key ${name} is linearizable (${verdict.operations} operations)`;
  if (verdict.valid === 'unknown') return `key ${name}: undecided, the time budget ran out (${verdict.operations} operations)`;
  const window = verdict.window;
  if (window === undefined) return `key ${name} is not linearizable (${verdict.operations} operations)`;

  const one = window.ops.length === 1;
  const from = window.startNs === null ? 'its first operation' : `${ms(window.startNs)} ms`;
  const start =
    window.startNs === null ? 'the register starts empty' : 'when the window opens, the register may hold any value the history writes, or none';
  const lines = [
    `key ${name} is not linearizable: ${one ? 'this' : 'these'} ${window.ops.length} of its ${verdict.operations} operations, ` +
      `from ${from} to ${ms(window.endNs)} ms, cannot be linearized on ${one ? 'its' : 'their'} own (${start})` +
      (window.shrunk ? '' : '; the time budget ran out before the window could be shrunk further'),
    ...table([['', 'process', 'type', 'f', 'value', 'invoke ms', 'complete ms', 'node'], ...window.ops.map(row)]),
  ];
  if (window.ops.some((op) => op.crossesEdge)) {
    lines.push(`${CROSSING_MARK} crosses an edge of the window: inside it, it may or may not have taken effect`);
  }
  return lines.join('\n');
}

function row({ invoke, completion, crossesEdge }: WindowOp): string[] {
  return [
    crossesEdge ? CROSSING_MARK : '',
    String(invoke.process),
    completion?.type ?? 'none',
    invoke.f,
    shownValue(invoke, completion),
    ms(invoke.time),
    completion === null ? '-' : ms(completion.time),
    invoke.node,
  ];
}

/** A read shows what it returned; the others show their argument, which the invoke carries. */
function shownValue(invoke: ClientEvent, completion: ClientEvent | null): string {
  if (invoke.f !== 'read') return JSON.stringify(invoke.value ?? null);
  return completion?.type === 'ok' ? JSON.stringify(completion.value ?? null) : '?';
}

const ms = (ns: number): string => (ns / 1e6).toFixed(3);

/** Text columns left-aligned, numeric ones right-aligned. */
function table(rows: readonly string[][]): string[] {
  const header = rows[0] ?? [];
  const body = rows.slice(1);
  const widths = header.map((_, column) => rows.reduce((widest, cells) => Math.max(widest, (cells[column] ?? '').length), 0));
  const numeric = header.map((_, column) => body.length > 0 && body.every((cells) => /^(-?[\d.]+|-)$/.test(cells[column] ?? '')));
  return rows.map((cells) =>
    cells
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}
