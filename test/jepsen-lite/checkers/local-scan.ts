/**
 * Looks for a violation in short windows of a history before proving it for
 * the whole history.
 *
 * Proving a history is not linearizable means ruling out every order of
 * everything before the anomaly, and with many operations of unknown outcome
 * that grows exponentially. But anomalies are usually local (a stale read, a
 * lost write), and a window that fails on its own is proof enough (see
 * register-problem.ts). So windows of a few dozen certain operations are
 * checked first, then wider ones, under the relaxed semantics (see
 * OptionalSemantics), which is fast and all that proving a violation needs.
 */
import { isUncertain } from './register-operations.js';
import type { RegisterProblem, Span } from './register-problem.js';

const FIRST_WIDTH = 64;
const WIDTH_GROWTH = 4;
/** The least a window gets, however many are left: enough for a window of `FIRST_WIDTH` that is easy either way. */
const MIN_WINDOW_MS = 10;

/** A span that cannot be linearized, or null if none was found by `deadline`. */
export function findFailingWindow(problem: RegisterProblem, deadline: number): Span | null {
  const certain = problem.ops.filter((op) => !isUncertain(op));
  const widths: number[] = [];
  // Narrower than the whole history: the whole history is the caller's job.
  for (let width = FIRST_WIDTH; width < certain.length; width *= WIDTH_GROWTH) widths.push(width);

  for (const [level, width] of widths.entries()) {
    // Each width gets an equal share of what is left; time a width does not use passes to the next.
    const levelDeadline = performance.now() + (deadline - performance.now()) / (widths.length - level);
    // Windows overlap by half, so an anomaly spanning up to half a window lies wholly inside one of them.
    const firsts: number[] = [];
    for (let first = 0; first + width / 2 < certain.length || first === 0; first += width / 2) firsts.push(first);
    for (const [index, first] of firsts.entries()) {
      const now = performance.now();
      if (now >= levelDeadline) break;
      const chunk = certain.slice(first, first + width);
      const span: Span = {
        from: first === 0 ? -Infinity : chunk[0]!.call,
        to: chunk.reduce((latest, op) => Math.max(latest, op.ret), -Infinity),
      };
      // Easy windows leave their share to the rest, so a hard one late in the history still gets time.
      const share = Math.max(MIN_WINDOW_MS, (levelDeadline - now) / (firsts.length - index));
      if (problem.check(span, Math.min(levelDeadline, now + share), 'relaxed') === 'not-linearizable') return span;
    }
  }
  return null;
}
