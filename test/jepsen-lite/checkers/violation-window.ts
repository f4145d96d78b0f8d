/**
 * Shrinks a key's non-linearizable history to a small window of time that is
 * still non-linearizable on its own (see register-problem.ts for why such a
 * window is a genuine witness).
 *
 * Failing is monotone in the window: a window that fails keeps failing when
 * widened, since the wider one only adds or strengthens operations. So,
 * starting from a span known to fail, the end is found by bisection (the
 * earliest that still fails with the span's start), then the start (the
 * latest that still fails with that end). Ends are tried only at return times
 * and starts only at call times: between two of those, moving the edge inward
 * only drops or weakens operations further.
 */
import type { ClientEvent } from '../history.js';
import { isUncertain, type RegisterOp } from './register-operations.js';
import { membersOf, type RegisterProblem, type Span } from './register-problem.js';

export interface WindowOp {
  readonly invoke: ClientEvent;
  /** `null`: the operation never completed. */
  readonly completion: ClientEvent | null;
  /** The operation crosses an edge of the window: inside it, it only may have taken effect. */
  readonly crossesEdge: boolean;
}

export interface ViolationWindow {
  /** Nanoseconds; `null` when the window starts at the key's first operation, with the register empty. */
  readonly startNs: number | null;
  readonly endNs: number;
  /** In order of invocation. */
  readonly ops: readonly WindowOp[];
  /** False when the time budget ran out while shrinking: the window is then larger than it could be. */
  readonly shrunk: boolean;
}

/**
 * A small window of `ops` that cannot be linearized, found inside `failing`,
 * a span known not to be linearizable (the whole history at worst). Once
 * `deadline` passes, the smallest window proven so far is returned.
 */
export function smallestViolationWindow(problem: RegisterProblem, failing: Span, deadline: number): ViolationWindow {
  const ops = problem.ops;
  let shrunk = true;
  const fails = (span: Span): boolean => {
    // A share of what is left, so that one hard window cannot use up the budget of the others.
    const outcome = problem.fails(span, performance.now() + (deadline - performance.now()) / 4);
    if (outcome === 'unknown') shrunk = false;
    return outcome === true;
  };

  const ends = distinctSorted(ops.filter((op) => !isUncertain(op) && op.call >= failing.from && op.ret <= failing.to).map((op) => op.ret));
  if (ends.length === 0) return windowOf(ops, failing, false);
  // The last end is known to fail: operations invoked after it could only come after every certain one.
  let fewest = ends.length - 1;
  for (let lo = 0; lo < fewest; ) {
    const mid = (lo + fewest) >> 1;
    if (fails({ from: failing.from, to: ends[mid]! })) fewest = mid;
    else lo = mid + 1;
  }
  const to = ends[fewest]!;

  const firstCall = ops[0]?.call ?? 0;
  const starts = distinctSorted(ops.map((op) => op.call).filter((call) => call > firstCall && call > failing.from && call <= to));
  // Index -1 stands for the failing span's own start, known to fail with this end.
  let latest = -1;
  for (let hi = starts.length - 1; latest < hi; ) {
    const mid = (latest + hi + 1) >> 1;
    if (fails({ from: starts[mid]!, to })) latest = mid;
    else hi = mid - 1;
  }
  const from = latest < 0 ? failing.from : starts[latest]!;
  return windowOf(ops, { from, to }, shrunk);
}

function windowOf(ops: readonly RegisterOp[], span: Span, shrunk: boolean): ViolationWindow {
  const members = membersOf(ops, span);
  return {
    startNs: span.from === -Infinity ? null : span.from,
    endNs: span.to === Infinity ? ops.reduce((latest, op) => Math.max(latest, isUncertain(op) ? op.call : op.ret), 0) : span.to,
    ops: members.map(({ op, crossesEdge }) => ({ invoke: op.invoke, completion: op.completion, crossesEdge })),
    shrunk,
  };
}

/**
 * The window as a history of its own, to check it again: an operation that
 * crosses an edge completes with `info`. Its register starts empty, which only
 * narrows the "any value" the window allows at its start, so this history is
 * not linearizable either.
 */
export function windowAsHistory(window: ViolationWindow): ClientEvent[] {
  // Listed in invocation order, each invoke followed by its completion, so a stable sort by time keeps every
  // process's events in program order even when one operation completes at the instant the next is invoked.
  const events = window.ops.flatMap(({ invoke, completion, crossesEdge }): ClientEvent[] => {
    if (completion === null) return [invoke];
    return [invoke, crossesEdge ? { ...invoke, type: 'info', time: completion.time, error: 'crosses-window-edge' } : completion];
  });
  return events.sort((x, y) => x.time - y.time);
}

const distinctSorted = (times: readonly number[]): number[] => [...new Set(times)].sort((x, y) => x - y);
