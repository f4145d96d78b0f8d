/**
 * Linearizability checker for register histories: each key is checked on its
 * own (linearizability is compositional), and for a key that fails, a small
 * window of its history that fails on its own is reported.
 *
 * What the events mean:
 * - An invoke is paired with the next completion of the same process.
 * - `ok`: took effect once, inside [invoke, completion].
 * - `info`, or no completion at all: a write or cas may take effect at any
 *   time after its invoke, or never; a read observed nothing and is dropped.
 * - `fail`: took no effect and is dropped, except a cas whose error is
 *   `compare-failed` or absent (Jepsen's etcd histories): it changed nothing
 *   but saw a value other than its expected one inside its interval.
 * - `append` events are not register operations and are ignored.
 */
import type { ClientEvent } from '../history.js';
import { findFailingWindow } from './local-scan.js';
import { registerOperationsByKey } from './register-operations.js';
import { RegisterProblem, type Span, WHOLE_HISTORY } from './register-problem.js';
import { smallestViolationWindow, type ViolationWindow } from './violation-window.js';

export { formatViolation } from './format-violation.js';
export { type ViolationWindow, type WindowOp, windowAsHistory } from './violation-window.js';

/** `'unknown'`: the time budget ran out first. The checker never guesses. */
export type Verdict = boolean | 'unknown';

export interface KeyVerdict {
  readonly key: string;
  readonly valid: Verdict;
  /** Operations invoked on the key, whether or not they could matter. */
  readonly operations: number;
  /** When `valid` is false: a window of the history that cannot be linearized. */
  readonly window?: ViolationWindow;
  /** Checking and, on a violation, shrinking the window. */
  readonly elapsedMs: number;
}

export interface LinearizabilityResult {
  /** False if any key is false, else `'unknown'` if any key is, else true. */
  readonly valid: Verdict;
  readonly keys: readonly KeyVerdict[];
}

export interface LinearizabilityOptions {
  /** Budget for deciding each key. Default 60 s. */
  readonly timeoutMs?: number;
  /** Budget for shrinking each violation to a small window; when it runs out the window is larger. Default 10 s. */
  readonly windowTimeoutMs?: number;
}

export function checkLinearizability(events: readonly ClientEvent[], options: LinearizabilityOptions = {}): LinearizabilityResult {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const windowTimeoutMs = options.windowTimeoutMs ?? 10_000;
  const keys = registerOperationsByKey(events).map(({ key, invoked, ops }): KeyVerdict => {
    const started = performance.now();
    const problem = new RegisterProblem(ops);
    const decision = decide(problem, started + timeoutMs);
    const elapsed = () => performance.now() - started;
    if (decision === 'linearizable') return { key, valid: true, operations: invoked, elapsedMs: elapsed() };
    if (decision === 'gave-up') return { key, valid: 'unknown', operations: invoked, elapsedMs: elapsed() };
    const windowDeadline = performance.now() + windowTimeoutMs;
    // Shrinking from the whole history bisects its prefixes, each as hard to refute as the history: a short failing window is a better start.
    const failing = decision.scanned ? decision.failing : (findFailingWindow(problem, windowDeadline) ?? decision.failing);
    const window = smallestViolationWindow(problem, failing, windowDeadline);
    return { key, valid: false, operations: invoked, window, elapsedMs: elapsed() };
  });
  const valid: Verdict = keys.some((k) => k.valid === false) ? false : keys.some((k) => k.valid === 'unknown') ? 'unknown' : true;
  return { valid, keys };
}

/** Shares of a key's budget for the steps of `decide`; the last try has what is left. */
const FIRST_TRY_SHARE = 0.1;
const FIRST_TRY_MAX_MS = 2_000;
const SCAN_SHARE = 0.3;
const RELAXED_SHARE = 0.3;

type Decision = 'linearizable' | 'gave-up' | { readonly failing: Span; readonly scanned: boolean };

/**
 * Most histories are decided by a first, short try at the whole history: a
 * valid one by the first linearization found, a short one either way. A long
 * invalid one is hard to refute whole, as every order of everything before
 * the anomaly must be ruled out; but the anomaly is usually local, so short
 * windows are scanned next, then the whole history under the relaxed
 * semantics (see OptionalSemantics), and only then exactly, with what is left.
 */
function decide(problem: RegisterProblem, deadline: number): Decision {
  const started = performance.now();
  const budget = deadline - started;
  const until = (share: number): number => Math.min(deadline, performance.now() + budget * share);

  const first = problem.check(WHOLE_HISTORY, started + Math.min(budget * FIRST_TRY_SHARE, FIRST_TRY_MAX_MS));
  if (first === 'linearizable') return first;
  if (first === 'not-linearizable') return { failing: WHOLE_HISTORY, scanned: false };
  const local = findFailingWindow(problem, until(SCAN_SHARE));
  if (local !== null) return { failing: local, scanned: true };
  if (problem.check(WHOLE_HISTORY, until(RELAXED_SHARE), 'relaxed') === 'not-linearizable') return { failing: WHOLE_HISTORY, scanned: true };
  const last = problem.check(WHOLE_HISTORY, deadline);
  return last === 'not-linearizable' ? { failing: WHOLE_HISTORY, scanned: true } : last;
}
