/**
 * One key's register operations, seen through a window of time, as a
 * problem for the linearization search.
 *
 * A window [from, to] keeps the operations that lie wholly inside it with
 * their full meaning. An operation that crosses an edge is weakened: a write
 * or cas may or may not have taken effect, any time after its call; a read or
 * refused cas is dropped, since what it saw may lie outside. Operations wholly
 * outside are dropped. Unless the window starts at the key's first operation,
 * the register may hold any value the history writes (or be empty) when the
 * window opens. So a linearization of the whole history always gives one of
 * the window, and a window that cannot be linearized proves the history
 * cannot be either.
 */
import {
  CAS,
  CAS_REFUSED,
  type OpCode,
  type OptionalSemantics,
  READ,
  type SearchOp,
  type SearchOutcome,
  searchLinearization,
  WRITE,
} from './linearization-search.js';
import { changesRegister, type RegisterOp } from './register-operations.js';

export interface Span {
  /** `-Infinity`: from the key's first operation, with the register empty. */
  readonly from: number;
  readonly to: number;
}

export const WHOLE_HISTORY: Span = { from: -Infinity, to: Infinity };

export interface Member {
  readonly op: RegisterOp;
  readonly crossesEdge: boolean;
}

/** The operations that take part in the window, in order of invocation. */
export function membersOf(ops: readonly RegisterOp[], span: Span): Member[] {
  const members: Member[] = [];
  for (const op of ops) {
    if (op.ret < span.from || op.call > span.to) continue;
    const inside = op.call >= span.from && op.ret <= span.to;
    if (inside) members.push({ op, crossesEdge: false });
    else if (changesRegister(op)) members.push({ op, crossesEdge: true });
  }
  return members;
}

/** A key's operations with their values mapped to the small integers the search works on. */
export class RegisterProblem {
  private readonly codes = new Map<number | null, number>([[null, EMPTY]]);
  /** Every state the register can ever be in: empty, or a value some operation may have written. */
  private readonly reachableStates: number[] = [EMPTY];

  constructor(readonly ops: readonly RegisterOp[]) {
    for (const op of ops) {
      if (op.kind === 'write') this.noteWritten(op.arg);
      if (op.kind === 'cas') this.noteWritten(op.next);
    }
  }

  check(span: Span, deadline: number, semantics: OptionalSemantics = 'exact'): SearchOutcome {
    const searchOps = membersOf(this.ops, span).map(({ op, crossesEdge }) => this.searchOp(op, crossesEdge));
    // Values only ever read cannot be the state, so they need not be tried: the window then stays smaller.
    const initialStates = span.from === -Infinity ? [EMPTY] : this.reachableStates;
    return searchLinearization(searchOps, initialStates, deadline, semantics);
  }

  /**
   * Whether the span is certainly not linearizable: true, false, or
   * `'unknown'` when time ran out. The relaxed search, fast but only able to
   * prove a violation, gets the first half of the time; the exact one the rest.
   */
  fails(span: Span, deadline: number): boolean | 'unknown' {
    const relaxed = this.check(span, performance.now() + (deadline - performance.now()) / 2, 'relaxed');
    if (relaxed === 'not-linearizable') return true;
    const exact = this.check(span, deadline);
    return exact === 'gave-up' ? 'unknown' : exact === 'not-linearizable';
  }

  private searchOp(op: RegisterOp, crossesEdge: boolean): SearchOp {
    return {
      code: OP_CODES[op.kind],
      a: this.code(op.arg),
      b: this.code(op.next),
      call: op.call,
      ret: crossesEdge ? Infinity : op.ret,
    };
  }

  private noteWritten(value: number | null): void {
    const code = this.code(value);
    if (!this.reachableStates.includes(code)) this.reachableStates.push(code);
  }

  private code(value: number | null): number {
    let code = this.codes.get(value);
    if (code === undefined) this.codes.set(value, (code = this.codes.size));
    return code;
  }
}

const EMPTY = 0;

const OP_CODES: Record<RegisterOp['kind'], OpCode> = { read: READ, write: WRITE, cas: CAS, 'cas-refused': CAS_REFUSED };
