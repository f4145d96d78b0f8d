/**
 * Turns a history's events into register operations with the meaning the
 * linearizability checker gives them: which ones took effect for sure, which
 * ones may have, and which ones only observed something.
 */
import { type ClientEvent, COMPARE_FAILED, type RegisterValue } from '../history.js';

/**
 * - `read`: observed `arg`.
 * - `write`: set the register to `arg`.
 * - `cas`: found `arg` and set the register to `next`.
 * - `cas-refused`: a cas whose comparison failed: changed nothing, but the
 *   register did not hold `arg` at some moment inside its interval.
 */
export type RegisterOpKind = 'read' | 'write' | 'cas' | 'cas-refused';

export interface RegisterOp {
  readonly kind: RegisterOpKind;
  readonly arg: RegisterValue;
  /** The value a `cas` sets; `null` for the other kinds. */
  readonly next: RegisterValue;
  readonly call: number;
  /** `Infinity` when the outcome is unknown: it may take effect at any time after `call`, or never. */
  readonly ret: number;
  readonly invoke: ClientEvent;
  /** `null` when the operation never completed. */
  readonly completion: ClientEvent | null;
}

export interface KeyOperations {
  readonly key: string;
  /** Every operation invoked on the key, including those that cannot matter (a failed write, a timed-out read). */
  readonly invoked: number;
  /** The operations the checker has to place, in order of invocation. */
  readonly ops: readonly RegisterOp[];
}

export const isUncertain = (op: RegisterOp): boolean => op.ret === Infinity;
export const changesRegister = (op: RegisterOp): boolean => op.kind === 'write' || op.kind === 'cas';

/** Groups the register operations by key, in order of each key's first invocation. */
export function registerOperationsByKey(events: readonly ClientEvent[]): KeyOperations[] {
  const byKey = new Map<string, { invoked: number; ops: RegisterOp[] }>();
  // A process has one operation outstanding, so its next completion answers its last invoke.
  const pending = new Map<number, { invoke: ClientEvent; ops: RegisterOp[] }>();

  const settle = (invoke: ClientEvent, completion: ClientEvent | null, ops: RegisterOp[]): void => {
    const op = interpret(invoke, completion);
    if (op !== null) ops.push(op);
  };

  for (const event of events) {
    if (event.f === 'append') continue;
    if (event.type === 'invoke') {
      if (event.key === null) continue;
      const earlier = pending.get(event.process);
      // A second invoke without a completion means the first one will never complete: its outcome is unknown.
      if (earlier !== undefined) settle(earlier.invoke, null, earlier.ops);
      const entry = byKey.get(event.key) ?? { invoked: 0, ops: [] };
      entry.invoked++;
      byKey.set(event.key, entry);
      pending.set(event.process, { invoke: event, ops: entry.ops });
      continue;
    }
    const open = pending.get(event.process);
    if (open === undefined) continue; // a completion of nothing carries no information about the register
    pending.delete(event.process);
    settle(open.invoke, event, open.ops);
  }
  for (const open of pending.values()) settle(open.invoke, null, open.ops);

  return [...byKey].map(([key, { invoked, ops }]) => ({ key, invoked, ops: ops.sort((x, y) => x.call - y.call) }));
}

/** The operation an invoke and its completion stand for, or `null` if it can neither have changed nor observed anything. */
function interpret(invoke: ClientEvent, completion: ClientEvent | null): RegisterOp | null {
  const where = `key ${JSON.stringify(invoke.key)}, process ${invoke.process}, ${invoke.f} invoked at ${invoke.time} ns`;
  const call = invoke.time;
  const answered = completion !== null && completion.type !== 'info';
  // Clocks are not trusted to be monotonic across events; an interval must never end before it starts.
  const ret = answered ? Math.max(call, completion.time) : Infinity;
  const base = { call, ret, invoke, completion, next: null };

  switch (invoke.f) {
    case 'read':
      if (completion?.type !== 'ok') return null;
      return { ...base, kind: 'read', arg: registerValue(completion.value, where) };
    case 'write':
      if (completion?.type === 'fail') return null;
      return { ...base, kind: 'write', arg: registerValue(invoke.value, where) };
    case 'cas': {
      const [expected, replacement] = casArguments(invoke.value, where);
      if (completion?.type === 'fail') {
        // Jepsen's etcd histories carry no error, and there a failed cas is always a refused comparison.
        const refused = completion.error === undefined || completion.error === COMPARE_FAILED;
        return refused ? { ...base, kind: 'cas-refused', arg: expected } : null;
      }
      return { ...base, kind: 'cas', arg: expected, next: replacement };
    }
    default:
      return null;
  }
}

function registerValue(value: unknown, where: string): RegisterValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw new Error(`${where}: a register value must be a number or null, got ${JSON.stringify(value)}`);
}

function casArguments(value: unknown, where: string): [RegisterValue, RegisterValue] {
  if (!Array.isArray(value) || value.length !== 2) {
    throw new Error(`${where}: a cas value must be [expected, new], got ${JSON.stringify(value)}`);
  }
  return [registerValue(value[0], where), registerValue(value[1], where)];
}
