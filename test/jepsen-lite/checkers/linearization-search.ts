/**
 * The linearizability search for one register: Wing & Gong's depth-first
 * search with Lowe's just-in-time linearization and a memo of explored
 * configurations, as in Knossos and Porcupine.
 *
 * The history is a list of call and return entries in time order. The search
 * walks it from the front: at a call it tries to linearize that operation now
 * (legal in the current state, and leading to a configuration the memo does
 * not already cover, see ConfigurationCache), and
 * if so removes the operation's call and return from the list and starts
 * again from the front. Reaching a return whose operation is not linearized
 * means the choices so far cannot work: it undoes the latest one and tries
 * the next candidate after it. Only calls before the first remaining return
 * are ever tried, which is exactly the set of operations that may go next.
 */
import { ConfigurationCache } from './configuration-cache.js';

/** Register states and values are small integers; the caller maps 0 to the empty register. */
export const READ = 0;
export const WRITE = 1;
export const CAS = 2;
export const CAS_REFUSED = 3;
export type OpCode = typeof READ | typeof WRITE | typeof CAS | typeof CAS_REFUSED;

export interface SearchOp {
  readonly code: OpCode;
  /** read: the value seen; write: the value; cas and refused cas: the expected value. */
  readonly a: number;
  /** cas: the new value. */
  readonly b: number;
  readonly call: number;
  /**
   * `Infinity` marks an operation that may take effect at any time after its
   * call or never: the search may leave it out of the linearization.
   */
  readonly ret: number;
}

export type SearchOutcome = 'linearizable' | 'not-linearizable' | 'gave-up';

/**
 * - `exact`: an optional operation takes effect at most once.
 * - `relaxed`: as many times as it likes. That admits more histories, so a
 *   history it rejects is certainly not linearizable; and as the search then
 *   needs no record of which optional operations were used, it stays fast
 *   however many there are. Only a rejection means anything.
 */
export type OptionalSemantics = 'exact' | 'relaxed';

/** How many steps between looks at the clock: reading it every step would cost more than the step. */
const STEPS_PER_CLOCK_CHECK = 4096;

/**
 * Whether the operations can be linearized starting from one of
 * `initialStates`. Gives up at `deadline` (a `performance.now()` time) or
 * when the memo outgrows memory, never guessing.
 *
 * Operations that may be left out ("optional") make the search exponential if
 * it tries them everywhere, so it only tries them where they matter:
 * - An optional operation is linearized only right before an operation it
 *   enables, one that would be illegal without it. Any linearization can be
 *   rearranged that way, by dropping optional operations nothing needs and
 *   moving the others later (nothing ends their interval).
 * - Of optional operations that do the same thing, only the earliest invoked
 *   one still unused is tried: it can go wherever a later one can.
 * - At each point certain operations are tried before optional ones, so that
 *   the memo learns early what can be done without them, which covers every
 *   path that reaches the same point having used more of them.
 * Even so, refuting a history with many of them can take exponential time;
 * the `relaxed` semantics does not.
 */
export function searchLinearization(
  ops: readonly SearchOp[],
  initialStates: readonly number[],
  deadline: number,
  semantics: OptionalSemantics = 'exact',
): SearchOutcome {
  if (ops.length === 0) return 'linearizable';
  const reusable = semantics === 'relaxed';

  // Optional operations first: the memo keeps them apart from the rest of the set (see ConfigurationCache).
  const sorted = [...ops].sort((x, y) => Number(isOptional(y)) - Number(isOptional(x)) || x.call - y.call);
  // A reusable optional operation makes any later one that does the same thing redundant.
  const inOrder = reusable ? withoutLaterTwins(sorted) : sorted;
  const n = inOrder.length;
  const optionalCount = inOrder.filter(isOptional).length;
  // Used optional operations are recorded only if each can be used once.
  const headWords = reusable ? 0 : Math.ceil(optionalCount / 32);
  const bitOf = Int32Array.from(inOrder, (_, op) => (op < optionalCount ? op : headWords * 32 + op - optionalCount));
  const words = headWords + Math.ceil((n - optionalCount) / 32);

  const code = Int32Array.from(inOrder, (op) => op.code);
  const a = Int32Array.from(inOrder, (op) => op.a);
  const b = Int32Array.from(inOrder, (op) => op.b);
  const twinBefore = earlierTwins(inOrder, optionalCount);
  const list = new EntryList(inOrder);
  // The memo's state also records what the next operation must be illegal in, if anything.
  let stateCount = 0;
  for (const value of [...initialStates, ...a, ...b]) stateCount = Math.max(stateCount, value + 1);
  const memoState = (state: number, enablerFrom: number): number => state * (stateCount + 1) + enablerFrom + 1;

  const linearized = new Uint32Array(words);
  const isLinearized = (op: number): boolean => (linearized[bitOf[op]! >> 5]! & (1 << (bitOf[op]! & 31))) !== 0;
  // Optional operations stay out of the hash, so that configurations that may cover one another share a key.
  const zobristLow = new Uint32Array(n);
  const zobristHigh = new Uint32Array(n);
  const random = seededRandom(0x5eed);
  for (let op = optionalCount; op < n; op++) {
    zobristLow[op] = random();
    zobristHigh[op] = random();
  }
  let low = 0;
  let high = 0;
  const toggle = (op: number): void => {
    linearized[bitOf[op]! >> 5]! ^= 1 << (bitOf[op]! & 31);
    low ^= zobristLow[op]!;
    high ^= zobristHigh[op]!;
  };

  // Shared across initial states: a configuration's future does not depend on how it was reached.
  const cache = new ConfigurationCache(words, headWords);
  // A path linearizes each certain operation once, but a reusable optional one any number of times.
  let undoOps = new Int32Array(n + 1);
  let undoStates = new Int32Array(n + 1);
  let undoEnablers = new Int32Array(n + 1);
  let steps = 0;

  for (const initial of initialStates) {
    let state = initial;
    // After an optional operation: the state before it, which the next operation must be illegal in.
    let enablerFrom = NONE;
    let depth = 0;
    let pass = CERTAIN_PASS;
    let entry = list.first();
    for (;;) {
      if (entry === END) return 'linearizable';
      if (++steps % STEPS_PER_CLOCK_CHECK === 0 && (performance.now() > deadline || !cache.hasRoom)) return 'gave-up';
      const op = entry >> 1;
      const optional = op < optionalCount;
      if ((entry & 1) === CALL) {
        if (optional === (pass === OPTIONAL_PASS)) {
          const after = step(code[op]!, a[op]!, b[op]!, state);
          const consumed = !optional || !reusable;
          const worthTrying =
            after !== ILLEGAL &&
            (enablerFrom === NONE || step(code[op]!, a[op]!, b[op]!, enablerFrom) === ILLEGAL) &&
            (!optional || (after !== state && (reusable || twinBefore[op]! === NONE || isLinearized(twinBefore[op]!))));
          if (worthTrying) {
            const nextEnablerFrom = optional ? state : NONE;
            if (consumed) toggle(op);
            if (cache.addUnlessCovered(linearized, low, high, memoState(after, nextEnablerFrom))) {
              if (depth === undoOps.length) {
                undoOps = grown(undoOps);
                undoStates = grown(undoStates);
                undoEnablers = grown(undoEnablers);
              }
              undoOps[depth] = op;
              undoStates[depth] = state;
              undoEnablers[depth] = enablerFrom;
              depth++;
              state = after;
              enablerFrom = nextEnablerFrom;
              if (consumed) list.lift(op);
              pass = CERTAIN_PASS;
              entry = list.first();
              continue;
            }
            if (consumed) toggle(op);
          }
        }
        entry = list.next(entry);
        continue;
      }
      // Returns at Infinity sort last, so only optional operations remain: leave them out.
      if (optional) return 'linearizable';
      if (pass === CERTAIN_PASS && optionalCount > 0) {
        pass = OPTIONAL_PASS;
        entry = list.first();
        continue;
      }
      if (depth === 0) break;
      depth--;
      const undone = undoOps[depth]!;
      state = undoStates[depth]!;
      enablerFrom = undoEnablers[depth]!;
      const wasOptional = undone < optionalCount;
      if (!wasOptional || !reusable) {
        toggle(undone);
        list.unlift(undone);
      }
      pass = wasOptional ? OPTIONAL_PASS : CERTAIN_PASS;
      entry = list.next(callOf(undone));
    }
  }
  return 'not-linearizable';
}

/** Each point is scanned twice: certain operations first, then optional ones. */
const CERTAIN_PASS = 0;
const OPTIONAL_PASS = 1;

const isOptional = (op: SearchOp): boolean => op.ret === Infinity;

function grown(array: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

function withoutLaterTwins(inOrder: readonly SearchOp[]): SearchOp[] {
  const seen = new Set<string>();
  return inOrder.filter((op) => {
    if (!isOptional(op)) return true;
    const kind = effectOf(op);
    if (seen.has(kind)) return false;
    seen.add(kind);
    return true;
  });
}

const effectOf = ({ code, a, b }: SearchOp): string => `${code} ${a} ${b}`;

/** For each optional operation, the previous one (in call order) with the same effect, or NONE. */
function earlierTwins(inOrder: readonly SearchOp[], optionalCount: number): Int32Array {
  const twins = new Int32Array(inOrder.length).fill(NONE);
  const lastOfKind = new Map<string, number>();
  for (let op = 0; op < optionalCount; op++) {
    const kind = effectOf(inOrder[op]!);
    twins[op] = lastOfKind.get(kind) ?? NONE;
    lastOfKind.set(kind, op);
  }
  return twins;
}

const NONE = -1;
const ILLEGAL = -1;

function step(code: number, a: number, b: number, state: number): number {
  switch (code) {
    case READ:
      return state === a ? state : ILLEGAL;
    case WRITE:
      return a;
    case CAS:
      return state === a ? b : ILLEGAL;
    default:
      return state !== a ? state : ILLEGAL;
  }
}

/** Entry `2i` is the call of operation `i`, entry `2i + 1` its return. */
const CALL = 0;
const END = -1;
const callOf = (op: number): number => op << 1;

/**
 * The entries as a doubly linked list over typed arrays. Removing an
 * operation leaves its own links intact, so undoing removals in reverse order
 * puts it back exactly (Knuth's dancing links).
 */
class EntryList {
  private readonly next_: Int32Array;
  private readonly prev: Int32Array;
  private readonly head: number;

  constructor(ops: readonly SearchOp[]) {
    const count = ops.length * 2;
    const time = (entry: number): number => {
      const op = ops[entry >> 1]!;
      return (entry & 1) === CALL ? op.call : op.ret;
    };
    // At equal times a call goes first: the two operations then count as concurrent, the weaker claim.
    const order = Array.from({ length: count }, (_, entry) => entry).sort((x, y) => {
      const tx = time(x);
      const ty = time(y);
      return tx < ty ? -1 : tx > ty ? 1 : (x & 1) - (y & 1);
    });
    this.head = count;
    this.next_ = new Int32Array(count + 1);
    this.prev = new Int32Array(count + 1);
    let previous = this.head;
    for (const entry of order) {
      this.next_[previous] = entry;
      this.prev[entry] = previous;
      previous = entry;
    }
    this.next_[previous] = END;
  }

  first(): number {
    return this.next_[this.head]!;
  }

  next(entry: number): number {
    return this.next_[entry]!;
  }

  lift(op: number): void {
    this.remove(callOf(op));
    this.remove(callOf(op) + 1);
  }

  unlift(op: number): void {
    this.restore(callOf(op) + 1);
    this.restore(callOf(op));
  }

  private remove(entry: number): void {
    const before = this.prev[entry]!;
    const after = this.next_[entry]!;
    this.next_[before] = after;
    if (after !== END) this.prev[after] = before;
  }

  private restore(entry: number): void {
    const before = this.prev[entry]!;
    const after = this.next_[entry]!;
    this.next_[before] = entry;
    if (after !== END) this.prev[after] = entry;
  }
}

/** mulberry32: deterministic hashes make runs reproducible. */
function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
